package trampoline

import (
	"runtime"
	"sync"
	"sync/atomic"
	_ "unsafe" // go:linkname

	"golang.org/x/sys/unix"
)

// A tally counts the calls of one image where no exit has to close the
// window: in ModeOpen and ModeKeys, whose window never closes, and with a
// linger time, where a timer closes it. A shared counter would cost two
// locked instructions per call, about a third of a cgo call here. The
// tally instead keeps one pair of counters per P. On entry, a call pinned
// to its P adds one to that P's entries and then reads the window's state.
// On return, it adds one to the exits of the P it then runs on. Only the
// P's owner writes its slot, so the adds need no lock prefix.
//
// Two things stop new calls: a swap sets the retired bit, and the linger
// timer clears the open bit. Each then sums the slots to learn whether a
// call still runs. A plain store may sit in its CPU's store buffer while
// the same CPU reads the state, so a call could count itself, read the
// old state and stay invisible to the sum. The stopping side removes that
// case: between changing the state and summing, it calls
// membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which runs a full memory
// barrier on every thread of the process. A call whose entry the sum then
// misses has not yet read the state, and will read the new one. Where
// membarrier is unavailable (a kernel before 4.14, or a seccomp filter),
// every add is an atomic one, which needs no barrier.
//
// The sum is taken slot by slot while calls come and go, and it never
// falls below the number of calls in flight. Every entry that got past
// the old state is visible, and exits count only once they happened. An
// entry that found the new state is taken back on the same slot while
// still pinned, so one read of that slot returns both changes or neither.
type tally struct {
	locked bool        // every add is atomic (no membarrier)
	slots  []tallySlot // one per P, for as many Ps as CPUs or GOMAXPROCS at load
	extra  tallySlot   // Ps beyond those, from a later GOMAXPROCS; atomic adds
}

// tallySlot is padded to two cache lines, so that slots of different Ps
// never share a line or an adjacent-line prefetch pair.
type tallySlot struct {
	enters uint64
	exits  uint64
	_      [112]byte
}

// membarrier commands, from linux/membarrier.h (x/sys/unix lacks them).
const (
	membarrierPrivateExpedited         = 1 << 3
	membarrierRegisterPrivateExpedited = 1 << 4
)

//go:linkname procPin runtime.procPin
func procPin() int

//go:linkname procUnpin runtime.procUnpin
func procUnpin()

// barrierRegistered reports whether this process may use
// MEMBARRIER_CMD_PRIVATE_EXPEDITED; it registers on first use.
var barrierRegistered = sync.OnceValue(func() bool {
	_, _, e := unix.Syscall(unix.SYS_MEMBARRIER, membarrierRegisterPrivateExpedited, 0, 0)
	return e == 0
})

func newTally() *tally {
	// The runtime moves GOMAXPROCS with the container's CPU limit, which
	// is at most the CPU count, so a slot per CPU usually covers those
	// changes. Ps past the slots share the extra one.
	t := &tally{slots: make([]tallySlot, max(runtime.GOMAXPROCS(0), runtime.NumCPU()))}
	t.locked = raceEnabled || !barrierRegistered()
	return t
}

// add adds d to *p, with a plain add where the tally allows it.
func (t *tally) add(p *uint64, d uint64) {
	if t.locked {
		atomic.AddUint64(p, d)
		return
	}
	*p += d
}

// enter counts a call and reports whether the window's state lets it
// run: open and not retired. When it returns false, the call was not
// counted. Gate.enter repeats the common case inline, and window.exit
// holds the matching exit, each to save a call level per call.
func (t *tally) enter(state *atomic.Int64) bool {
	p := procPin()
	if uint(p) >= uint(len(t.slots)) {
		procUnpin()
		return t.enterExtra(state)
	}
	s := &t.slots[p]
	t.add(&s.enters, 1)
	ok := state.Load()&(stateOpen|stateRetired) == stateOpen
	if !ok {
		t.add(&s.enters, ^uint64(0))
	}
	procUnpin()
	return ok
}

// enterExtra is enter for a P without a slot.
func (t *tally) enterExtra(state *atomic.Int64) bool {
	atomic.AddUint64(&t.extra.enters, 1)
	if state.Load()&(stateOpen|stateRetired) != stateOpen {
		atomic.AddUint64(&t.extra.enters, ^uint64(0))
		return false
	}
	return true
}

// enterLocked counts a call without checking the state. The caller holds
// the window's lock and has checked the state under it.
func (t *tally) enterLocked() {
	p := procPin()
	if uint(p) < uint(len(t.slots)) {
		t.add(&t.slots[p].enters, 1)
	} else {
		atomic.AddUint64(&t.extra.enters, 1)
	}
	procUnpin()
}

// counts sums the slots. While calls run, the sums are a snapshot taken
// slot by slot. All exits are read before any entry: an exit the scan
// counts happened after its entry, which the later reads then see, so
// enters - exits never falls below the calls in flight.
func (t *tally) counts() (enters, exits uint64) {
	exits = t.exits()
	for i := range t.slots {
		enters += atomic.LoadUint64(&t.slots[i].enters)
	}
	enters += atomic.LoadUint64(&t.extra.enters)
	return enters, exits
}

// exits returns the number of calls that returned. Unlike the entries,
// which a call turned away by the state adds and takes back, it never
// goes down.
func (t *tally) exits() uint64 {
	var n uint64
	for i := range t.slots {
		n += atomic.LoadUint64(&t.slots[i].exits)
	}
	return n + atomic.LoadUint64(&t.extra.exits)
}

// inFlight returns the number of calls running, never below zero. Exits
// are read before entries, so the result is never below the calls that
// ran throughout the read, as a drain needs. Calls that enter during the
// read add to it, which is why a read whose exits moved meanwhile is
// repeated a few times: a reader paused between the two sums would
// otherwise count every call made in the pause.
func (t *tally) inFlight() int64 {
	var e, x uint64
	for range 4 {
		e, x = t.counts()
		if t.exits() == x {
			break
		}
	}
	if x >= e {
		return 0
	}
	return int64(e - x)
}

// barrier follows a change of the window's state that stops new calls
// (the retired bit set, or the open bit cleared). Once it returns, every
// call that counts itself later reads the new state, so counts bounds the
// calls that got past the old one.
func (t *tally) barrier() {
	if t.locked {
		return
	}
	// newTally registered the process, so the kernel accepts the command.
	// Without the barrier a drain could end under a running call, so a
	// failure stops the process rather than unload.
	if _, _, e := unix.Syscall(unix.SYS_MEMBARRIER, membarrierPrivateExpedited, 0, 0); e != 0 {
		panic("trampoline: membarrier after registration: " + e.Error())
	}
}
