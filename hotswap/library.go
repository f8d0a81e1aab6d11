package hotswap

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/decouple-go/decouple/trampoline"
)

// historyLen is how many handled events a library keeps for OpWait.
const historyLen = 16

// versionTimeout bounds a call of a function registered with SetVersionFunc.
const versionTimeout = 2 * time.Second

// library is the state of one watched path.
type library struct {
	m      *Manager
	path   string // absolute watched path
	gate   *trampoline.Gate
	isLink bool          // path was a symbolic link when Watch was called
	signal chan struct{} // capacity 1; a send means "the file changed"

	mu        sync.Mutex
	target    string    // resolved symlink target, if isLink
	detected  time.Time // first notification not yet handled
	busy      bool
	checking  time.Time // start of the oldest check request running now, zero if none
	checks    int       // check requests running now
	swaps     int
	events    uint64  // events recorded, the Seq of the newest
	history   []Event // oldest first, at most historyLen
	waiters   map[*waiter]bool
	versionFn func() string
}

type waiter struct {
	sha256 string
	cursor bool // after is set
	after  uint64
	device uint64
	inode  uint64
	ch     chan Event // capacity 1
}

func (w *waiter) matches(ev *Event) bool {
	if ev.Seq <= w.after || ev.SHA256 != w.sha256 {
		return false
	}
	return w.inode == 0 || (ev.Inode == w.inode && ev.Device == w.device)
}

// notify records a notification for the file without blocking. When the
// signal channel is full, the handler already has a pending signal, and one
// is enough to make it check the file again.
func (l *library) notify(now time.Time) {
	l.mu.Lock()
	if l.detected.IsZero() {
		l.detected = now
	}
	l.mu.Unlock()
	select {
	case l.signal <- struct{}{}:
	default:
	}
}

// run handles changes one at a time until the manager stops. Each
// notification restarts the debounce timer, and a notification that arrives
// during a swap waits in l.signal until the swap is done.
//
// NOTE: a file written to without a pause as long as the debounce interval
// is not handled until the writes pause.
func (l *library) run() {
	defer l.m.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-l.m.stop:
			return
		case <-l.signal:
			timer.Reset(l.m.debounce)
		case <-timer.C:
			l.handle()
		}
	}
}

// handle runs admission on the file at the watched path and swaps it in.
// On any error the running image keeps serving.
func (l *library) handle() {
	l.mu.Lock()
	ev := Event{Detected: l.detected, File: l.path}
	l.detected = time.Time{}
	l.busy = true
	l.mu.Unlock()
	if ev.Detected.IsZero() {
		ev.Detected = time.Now()
	}
	log := l.m.logger.With("path", l.path)

	file, err := admit(l.path, l.isLink, l.m.admission)
	if file != nil {
		ev.File = file.path
		ev.SHA256 = file.sha256
		ev.Device = file.device
		ev.Inode = file.inode
		if file.linkFrom != "" {
			log.Info("resolved symbolic link for admission", "target", file.path)
			l.m.retarget(l, file.path)
		}
	}

	current := l.gate.Image()
	switch {
	case err != nil:
		ev.Outcome = OutcomeRefused
		ev.Reason = err.Error()
		log.Warn("rejected library file; the running image keeps serving",
			"sha256", ev.SHA256, "image_sha256", current.SHA256, "error", err)

	case file.sha256 == current.SHA256:
		ev.Outcome = OutcomeUnchanged
		log.Info("library file has the contents of the running image; nothing to swap", "sha256", ev.SHA256)

	default:
		ev.Outcome, ev.Reason = l.swap(file, current, log)
	}

	ev.Version = l.version()
	ev.Finished = time.Now()
	l.record(ev)
}

// swap loads the admitted file into the gate in place of current and
// returns the outcome with its reason.
func (l *library) swap(file *admittedFile, current trampoline.ImageInfo, log *slog.Logger) (Outcome, string) {
	start := time.Now()
	report, err := l.gate.Swap(file.path)
	if err != nil {
		log.Error("swap failed; the running image keeps serving",
			"sha256", file.sha256, "image_sha256", current.SHA256, "error", err)
		return OutcomeFailed, err.Error()
	}

	l.mu.Lock()
	l.swaps++
	l.mu.Unlock()
	now := l.gate.Image()
	log.Info("swapped library", "from_sha256", current.SHA256, "to_sha256", now.SHA256,
		"build_id", now.BuildID, "duration", time.Since(start), "drain", report.Drain)
	var note string
	if !report.Drained {
		log.Warn("calls on the old image or an older one did not finish within the drain timeout; the old image stays mapped until they return",
			"old_sha256", report.Old.SHA256)
		note = "calls on the old image or an older one did not finish within the drain timeout; the old image stays mapped until they return"
	}

	if now.SHA256 != file.sha256 {
		// The file was replaced between admission and loading. The
		// replacement triggers its own notification and admission, but
		// the image loaded now did not pass admission itself.
		log.Warn("library file changed between admission and loading", "admitted_sha256", file.sha256, "loaded_sha256", now.SHA256)
		return OutcomeSwitched, fmt.Sprintf("file changed during the swap: admitted sha256 %s, loaded sha256 %s", file.sha256, now.SHA256)
	}
	return OutcomeSwitched, note
}

