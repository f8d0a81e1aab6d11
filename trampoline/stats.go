package trampoline

import (
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
	Mode      Mode
	Calls     uint64 // calls that entered the gate
	InFlight  int64  // calls running now on the current image
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

// foldCalls adds the calls of a retired image to the gate's total.
func (g *Gate) foldCalls(im *image) {
	g.callsMu.Lock()
	defer g.callsMu.Unlock()
	if t := im.w.tally; t != nil {
		e, _ := t.counts()
		g.stats.calls.Add(e)
		return
	}
	g.stats.calls.Add(im.w.takeCalls())
}

// Stats returns the gate's counters.
func (g *Gate) Stats() Stats {
	// callsMu keeps retire from folding an image's calls into the total
	// between the load of the current image and the read of the total.
	g.callsMu.Lock()
	im := g.cur.Load()
	var live uint64 // calls of a tally, which stay in the tally
	if im != nil {
		if t := im.w.tally; t != nil {
			live, _ = t.counts()
		} else {
			g.stats.calls.Add(im.w.takeCalls())
		}
	}
	calls := g.stats.calls.Load() + live
	g.callsMu.Unlock()
	s := Stats{
		Mode:      g.mode,
		Calls:     calls,
		Windows:   g.stats.windows.Load(),
		Mprotects: g.stats.mprotects.Load(),
		Mmaps:     g.stats.mmaps.Load(),
		Swaps:     g.stats.swaps.Load(),
		Wall:      time.Since(g.created),
	}
	if im != nil {
		s.InFlight = im.w.running()
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
