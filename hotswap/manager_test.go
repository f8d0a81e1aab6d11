package hotswap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decouple-go/decouple/internal/testlibs"
	"github.com/decouple-go/decouple/trampoline"
)

// testDebounce keeps the tests fast. Tests that depend on coalescing set
// their own, longer interval.
const testDebounce = 20 * time.Millisecond

// waitTimeout bounds each wait for an event in these tests.
const waitTimeout = 20 * time.Second

// versionedLib is a copy of the v1 build of libversioned.so.1 in a temporary
// directory, loaded through a gate and watched by a Manager.
type versionedLib struct {
	path  string
	gate  *trampoline.Gate
	major *trampoline.Func // int vl_version_major(void)
	m     *Manager
	v1    []byte
	v2    []byte
}

func watchVersioned(t *testing.T, opts Options) *versionedLib {
	t.Helper()
	lib := &versionedLib{
		v1: readFile(t, testlibs.Path(t, "v1/libversioned.so.1")),
		v2: readFile(t, testlibs.Path(t, "v2/libversioned.so.1")),
	}
	lib.path = writeFile(t, t.TempDir(), "libversioned.so.1", lib.v1, 0o644)
	lib.gate = openGate(t, lib.path)
	var err error
	if lib.major, err = lib.gate.Func("vl_version_major"); err != nil {
		t.Fatal(err)
	}
	if opts.Debounce == 0 {
		opts.Debounce = testDebounce
	}
	lib.m = newManager(t, opts)
	if err := lib.m.Watch(lib.path, lib.gate); err != nil {
		t.Fatal(err)
	}
	if err := lib.m.SetVersionFunc(lib.path, lib.version); err != nil {
		t.Fatal(err)
	}
	return lib
}

