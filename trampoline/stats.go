package trampoline

import (
	"slices"
	"sync/atomic"
	"time"
)

type counters struct {
	calls     atomic.Uint64
	windows   atomic.Uint64
	mprotects atomic.Uint64
	mmaps     atomic.Uint64
	swaps     atomic.Uint64
}

// windowOpened and windowClosed track the union of the call windows of
// all images, so that overlapping windows of an old and a new image during
// a swap count once.
func (g *Gate) windowOpened() {
	g.expMu.Lock()
	defer g.expMu.Unlock()
	if g.openWindows == 0 {
		g.openSince = time.Now()
	}
	g.openWindows++
}

func (g *Gate) windowClosed() {
	g.expMu.Lock()
	defer g.expMu.Unlock()
	g.openWindows--
	if g.openWindows == 0 {
		g.accessible += time.Since(g.openSince)
	}
}

// accessibleTime returns the union of all windows so far.
func (g *Gate) accessibleTime() time.Duration {
	g.expMu.Lock()
	defer g.expMu.Unlock()
	d := g.accessible
	if g.openWindows > 0 {
		d += time.Since(g.openSince)
	}
	return d
}

// Stats are a gate's counters since it was opened.
type Stats struct {
	Mode  Mode
	Calls uint64 // calls that entered the gate
	// InFlight counts the calls running on the current image and on the
	// images a swap is draining. The images are read one after another,
	// so a call that starts while Stats reads may count too.
	InFlight  int64
	Windows   uint64 // call windows opened
	Mprotects uint64 // mprotect calls made by the gate
	Mmaps     uint64 // mmap calls made by the gate (ModeUnmap)
	Swaps     uint64

	Wall       time.Duration // time since the gate was opened
	Accessible time.Duration // time in which some call window was open, of any image
	// Exposure is Accessible divided by Wall. In ModeOpen it is 1. In
	// ModeKeys the library is accessible only to the thread inside a call,
	// which the gate does not time per thread, so Exposure is 0 there and
	// the pages stay executable (protection keys never stop instruction
	// fetch).
	Exposure float64
}

// replaceImage makes next the current image and returns the one it
// replaces, which counts as draining until retire folds its calls.
func (g *Gate) replaceImage(next *image) *image {
	g.callsMu.Lock()
	defer g.callsMu.Unlock()
	old := g.cur.Swap(next)
	if old != nil {
		g.draining = append(g.draining, old)
	}
	return old
}

// foldCalls adds the calls of a retired image to the gate's total. After
// a drain every call on it has returned, so its exits are its calls.
// After a drain that timed out, calls that return later are not counted.
func (g *Gate) foldCalls(im *image) {
	g.callsMu.Lock()
	defer g.callsMu.Unlock()
	g.draining = slices.DeleteFunc(g.draining, func(d *image) bool { return d == im })
	if t := im.w.tally; t != nil {
		g.stats.calls.Add(t.exits())
		return
	}
	g.stats.calls.Add(im.w.takeCalls())
}

// Stats returns the gate's counters.
func (g *Gate) Stats() Stats {
	// callsMu orders this with replaceImage and foldCalls, so that every
	// image's calls are counted once: in the total, as draining, or as
	// current.
	g.callsMu.Lock()
	var live uint64 // calls that stay in the tallies
	var inFlight int64
	count := func(im *image) {
		if t := im.w.tally; t != nil {
			e, _ := t.counts()
			live += e
		} else {
			g.stats.calls.Add(im.w.takeCalls())
		}
		inFlight += im.w.running()
	}
	for _, d := range g.draining {
		count(d)
	}
	im := g.cur.Load()
	if im != nil {
		count(im)
	}
	// A call turned away by a closed window or a retired image is counted
	// for a moment before it enters for real, here or on the next image.
	// Unload counts a drained image by its exits, which leave that moment
	// out. Neither may make Calls go down.
	calls := max(g.stats.calls.Load()+live, g.lastCalls)
	g.lastCalls = calls
	g.callsMu.Unlock()

	s := Stats{
		Mode:      g.mode,
		Calls:     calls,
		Windows:   g.stats.windows.Load(),
		Mprotects: g.stats.mprotects.Load(),
		Mmaps:     g.stats.mmaps.Load(),
		Swaps:     g.stats.swaps.Load(),
		Wall:      time.Since(g.created),
		InFlight:  inFlight,
	}
	switch g.mode {
	case ModeOpen:
		s.Accessible = s.Wall
	case ModeKeys:
	default:
		s.Accessible = g.accessibleTime()
	}
	if s.Wall > 0 {
		s.Exposure = float64(s.Accessible) / float64(s.Wall)
	}
	return s
}