// record appends ev to the history and wakes the waiters it satisfies.
func (l *library) record(ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.busy = false
	l.events++
	ev.Seq = l.events
	l.history = append(l.history, ev)
	if len(l.history) > historyLen {
		l.history = append(l.history[:0], l.history[len(l.history)-historyLen:]...)
	}
	for w := range l.waiters {
		if w.matches(&ev) {
			w.ch <- ev
			delete(l.waiters, w)
		}
	}
}

// await returns the event that handled the file identified by req if there
// is one already, or else a waiter that receives it. The caller must call
// cancel with the waiter when it stops waiting.
func (l *library) await(req *Request) (*Event, *waiter) {
	w := &waiter{sha256: req.SHA256, device: req.Device, inode: req.Inode, ch: make(chan Event, 1)}
	if req.After != nil {
		w.cursor = true
		w.after = *req.After
	}
	if ev := l.handledEvent(w); ev != nil {
		return ev, nil
	}

	l.mu.Lock()
	idle := !l.busy && l.detected.IsZero()
	l.mu.Unlock()
	if idle {
		// No change is pending, so if the running image has these contents
		// the file was loaded before any notification, for example because
		// Watch was called after the file was put in place.
		if img := l.gate.Image(); img.SHA256 == req.SHA256 {
			now := time.Now()
			return &Event{
				Detected: now,
				Finished: now,
				File:     img.Path,
				SHA256:   img.SHA256,
				Outcome:  OutcomeUnchanged,
				Reason:   "the running image already has this SHA-256",
				Version:  l.version(),
			}, nil
		}
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	// An event may have been recorded since handledEvent looked.
	if ev := l.handledEventLocked(w); ev != nil {
		return ev, nil
	}
	if l.waiters == nil {
		l.waiters = make(map[*waiter]bool)
	}
	l.waiters[w] = true
	return nil, w
}

func (l *library) handledEvent(w *waiter) *Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.handledEventLocked(w)
}

func (l *library) handledEventLocked(w *waiter) *Event {
	if w.cursor || w.inode != 0 {
		for i := len(l.history) - 1; i >= 0; i-- {
			if w.matches(&l.history[i]) {
				ev := l.history[i]
				return &ev
			}
		}
		return nil
	}
	// Without a cursor or an inode, an older event may be for an earlier
	// copy of the same contents, so only the newest event counts.
	if n := len(l.history); n > 0 && w.matches(&l.history[n-1]) {
		ev := l.history[n-1]
		return &ev
	}
	return nil
}

func (l *library) cancel(w *waiter) {
	l.mu.Lock()
	delete(l.waiters, w)
	l.mu.Unlock()
}

// status reports the library for OpStatus.
func (l *library) status() LibraryStatus {
	img := l.gate.Image()
	version := l.version()

	l.mu.Lock()
	defer l.mu.Unlock()
	s := LibraryStatus{
		Path:   l.path,
		Target: l.target,
		Image: ImageStatus{
			Path:     img.Path,
			Soname:   img.Soname,
			BuildID:  img.BuildID,
			SHA256:   img.SHA256,
			Version:  version,
			Start:    Address(img.Start),
			End:      Address(img.End),
			LoadedAt: img.LoadedAt,
		},
		Swaps:  l.swaps,
		Events: l.events,
		Busy:   l.busy,
		CheckingSince: func() *time.Time {
			if l.checking.IsZero() {
				return nil
			}
			t := l.checking
			return &t
		}(),
	}
	if n := len(l.history); n > 0 {
		ev := l.history[n-1]
		s.LastEvent = &ev
	}
	return s
}

// version calls the registered version function, if any. A function that
// panics or runs longer than versionTimeout yields a description of that
// instead of a version.
func (l *library) version() string {
	l.mu.Lock()
	fn := l.versionFn
	l.mu.Unlock()
	if fn == nil {
		return ""
	}
	result := make(chan string, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				result <- fmt.Sprintf("(version function panicked: %v)", r)
			}
		}()
		result <- fn()
	}()
	timer := time.NewTimer(versionTimeout)
	defer timer.Stop()
	select {
	case v := <-result:
		return v
	case <-timer.C:
		// NOTE: the goroutine running fn is left behind until fn returns.
		return fmt.Sprintf("(version function timed out after %v)", versionTimeout)
	}
}
