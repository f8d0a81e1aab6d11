package trampoline

import (
	"time"
)

// An image leaves service in three steps. replaceImage takes it out of
// g.cur and appends it to g.draining. retire marks it retired, so that no
// new call enters it, and waits for the calls in flight. Then it is
// unloaded, and its calls move into the gate's total.
//
// Unloading must wait for older images too. A call or a Hold that began
// on an older image before this one was retired may have called this one,
// and it may still hold pointers into it. Calls that begin later go to
// newer images. So an image is unloaded only when it and every image retired
// before it have no call in flight. When retire cannot reach that state
// within DrainTimeout, it abandons the image to the reaper, a goroutine
// that unloads abandoned images, oldest first, once their calls return.

// retire stops new calls on im and waits up to the drain timeout for the
// calls in flight on it and on older draining images, then unloads it. It
// reports whether the image was unloaded; if not, the reaper unloads it
// later.
func (g *Gate) retire(im *image) bool {
	// The bit is set under the window's lock, because enterSlow stores
	// the whole state word under that lock and would otherwise lose it.
	im.w.mu.Lock()
	im.w.state.Or(stateRetired)
	im.w.mu.Unlock()
	if im.w.tally != nil {
		im.w.tally.barrier()
	}

	// A call on an older image may have called this one and may read its
	// memory until it returns, even after this image's own calls are
	// over, so the window stays open until the unload.
	if g.olderBusy(im) {
		if err := im.w.makeAccessible(); err != nil {
			g.abandon(im)
			return false
		}
	}

	deadline := time.Now().Add(g.drain)
	sleep := 50 * time.Microsecond
	for im.w.running() != 0 || g.olderBusy(im) {
		if time.Now().After(deadline) {
			g.abandon(im)
			return false
		}
		time.Sleep(sleep)
		sleep = min(sleep*2, 10*time.Millisecond)
	}
	if !g.unload(im) {
		g.abandon(im)
		return false
	}
	return true
}

// olderBusy reports whether an image retired before im still has calls in
// flight.
func (g *Gate) olderBusy(im *image) bool {
	g.callsMu.Lock()
	defer g.callsMu.Unlock()
	for _, d := range g.draining {
		if d == im {
			return false
		}
		if d.w.running() != 0 {
			return true
		}
	}
	return false
}

// unload runs the finalisers of a drained image, unmaps it and folds its
// calls into the gate's total. It reports false if the pages could not be
// made accessible for the finalisers; the image then stays mapped.
func (g *Gate) unload(im *image) bool {
	if err := im.w.makeAccessible(); err != nil {
		return false
	}
	if g.mode == ModeKeys {
		// Finalisers run outside a gate call, so the pages need key 0.
		if err := im.img.Protect(-1, 0); err != nil {
			return false
		}
	}
	im.img.Close()
	if g.mode == ModeProtect || g.mode == ModeUnmap {
		g.windowClosed() // the window makeAccessible left open
	}
	g.foldCalls(im)
	return true
}

// abandon hands a retired image that is still in use to the reaper. With
// a linger time, the window's timer keeps closing the window once its
// calls return, since no exit does that in linger mode.
func (g *Gate) abandon(im *image) {
	w := &im.w
	w.mu.Lock()
	w.abandoned = true
	closes := g.mode == ModeProtect || g.mode == ModeUnmap
	if closes && w.tally != nil && g.linger > 0 && w.state.Load()&stateOpen != 0 && w.timer == nil {
		w.timer = time.AfterFunc(g.linger, w.lingerExpired)
	}
	w.mu.Unlock()

	g.callsMu.Lock()
	defer g.callsMu.Unlock()
	if !g.reaping {
		g.reaping = true
		go g.reap()
	}
}

// reap unloads abandoned images, oldest first, as their calls return, and
// ends when none is left. Once the gate is closed and the last image is
// gone, it frees the gate's protection key.
func (g *Gate) reap() {
	sleep := time.Millisecond
	for {
		time.Sleep(sleep)
		sleep = min(sleep*2, time.Second)
		if g.reapOnce() {
			return
		}
	}
}

// reapOnce unloads the abandoned images at the head of the draining list
// that have no call in flight. It reports whether the reaper is done.
func (g *Gate) reapOnce() bool {
	for {
		// Lock order: callsMu, then a window's mu (as in Stats).
		g.callsMu.Lock()
		var head *image
		if len(g.draining) > 0 {
			head = g.draining[0]
		}
		if head == nil || !head.w.isAbandoned() {
			// Nothing left, or retire is still draining the oldest image
			// and will abandon it, starting a new reaper, if it must.
			g.reaping = false
			freeKey := head == nil && g.keyPending
			g.keyPending = g.keyPending && !freeKey
			g.callsMu.Unlock()
			if freeKey {
				g.freeKey()
			}
			return true
		}
		g.callsMu.Unlock()

		if head.w.running() != 0 {
			return false
		}
		if !g.unload(head) {
			// The pages cannot be opened for the finalisers: leave the
			// image mapped for good and stop counting it as draining.
			g.foldCalls(head)
		}
	}
}
