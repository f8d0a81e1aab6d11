package trampoline

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Layout of window.state: two flag bits, the number of calls in flight in
// bits 2 to 23, and the number of calls that entered in bits 24 to 63.
// Keeping the call total in the same word saves an atomic operation per
// call; Stats and retire fold it into the gate's counter before it can
// wrap (2^40 calls).
const (
	stateOpen    = 1 << 0 // the image is accessible
	stateRetired = 1 << 1 // the image was swapped out; no new call may enter
	countShift   = 2
	countOne     = 1 << countShift
	countMask    = (1<<22 - 1) << countShift
	callShift    = 24
	callOne      = 1 << callShift
	enterOne     = countOne + callOne
)

// inFlight returns the number of calls in flight recorded in a state word.
func inFlight(v int64) int64 { return (v & countMask) >> countShift }

// running returns the number of calls in flight on the window's image.
func (w *window) running() int64 {
	if w.tally != nil {
		return w.tally.inFlight()
	}
	return inFlight(w.state.Load())
}

// takeCalls removes the call total from the state and returns it. It
// holds mu because enterSlow stores the whole word under mu. A tally's
// total is not taken: Stats adds it for the current image, and retire
// takes it once the image is drained.
func (w *window) takeCalls() uint64 {
	if w.tally != nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	n := uint64(w.state.Load()) >> callShift
	w.state.Add(-int64(n << callShift))
	return n
}

// window tracks the calls in flight on one image and whether the image is
// accessible. Where no exit closes the window (ModeOpen, ModeKeys, and
// any mode with a linger time) a tally counts the calls and the state
// word holds only the flags. Otherwise the open bit and the count change
// together in one compare-and-swap. So the last exit can close the window
// only while no other call has entered, and a new call finds a closed
// window only after it is fully closed.
type window struct {
	state atomic.Int64
	tally *tally // nil where the state word counts the calls

	mu          sync.Mutex  // serializes opening and closing
	abandoned   bool        // retired, and left to the reaper by retire (under mu)
	pinned      bool        // opened for good by makeAccessible (under mu)
	timer       *time.Timer // linger timer, nil when not armed
	lingerCalls uint64      // call total when the linger timer was armed

	gate *Gate
	img  *image
}

// enter counts a call on the image and makes the image accessible. It
// returns false when the image has been retired by a swap; the caller then
// retries on the gate's current image.
func (w *window) enter() bool {
	if w.tally != nil {
		return w.tally.enter(&w.state) || w.enterSlowTally()
	}
	return w.enterCAS(enterOne)
}

// enterCAS adds delta to the state word of a window without a tally once
// the window is open: enterOne for a call, or countOne for an entry that
// is no call of the library.
func (w *window) enterCAS(delta int64) bool {
	for {
		v := w.state.Load()
		if v&stateRetired != 0 {
			return false
		}
		if v&stateOpen == 0 {
			break
		}
		if w.state.CompareAndSwap(v, v+delta) {
			return true
		}
	}
	return w.enterSlow(delta)
}

func (w *window) enterSlow(delta int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		v := w.state.Load()
		if v&stateRetired != 0 {
			return false
		}
		if v&stateOpen != 0 {
			if w.state.CompareAndSwap(v, v+delta) {
				return true
			}
			continue
		}
		// Closed: no call is in flight and no fast path can change the
		// state until the open bit is set, which happens here under mu.
		if err := w.openLocked(); err != nil {
			// The pages cannot be made accessible; calling would fault.
			panic(fmt.Sprintf("trampoline: open the call window of %s: %v", w.img.img.Spec.Path, err))
		}
		w.state.Store(v | stateOpen + delta)
		w.startLingerLocked()
		return true
	}
}

// enterSlowTally opens a closed window of a tally and counts the call
// under mu, where the linger timer cannot close the window.
func (w *window) enterSlowTally() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.openTallyLocked(); err == errRetired {
		return false
	} else if err != nil {
		// The pages cannot be made accessible; calling would fault.
		panic(fmt.Sprintf("trampoline: open the call window of %s: %v", w.img.img.Spec.Path, err))
	}
	w.tally.enterLocked()
	return true
}

// openTallyLocked opens the closed window of a tally and arms its linger
// timer. It returns errRetired for a retired image. The caller holds mu,
// so the linger timer cannot close the window until it releases mu.
func (w *window) openTallyLocked() error {
	v := w.state.Load()
	if v&stateRetired != 0 {
		return errRetired
	}
	if v&stateOpen == 0 {
		if err := w.openLocked(); err != nil {
			return err
		}
		w.state.Or(stateOpen)
		w.startLingerLocked()
	}
	return nil
}

// isAbandoned reports whether retire left the image to the reaper.
func (w *window) isAbandoned() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.abandoned
}

