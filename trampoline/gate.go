package trampoline

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/decouple-go/decouple/loader"
)

// Mode selects what a gate does to a library between calls.
type Mode int

const (
	// ModeOpen leaves the library accessible; the gate only counts calls
	// and makes swaps atomic.
	ModeOpen Mode = iota
	// ModeProtect sets every page of the library to PROT_NONE between
	// calls and restores the protections on entry.
	ModeProtect
	// ModeUnmap removes the library's pages between calls, keeping only an
	// inaccessible reservation; data lives in a memfd so it survives.
	ModeUnmap
	// ModeKeys tags the library's pages with a memory protection key that
	// denies access on every thread except inside a call on that thread.
	ModeKeys
)

func (m Mode) String() string {
	switch m {
	case ModeOpen:
		return "open"
	case ModeProtect:
		return "protect"
	case ModeUnmap:
		return "unmap"
	case ModeKeys:
		return "keys"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode returns the mode named s ("open", "protect", "unmap", "keys").
func ParseMode(s string) (Mode, error) {
	for m := ModeOpen; m <= ModeKeys; m++ {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown protection mode %q: use open, protect, unmap or keys", s)
}

// Options configure a gate. The zero value is ModeOpen without linger.
type Options struct {
	Mode Mode

	// Linger keeps the library accessible for this long after the last
	// call returns, so that a burst of calls opens one window. The time
	// counts as exposed. It has no effect in ModeOpen and ModeKeys.
	Linger time.Duration

	// DrainTimeout bounds how long a swap waits for calls in flight on the
	// old image. After it, the old image stays mapped (and is reported),
	// because unloading it under a running call would crash. Default 30s.
	DrainTimeout time.Duration

	// Loader options for every image the gate loads.
	Loader *loader.Options
}

// ErrBusy is returned by Check while a Swap or another Check of the gate
// runs.
var ErrBusy = errors.New("trampoline: a swap or check of this gate is in progress; retry when it ends")

// ErrClosed is returned by operations on a closed gate.
var ErrClosed = errors.New("trampoline: gate closed")

// image is one loaded version of the library under a gate.
type image struct {
	img     *loader.Image
	regions []loader.Region
	addrs   atomic.Pointer[[]uintptr] // addresses of the registered symbols, by index
	pkru    uint32                    // PKRU bits to clear inside a call (ModeKeys)
	w       window
	loaded  time.Time
}

// Gate guards one library: every call goes through it, it opens and closes
// the call windows, and it switches to a new image on Swap.
type Gate struct {
	mode   Mode
	linger time.Duration
	drain  time.Duration
	lopts  loader.Options
	pkey   int

	cur atomic.Pointer[image]

	mu     sync.Mutex // serializes Func, Var, Swap and Close
	path   string
	names  []symbolRef
	closed bool

	created    time.Time
	stats      counters
	callsMu    sync.Mutex // guards the fields below, and orders them with cur
	draining   []*image   // replaced images not yet unloaded, oldest first
	lastCalls  uint64     // the largest Calls that Stats returned
	reaping    bool       // a reaper goroutine runs
	keyPending bool       // Close left the protection key to the reaper

	expMu       sync.Mutex // guards the exposure fields below
	openWindows int        // windows open now, over all images
	openSince   time.Time  // when openWindows last rose from 0
	accessible  time.Duration
}

type symbolRef struct {
	name string
	data bool
}

// Open loads the library at path as the gate's first image and closes its
// window, so that it is reachable only through calls. The loader backend
// defaults to loader.BackendAuto: the own loader, or the system loader
// for what the own loader rejects (see loader.Image.Fallback).
func Open(path string, opts *Options) (*Gate, error) {
	if opts == nil {
		opts = &Options{}
	}
	g := &Gate{mode: opts.Mode, linger: opts.Linger, drain: opts.DrainTimeout, path: path, pkey: -1, created: time.Now()}
	if opts.Loader != nil {
		g.lopts = *opts.Loader
	}
	if g.drain <= 0 {
		g.drain = 30 * time.Second
	}
	switch g.mode {
	case ModeOpen, ModeProtect:
	case ModeUnmap:
		g.lopts.DataInMemfd = true
	case ModeKeys:
		key, err := allocKey()
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		g.pkey = key
	default:
		return nil, fmt.Errorf("open %s: unknown protection mode %d", path, int(g.mode))
	}

	im, err := g.load(path)
	if err != nil {
		g.freeKey()
		return nil, err
	}
	g.cur.Store(im)
	return g, nil
}

// load loads path as a new image, resolves every registered symbol in it
// and closes its window according to the mode.
func (g *Gate) load(path string) (*image, error) {
	li, err := loader.Open(path, &g.lopts)
	if err != nil {
		return nil, err
	}
	if li.Shared && (g.mode != ModeOpen || g.cur.Load() != nil) {
		li.Close()
		return nil, fmt.Errorf("%s is loaded by the system loader elsewhere in this process already (%s), so it cannot get an image of its own: a swap to it would reuse the running copy, and sealing it would break its other users; use mode open for a first load, or a library the own loader can load: %w",
			path, li.Fallback, loader.ErrNotSupported)
	}
	im := &image{img: li, regions: li.Regions(), loaded: time.Now()}
	im.w.gate, im.w.img = g, im
	if g.mode == ModeOpen || g.mode == ModeKeys || g.linger > 0 {
		im.w.tally = newTally()
	}

	addrs := make([]uintptr, len(g.names))
	var missing []string
	var wrongKind []error
	for i, ref := range g.names {
		if err := checkKind(li.Spec, ref); err != nil {
			if errors.Is(err, loader.ErrSymbolNotFound) {
				missing = append(missing, ref.name)
			} else {
				wrongKind = append(wrongKind, err)
			}
			continue
		}
		a, err := li.Lookup(ref.name)
		if err != nil {
			missing = append(missing, ref.name)
			continue
		}
		addrs[i] = a
	}
	if len(missing) > 0 {
		li.Close()
		return nil, fmt.Errorf("%s does not export %s, which this program uses: %w", path, strings.Join(missing, ", "), loader.ErrSymbolNotFound)
	}
	if len(wrongKind) > 0 {
		li.Close()
		return nil, fmt.Errorf("%s: %w", path, errors.Join(wrongKind...))
	}
	im.addrs.Store(&addrs)

	if err := g.seal(im); err != nil {
		li.Close()
		return nil, fmt.Errorf("seal %s: %w", path, err)
	}
	return im, nil
}

// seal puts a freshly loaded image into the between-calls state.
func (g *Gate) seal(im *image) error {
	switch g.mode {
	case ModeOpen:
		im.w.state.Store(stateOpen)
	case ModeProtect:
		n, err := im.img.Seal()
		if err != nil {
			return err
		}
		g.stats.mprotects.Add(uint64(n))
	case ModeUnmap:
		if im.img.Backend == loader.BackendSystem {
			return fmt.Errorf("mode unmap needs the own loader, which keeps the data in a memfd; %s was loaded by the system loader (%s): %w", im.img.Spec.Path, im.img.Fallback, loader.ErrNotSupported)
		}
		for _, r := range im.regions {
			if !r.Remappable() {
				return fmt.Errorf("region %#x+%#x cannot be mapped again after unmapping", r.Addr, r.Size)
			}
		}
		if err := im.img.Unmap(); err != nil {
			return err
		}
		g.stats.mmaps.Add(1)
	case ModeKeys:
		if im.img.Backend == loader.BackendSystem {
			return fmt.Errorf("mode keys needs the own loader: the system loader's own code reads %s outside gate calls (%s): %w", im.img.Spec.Path, im.img.Fallback, loader.ErrNotSupported)
		}
		if err := im.img.Protect(-1, g.pkey); err != nil {
			return err
		}
		im.pkru = 3 << (2 * uint(g.pkey))
		im.w.state.Store(stateOpen)
	}
	return nil
}

// fast returns the image's tally, or nil for a nil image and in the modes
// that count calls in the state word.
func (im *image) fast() *tally {
	if im == nil {
		return nil
	}
	return im.w.tally
}

// enter starts a call on the current image and returns it.
func (g *Gate) enter() *image {
	// tally.enter for a P with a slot, written out to save a call level.
	im := g.cur.Load()
	if t := im.fast(); t != nil {
		p := procPin()
		if uint(p) < uint(len(t.slots)) {
			s := &t.slots[p]
			t.add(&s.enters, 1)
			if im.w.state.Load()&(stateOpen|stateRetired) == stateOpen {
				procUnpin()
				return im
			}
			t.add(&s.enters, ^uint64(0))
		}
		procUnpin()
	}
	return g.enterSlow()
}

// enterSlow handles what enter's fast path does not: a closed gate, a
// window that may need opening, and an image retired by a swap.
func (g *Gate) enterSlow() *image {
	for {
		im := g.cur.Load()
		if im == nil {
			panic(ErrClosed)
		}
		if im.w.enter() {
			return im
		}
	}
}

// ErrWrongKind matches a symbol registered as a function that the library
// exports as data, or the other way round. Calling data would jump into it.
var ErrWrongKind = errors.New("symbol has the wrong kind")

// checkKind verifies that the library exports ref with the kind it was
// registered as.
func checkKind(spec *loader.Spec, ref symbolRef) error {
	kind, ok := spec.ExportKindOf(ref.name)
	if !ok {
		return fmt.Errorf("%s: %w", ref.name, loader.ErrSymbolNotFound)
	}
	switch {
	case ref.data && kind == loader.ExportFunc:
		return fmt.Errorf("%s is exported as a function, but the program reads it as data: %w", ref.name, ErrWrongKind)
	case !ref.data && kind == loader.ExportObject:
		return fmt.Errorf("%s is exported as data, but the program calls it as a function: %w", ref.name, ErrWrongKind)
	}
	return nil
}

// register adds a symbol to the gate and returns its index.
func (g *Gate) register(name string, data bool) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, ErrClosed
	}

	for i, ref := range g.names {
		if ref.name == name {
			if ref.data != data {
				return 0, checkKind(g.cur.Load().img.Spec, symbolRef{name: name, data: data})
			}
			return i, nil
		}
	}

	// A lookup that reads the library's pages (dlsym on a system-loaded
	// image) or runs its code (an IFUNC resolver) runs in a window. Other
	// lookups read only the parsed symbol table.
	im := g.cur.Load()
	if err := checkKind(im.img.Spec, symbolRef{name: name, data: data}); err != nil {
		return 0, err
	}
	var addr uintptr
	var err error
	if im.img.LookupReadsImage(name) {
		if g.mode == ModeKeys {
			// Lookup would run the resolver from Go, with the key denied.
			return 0, fmt.Errorf("register %s: mode keys cannot run the IFUNC resolver of %s outside a call; use mode protect: %w", name, im.img.Spec.Path, loader.ErrNotSupported)
		}
		err = im.w.whileOpen(func() (err error) {
			addr, err = im.img.Lookup(name)
			return err
		})
	} else {
		addr, err = im.img.Lookup(name)
	}
	if err != nil {
		return 0, err
	}

	// Callers read the address slice without a lock, so it is replaced,
	// never changed in place.
	old := *im.addrs.Load()
	addrs := make([]uintptr, len(old)+1)
	copy(addrs, old)
	addrs[len(old)] = addr
	im.addrs.Store(&addrs)
	g.names = append(g.names, symbolRef{name: name, data: data})
	return len(g.names) - 1, nil
}

// Path returns the library path the gate watches and reloads from.
func (g *Gate) Path() string { return g.path }

// Mode returns the gate's protection mode.
func (g *Gate) Mode() Mode { return g.mode }

// ImageInfo describes one loaded image.
type ImageInfo struct {
	Path     string
	Soname   string
	BuildID  string
	SHA256   string
	Start    uintptr // first byte of the image's address range
	End      uintptr // first byte after it
	LoadedAt time.Time
	LoadTime time.Duration
}

func (im *image) info() ImageInfo {
	s := im.img.Spec
	return ImageInfo{Path: s.Path, Soname: s.Soname, BuildID: s.BuildID, SHA256: s.SHA256(),
		Start: im.img.Base, End: im.img.Base + im.img.Span, LoadedAt: im.loaded, LoadTime: im.img.LoadTime}
}

// Image describes the image that new calls go to.
func (g *Gate) Image() ImageInfo {
	im := g.cur.Load()
	if im == nil {
		return ImageInfo{}
	}
	return im.info()
}

// SwapReport describes a completed swap.
type SwapReport struct {
	Old, New ImageInfo
	// Drain is how long the swap waited for calls in flight on the old
	// image and on older ones. Drained is false if DrainTimeout passed
	// first: the old image then stays mapped until those calls return.
	Drain   time.Duration
	Drained bool
	// NotCarried describes the state that did not cross to the new image.
	// The gate carries none of the library's own data, because the new
	// image runs its own initialisers. Objects the old image handed out
	// must not be passed to the new one.
	NotCarried string
}

// Check loads the library at path as Swap would, checks that it exports
// every symbol registered on the gate, and unloads it again, without
// switching any call to it. It runs the library's constructors and
// finalisers. A nil error means a Swap to the same file would load it.
//
// Check does not wait for a Swap or another Check of the gate: while one
// runs (a swap may be draining, a constructor may hang), it returns
// ErrBusy at once.
func (g *Gate) Check(path string) error {
	if !g.mu.TryLock() {
		return fmt.Errorf("check %s: %w", path, ErrBusy)
	}
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("check: %w", err)
	}
	im, err := g.load(path)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	// The image never served a call; its window state is the one load
	// left, and retire's bookkeeping does not apply.
	im.w.state.Or(stateRetired)
	if !g.unload(im) {
		return fmt.Errorf("check: %s loaded, but its pages could not be opened to run its finalisers; it stays mapped", path)
	}
	return nil
}