func openGate(t *testing.T, path string) *trampoline.Gate {
	t.Helper()
	g, err := trampoline.Open(path, &trampoline.Options{Mode: trampoline.ModeProtect})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// version returns the major version as a string. It avoids vl_version,
// whose result points into the library, which is inaccessible after the
// call returns in ModeProtect.
func (lib *versionedLib) version() string {
	return fmt.Sprint(lib.call())
}

func (lib *versionedLib) call() int32 {
	return int32(lib.major.Call0())
}

// replace renames a file with data over path, as replaceFile does, and
// records how many events the manager had handled before.
func (lib *versionedLib) replace(t *testing.T, path string, data []byte, perm os.FileMode) replacedFile {
	t.Helper()
	after := lib.status(t).Events
	f := replaceFile(t, path, data, perm)
	f.after = &after
	return f
}

// await waits for the event of the file f at path.
func (lib *versionedLib) await(t *testing.T, path string, f replacedFile) *Event {
	t.Helper()
	c := dial(t, lib.m)
	res, err := c.Wait(context.Background(), WaitRequest{
		Path:    path,
		SHA256:  f.sha256,
		Timeout: waitTimeout,
		After:   f.after,
		Device:  f.device,
		Inode:   f.inode,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.TimedOut {
		t.Fatalf("no event for sha256 %s at %s within %v", f.sha256, path, waitTimeout)
	}
	return res.Event
}

func (lib *versionedLib) status(t *testing.T) LibraryStatus {
	t.Helper()
	s, err := dial(t, lib.m).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Libraries) != 1 {
		t.Fatalf("status lists %d libraries, want 1", len(s.Libraries))
	}
	return s.Libraries[0]
}

func TestWatchSwitchesOnRename(t *testing.T) {
	lib := watchVersioned(t, Options{})
	if got := lib.call(); got != 1 {
		t.Fatalf("before the swap, vl_version_major() = %d, want 1", got)
	}

	f := lib.replace(t, lib.path, lib.v2, 0o644)
	ev := lib.await(t, lib.path, f)

	if ev.Outcome != OutcomeSwitched {
		t.Fatalf("event outcome = %s (%s), want %s", ev.Outcome, ev.Reason, OutcomeSwitched)
	}
	if ev.Version != "2" {
		t.Errorf("event version = %q, want %q", ev.Version, "2")
	}
	if ev.Reason != "" {
		t.Errorf("event reason = %q, want none", ev.Reason)
	}
	if got := lib.call(); got != 2 {
		t.Errorf("after the swap, vl_version_major() = %d, want 2", got)
	}
	if got := lib.gate.Image().SHA256; got != f.sha256 {
		t.Errorf("gate image sha256 = %s, want %s", got, f.sha256)
	}

	s := lib.status(t)
	if s.Swaps != 1 {
		t.Errorf("status swaps = %d, want 1", s.Swaps)
	}
	if s.Image.SHA256 != f.sha256 || s.Image.Version != "2" || s.Image.Soname != "libversioned.so.1" {
		t.Errorf("status image = %+v, want sha256 %s, version 2, soname libversioned.so.1", s.Image, f.sha256)
	}
	if s.Image.Start == 0 || s.Image.End <= s.Image.Start {
		t.Errorf("status image range = %v-%v, want a non-empty range", s.Image.Start, s.Image.End)
	}
	if s.LastEvent == nil || s.LastEvent.Outcome != OutcomeSwitched || s.LastEvent.SHA256 != f.sha256 {
		t.Errorf("status last event = %+v, want switched to sha256 %s", s.LastEvent, f.sha256)
	}
}

func TestWatchRejectedFileKeepsImage(t *testing.T) {
	tests := []struct {
		name       string
		data       func(lib *versionedLib) []byte
		perm       os.FileMode
		wantReason string
	}{
		{"garbage", func(*versionedLib) []byte { return []byte("garbage\n") }, 0o644, "not a loadable shared object"},
		{"group writable", func(lib *versionedLib) []byte { return lib.v2 }, 0o664, "writable by group or others"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lib := watchVersioned(t, Options{})
			before := lib.gate.Image()

			f := lib.replace(t, lib.path, tt.data(lib), tt.perm)
			ev := lib.await(t, lib.path, f)

			if ev.Outcome != OutcomeRefused {
				t.Fatalf("event outcome = %s, want %s", ev.Outcome, OutcomeRefused)
			}
			if !strings.Contains(ev.Reason, tt.wantReason) || !strings.Contains(ev.Reason, lib.path) {
				t.Errorf("event reason = %q, want it to name %s and contain %q", ev.Reason, lib.path, tt.wantReason)
			}
			if ev.Version != "1" {
				t.Errorf("event version = %q, want %q from the image still serving", ev.Version, "1")
			}
			if got := lib.call(); got != 1 {
				t.Errorf("after the rejection, vl_version_major() = %d, want 1", got)
			}
			if got := lib.gate.Image().SHA256; got != before.SHA256 {
				t.Errorf("gate image sha256 = %s, want the old %s", got, before.SHA256)
			}
			s := lib.status(t)
			if s.Swaps != 0 {
				t.Errorf("status swaps = %d, want 0", s.Swaps)
			}
			if s.LastEvent == nil || s.LastEvent.Outcome != OutcomeRefused {
				t.Errorf("status last event = %+v, want refused", s.LastEvent)
			}
		})
	}
}

func TestWatchSwapFailureKeepsImage(t *testing.T) {
	lib := watchVersioned(t, Options{})
	// libtrivial.so passes admission but does not export
	// vl_version_major, which the gate has registered.
	f := lib.replace(t, lib.path, readFile(t, testlibs.Path(t, "libtrivial.so")), 0o644)
	ev := lib.await(t, lib.path, f)

	if ev.Outcome != OutcomeFailed {
		t.Fatalf("event outcome = %s (%s), want %s", ev.Outcome, ev.Reason, OutcomeFailed)
	}
	if !strings.Contains(ev.Reason, "vl_version_major") {
		t.Errorf("event reason = %q, want it to name the missing symbol vl_version_major", ev.Reason)
	}
	if got := lib.call(); got != 1 {
		t.Errorf("after the failed swap, vl_version_major() = %d, want 1", got)
	}
	if s := lib.status(t); s.Swaps != 0 {
		t.Errorf("status swaps = %d, want 0", s.Swaps)
	}
}

func TestWatchInPlaceWriteRejectedUntilComplete(t *testing.T) {
	lib := watchVersioned(t, Options{})

	// Put a separate inode at the path first, so that writing in place
	// does not touch the file the running image was loaded from.
	garbage := lib.replace(t, lib.path, []byte("placeholder\n"), 0o644)
	if ev := lib.await(t, lib.path, garbage); ev.Outcome != OutcomeRefused {
		t.Fatalf("placeholder outcome = %s, want %s", ev.Outcome, OutcomeRefused)
	}

	after := lib.status(t).Events
	f, err := os.OpenFile(lib.path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const head = 512 // ELF and program headers, without the segments they describe
	if _, err := f.Write(lib.v2[:head]); err != nil {
		t.Fatal(err)
	}
	partial := replacedFile{sha256: sha256Hex(lib.v2[:head]), device: garbage.device, inode: garbage.inode, after: ptr(after)}
	if ev := lib.await(t, lib.path, partial); ev.Outcome != OutcomeRefused {
		t.Errorf("outcome for the first %d bytes = %s (%s), want %s", head, ev.Outcome, ev.Reason, OutcomeRefused)
	}
	if got := lib.call(); got != 1 {
		t.Errorf("with a partial file in place, vl_version_major() = %d, want 1", got)
	}

	after = lib.status(t).Events
	if _, err := f.Write(lib.v2[head:]); err != nil {
		t.Fatal(err)
	}
	complete := replacedFile{sha256: sha256Hex(lib.v2), device: garbage.device, inode: garbage.inode, after: ptr(after)}
	if ev := lib.await(t, lib.path, complete); ev.Outcome != OutcomeSwitched {
		t.Errorf("outcome for the complete file = %s (%s), want %s", ev.Outcome, ev.Reason, OutcomeSwitched)
	}
	if got := lib.call(); got != 2 {
		t.Errorf("after the complete write, vl_version_major() = %d, want 2", got)
	}
}

func TestWatchDebounceCoalescesChanges(t *testing.T) {
	lib := watchVersioned(t, Options{Debounce: 500 * time.Millisecond})

	// Both renames land within one debounce interval, so only the second
	// file is handled.
	garbage := lib.replace(t, lib.path, []byte("garbage\n"), 0o644)
	v2 := lib.replace(t, lib.path, lib.v2, 0o644)

	if ev := lib.await(t, lib.path, v2); ev.Outcome != OutcomeSwitched {
		t.Fatalf("outcome for v2 = %s (%s), want %s", ev.Outcome, ev.Reason, OutcomeSwitched)
	}
	res, err := dial(t, lib.m).Wait(context.Background(), WaitRequest{
		Path:    lib.path,
		SHA256:  garbage.sha256,
		Timeout: 200 * time.Millisecond,
		After:   garbage.after,
		Device:  garbage.device,
		Inode:   garbage.inode,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut {
		t.Errorf("wait for the replaced garbage file returned %+v, want a timeout because it was never handled", res.Event)
	}
}

func TestWatchHandlesChangeDuringSwap(t *testing.T) {
	lib := watchVersioned(t, Options{})
	sleep, err := lib.gate.Func("vl_sleep_ms")
	if err != nil {
		t.Fatal(err)
	}

	// A call in flight on v1 holds the swap to v2 in its drain.
	var wg sync.WaitGroup
	wg.Go(func() { sleep.Call1(1000) })
	waitInFlight(t, lib.gate)

	v2 := lib.replace(t, lib.path, lib.v2, 0o644)
	waitSwitched(t, lib.gate)
	if !lib.status(t).Busy {
		t.Fatal("status busy = false while the swap to v2 drains, want true")
	}
	// A copy of v1 arrives while the swap to v2 drains.
	v1 := lib.replace(t, lib.path, lib.v1, 0o644)

	if ev := lib.await(t, lib.path, v2); ev.Outcome != OutcomeSwitched {
		t.Errorf("outcome for v2 = %s (%s), want %s", ev.Outcome, ev.Reason, OutcomeSwitched)
	}
	if ev := lib.await(t, lib.path, v1); ev.Outcome != OutcomeSwitched {
		t.Errorf("outcome for v1 after v2 = %s (%s), want %s", ev.Outcome, ev.Reason, OutcomeSwitched)
	}
	wg.Wait()
	if got := lib.call(); got != 1 {
		t.Errorf("after both swaps, vl_version_major() = %d, want 1", got)
	}
	if s := lib.status(t); s.Swaps != 2 {
		t.Errorf("status swaps = %d, want 2", s.Swaps)
	}
}

func waitInFlight(t *testing.T, g *trampoline.Gate) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for g.Stats().InFlight == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the call never started")
		}
		time.Sleep(time.Millisecond)
	}
}

// waitSwitched waits until g has switched to a new image. The swap may
// still be draining the old one.
func waitSwitched(t *testing.T, g *trampoline.Gate) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for g.Stats().Swaps == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the gate never switched to the new image")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWatchSymlink(t *testing.T) {
	dir := t.TempDir()
	v1 := readFile(t, testlibs.Path(t, "v1/libversioned.so.1"))
	v2 := readFile(t, testlibs.Path(t, "v2/libversioned.so.1"))
	writeFile(t, dir, "libversioned.so.1.0", v1, 0o644)
	link := symlink(t, dir, "libversioned.so.1.0", "libversioned.so.1")
	g := openGate(t, link)
	m := newManager(t, Options{Debounce: testDebounce})
	if err := m.Watch(link, g); err != nil {
		t.Fatal(err)
	}
	lib := &versionedLib{path: link, gate: g, m: m}

	// Retarget the link atomically to a new file.
	after := lib.status(t).Events
	target := writeFile(t, dir, "libversioned.so.1.1", v2, 0o644)
	if err := os.Symlink("libversioned.so.1.1", filepath.Join(dir, ".link.tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, ".link.tmp"), link); err != nil {
		t.Fatal(err)
	}
	ev := lib.await(t, link, replacedFile{sha256: sha256Hex(v2), after: &after})
	if ev.Outcome != OutcomeSwitched {
		t.Fatalf("outcome after retargeting the link = %s (%s), want %s", ev.Outcome, ev.Reason, OutcomeSwitched)
	}
	if ev.File != target {
		t.Errorf("event file = %s, want the link target %s", ev.File, target)
	}
	s := lib.status(t)
	if s.Target != target {
		t.Errorf("status target = %q, want %s", s.Target, target)
	}

	// Replacing the target itself is seen too, and a wait may name the
	// target instead of the link.
	f := lib.replace(t, target, v1, 0o644)
	if ev := lib.await(t, target, f); ev.Outcome != OutcomeSwitched {
		t.Errorf("outcome after replacing the target = %s (%s), want %s", ev.Outcome, ev.Reason, OutcomeSwitched)
	}
}

func TestWatchRejectsSymlinkOverFile(t *testing.T) {
	lib := watchVersioned(t, Options{})
	elsewhere := writeFile(t, t.TempDir(), "libversioned.so.1", lib.v2, 0o644)
	tmp := filepath.Join(filepath.Dir(lib.path), ".link.tmp")
	if err := os.Symlink(elsewhere, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, lib.path); err != nil {
		t.Fatal(err)
	}

	// A rejected symlink is not opened, so its event has no SHA-256 and
	// no wait can select it. Poll the status instead.
	deadline := time.Now().Add(waitTimeout)
	var s LibraryStatus
	for s = lib.status(t); s.LastEvent == nil; s = lib.status(t) {
		if time.Now().After(deadline) {
			t.Fatal("no event after replacing the file with a symbolic link")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.LastEvent.Outcome != OutcomeRefused || !strings.Contains(s.LastEvent.Reason, "symbolic link to "+elsewhere) {
		t.Errorf("last event = %s: %q, want refused naming the link target %s", s.LastEvent.Outcome, s.LastEvent.Reason, elsewhere)
	}
	if got := lib.call(); got != 1 {
		t.Errorf("after the rejection, vl_version_major() = %d, want 1", got)
	}
}

func TestWaitForRunningImage(t *testing.T) {
	lib := watchVersioned(t, Options{})
	// No change happened, but the running image has this SHA-256.
	ev := lib.await(t, lib.path, replacedFile{sha256: sha256Hex(lib.v1)})
	if ev.Outcome != OutcomeUnchanged {
		t.Errorf("outcome = %s, want %s", ev.Outcome, OutcomeUnchanged)
	}
	if ev.Version != "1" {
		t.Errorf("version = %q, want %q", ev.Version, "1")
	}
}

func TestWatchErrors(t *testing.T) {
	lib := watchVersioned(t, Options{})
	if err := lib.m.Watch(lib.path, lib.gate); err == nil || !strings.Contains(err.Error(), "already watched") {
		t.Errorf("second Watch of %s = %v, want an error saying it is already watched", lib.path, err)
	}
	missing := filepath.Join(t.TempDir(), "missing.so")
	if err := lib.m.Watch(missing, lib.gate); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Watch(%s) = %v, want an error matching os.ErrNotExist", missing, err)
	}
	if err := lib.m.SetVersionFunc(missing, nil); !errors.Is(err, ErrNotWatched) {
		t.Errorf("SetVersionFunc(%s) = %v, want ErrNotWatched", missing, err)
	}

	if err := lib.m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := lib.m.Watch(lib.path, lib.gate); !errors.Is(err, ErrClosed) {
		t.Errorf("Watch after Close = %v, want ErrClosed", err)
	}
}

func TestWatchSwapsUnderLoad(t *testing.T) {
	const swaps = 10
	lib := watchVersioned(t, Options{})
	version, err := lib.gate.Func("vl_version")
	if err != nil {
		t.Fatal(err)
	}

	// Callers copy the version string inside a call window, as a program
	// must in ModeProtect, while the file is replaced back and forth.
	stop := make(chan struct{})
	var failures sync.Map // error text to true
	var calls [4]int
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			for n := 0; ; n++ {
				// A pause after each burst leaves CPU time for the swaps.
				if n%50 == 49 {
					time.Sleep(time.Millisecond)
				}
				select {
				case <-stop:
					return
				default:
				}
				func() {
					defer func() {
						if r := recover(); r != nil {
							failures.Store(fmt.Sprint(r), true)
						}
					}()
					var v string
					lib.gate.Hold(func() { v = lib.gate.GoString(version.Call0()) })
					if v != "1.0.0" && v != "2.0.0" {
						failures.Store(fmt.Sprintf("vl_version() = %q, want 1.0.0 or 2.0.0", v), true)
					}
				}()
				calls[i]++
			}
		})
	}

	for i := range swaps {
		data := lib.v2
		if i%2 == 1 {
			data = lib.v1
		}
		f := lib.replace(t, lib.path, data, 0o644)
		if ev := lib.await(t, lib.path, f); ev.Outcome != OutcomeSwitched {
			t.Errorf("swap %d: outcome %s (%s), want %s", i, ev.Outcome, ev.Reason, OutcomeSwitched)
		}
	}
	close(stop)
	wg.Wait()

	failures.Range(func(k, _ any) bool {
		t.Errorf("call failed during swaps: %v", k)
		return true
	})
	for i, n := range calls {
		if n == 0 {
			t.Errorf("caller %d made no call, want some", i)
		}
	}
	if s := lib.status(t); s.Swaps != swaps {
		t.Errorf("status swaps = %d, want %d", s.Swaps, swaps)
	}
}