// whileOpen runs fn with the window open, without counting a call of the
// library, and returns fn's error.
func (w *window) whileOpen(fn func() error) error {
	if w.tally == nil {
		// Count the entry in flight only, so that no call total has to
		// be taken back, which a concurrent takeCalls could underflow.
		if !w.enterCAS(countOne) {
			return errRetired
		}
		defer w.exit()
		return fn()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.openTallyLocked(); err != nil {
		return err
	}
	return fn()
}

// errRetired is returned by whileOpen on an image a swap retired.
var errRetired = errors.New("the image was retired by a swap")

// exit ends a call started by a successful enter.
func (w *window) exit() {
	if t := w.tally; t != nil {
		// Add one to the exits of the P the call returns on.
		p := procPin()
		if uint(p) < uint(len(t.slots)) {
			t.add(&t.slots[p].exits, 1)
		} else {
			atomic.AddUint64(&t.extra.exits, 1)
		}
		procUnpin()
		return
	}
	w.exitCAS()
}

func (w *window) exitCAS() {
	for {
		v := w.state.Load()
		if inFlight(v) <= 1 {
			break
		}
		if w.state.CompareAndSwap(v, v-countOne) {
			return
		}
	}
	w.exitSlow()
}

func (w *window) exitSlow() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		v := w.state.Load()
		if inFlight(v) > 1 {
			if w.state.CompareAndSwap(v, v-countOne) {
				return
			}
			continue
		}
		// Last call out. A pinned window stays open until unload.
		if w.pinned {
			if w.state.CompareAndSwap(v, v-countOne) {
				return
			}
			continue
		}
		if !w.state.CompareAndSwap(v, v&^(stateOpen|countMask)) {
			continue
		}
		w.closeLocked()
		return
	}
}

// startLingerLocked arms the linger timer of a window that just opened.
func (w *window) startLingerLocked() {
	if w.gate.linger <= 0 || w.timer != nil {
		return
	}
	w.lingerCalls, _ = w.tally.counts()
	w.timer = time.AfterFunc(w.gate.linger, w.lingerExpired)
}

// lingerExpired closes a lingering window if no call entered during the
// last linger period and none is running, or waits another period.
// Comparing call totals keeps exits free of clock reads and locks. The
// window closes between one and two linger periods after the last call.
func (w *window) lingerExpired() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer = nil
	v := w.state.Load()
	if v&stateOpen == 0 {
		return
	}
	if v&stateRetired != 0 {
		// retire or the reaper unloads a retired image and may already
		// have; this timer may have fired while one of them held mu. An
		// abandoned image waits for its calls, so close its window in
		// the meantime, unless it is pinned: no new call can enter it.
		if !w.abandoned || w.pinned {
			return
		}
		if w.tally.inFlight() == 0 {
			w.state.And(^int64(stateOpen))
			w.closeLocked()
			return
		}
		w.timer = time.AfterFunc(w.gate.linger, w.lingerExpired)
		return
	}
	if calls, _ := w.tally.counts(); calls != w.lingerCalls {
		w.lingerCalls = calls
		w.timer = time.AfterFunc(w.gate.linger, w.lingerExpired)
		return
	}
	// Quiet for a whole period: stop new calls on the fast path, then
	// look for calls still running. New calls now wait for mu in
	// enterSlowTally.
	w.state.And(^int64(stateOpen))
	w.tally.barrier()
	if w.tally.inFlight() == 0 {
		w.closeLocked()
		return
	}
	w.state.Or(stateOpen)
	w.lingerCalls, _ = w.tally.counts()
	w.timer = time.AfterFunc(w.gate.linger, w.lingerExpired)
}

// openLocked makes every region accessible again with the protection the
// library expects.
func (w *window) openLocked() error {
	g := w.gate
	for _, r := range w.img.regions {
		switch g.mode {
		case ModeUnmap:
			if _, err := r.Map(); err != nil {
				return err
			}
			g.stats.mmaps.Add(1)
		default:
			if err := mprotect(r.Addr, r.Size, r.Prot); err != nil {
				return err
			}
			g.stats.mprotects.Add(1)
		}
	}
	g.windowOpened()
	g.stats.windows.Add(1)
	return nil
}

// closeLocked makes the whole image inaccessible with one system call.
func (w *window) closeLocked() {
	g := w.gate
	im := w.img.img
	switch g.mode {
	case ModeUnmap:
		if err := im.Unmap(); err != nil {
			panic(fmt.Sprintf("trampoline: unmap %s: %v", im.Spec.Path, err))
		}
		g.stats.mmaps.Add(1)
	default:
		n, err := im.Seal()
		if err != nil {
			panic(fmt.Sprintf("trampoline: protect %s: %v", im.Spec.Path, err))
		}
		g.stats.mprotects.Add(uint64(n))
	}
	g.windowClosed()
}

// makeAccessible opens the window of a retired image for good: for its
// finalisers, or because an older image still runs calls that may read its
// memory. The window counts as open until the image is unloaded.
func (w *window) makeAccessible() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pinned = true
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	if w.state.Load()&stateOpen != 0 {
		return nil
	}
	if err := w.openLocked(); err != nil {
		return err
	}
	w.state.Or(stateOpen)
	return nil
}

func mprotect(addr, size uintptr, prot int) error {
	_, _, e := unix.Syscall(unix.SYS_MPROTECT, addr, size, uintptr(prot))
	if e != 0 {
		return fmt.Errorf("mprotect %#x+%#x: %w", addr, size, e)
	}
	return nil
}