// Swap loads the library at path as a new image, checks that it exports
// every symbol registered on the gate, switches new calls to it, waits for
// calls in flight on the old image and unloads the old image. On any error
// before the switch the old image keeps serving and the error gives the reason.
//
// The old image is unloaded only when no call runs on it or on an image
// retired before it, because such a call (a Hold, say) may have called the
// old image and still use its memory. If that takes longer than
// DrainTimeout, Swap returns with SwapReport.Drained false and the image is
// unloaded in the background once those calls return. A Swap called from
// inside a call on the same gate (a callback, or a Hold function)
// therefore waits out DrainTimeout.
func (g *Gate) Swap(path string) (SwapReport, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return SwapReport{}, ErrClosed
	}
	if _, err := os.Stat(path); err != nil {
		return SwapReport{}, fmt.Errorf("swap: %w", err)
	}
	next, err := g.load(path)
	if err != nil {
		// load's errors name the file already.
		return SwapReport{}, fmt.Errorf("swap: %w", err)
	}

	old := g.replaceImage(next)
	g.stats.swaps.Add(1)
	rep := SwapReport{Old: old.info(), New: next.info(),
		NotCarried: "library globals and heap objects of the old image (the new image starts from its own initial state)"}

	start := time.Now()
	rep.Drained = g.retire(old)
	rep.Drain = time.Since(start)
	return rep, nil
}

// Close unloads the current image after the calls in flight return. Calls
// made after Close panic with ErrClosed. If calls still run after
// DrainTimeout, Close returns an error and the image is unloaded in the
// background once they return. A Close called from inside a call on the
// same gate (a callback, or a Hold function) therefore waits out
// DrainTimeout.
func (g *Gate) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	im := g.replaceImage(nil)
	var err error
	if im != nil && !g.retire(im) {
		err = fmt.Errorf("close %s: calls still in flight after %v; the image stays mapped until they return", g.path, g.drain)
	}
	// Images that still run calls keep their pages tagged with the key,
	// so it is freed only after the reaper has unloaded them.
	g.callsMu.Lock()
	pending := len(g.draining) > 0
	g.keyPending = pending
	g.callsMu.Unlock()
	if !pending {
		g.freeKey()
	}
	return err
}