func TestWaitAfterSkipsEarlierEvents(t *testing.T) {
	lib := watchVersioned(t, Options{})
	v2 := lib.replace(t, lib.path, lib.v2, 0o644)
	if ev := lib.await(t, lib.path, v2); ev.Outcome != OutcomeSwitched || ev.Seq != 1 {
		t.Fatalf("first event = seq %d %s, want seq 1 switched", ev.Seq, ev.Outcome)
	}
	v1 := lib.replace(t, lib.path, lib.v1, 0o644)
	if ev := lib.await(t, lib.path, v1); ev.Outcome != OutcomeSwitched || ev.Seq != 2 {
		t.Fatalf("second event = seq %d %s, want seq 2 switched", ev.Seq, ev.Outcome)
	}

	c := dial(t, lib.m)
	// The v2 event is in the history, so a wait from before it returns it.
	res, err := c.Wait(context.Background(), WaitRequest{Path: lib.path, SHA256: v2.sha256, Timeout: waitTimeout, After: v2.after})
	if err != nil {
		t.Fatal(err)
	}
	if res.TimedOut || res.Event.Seq != 1 {
		t.Errorf("wait after %d for v2 = %+v, want the event with seq 1", *v2.after, res)
	}
	// A wait from after both events must wait for a new v2 event.
	res, err = c.Wait(context.Background(), WaitRequest{Path: lib.path, SHA256: v2.sha256, Timeout: 100 * time.Millisecond, After: ptr[uint64](2)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut {
		t.Errorf("wait after 2 for v2 = %+v, want a timeout", res.Event)
	}
	// Without a cursor or an inode, only the newest event counts.
	res, err = c.Wait(context.Background(), WaitRequest{Path: lib.path, SHA256: v2.sha256, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut {
		t.Errorf("wait without cursor for v2 = %+v, want a timeout because the newest event is for v1", res.Event)
	}
}

func ptr[T any](v T) *T { return &v }
