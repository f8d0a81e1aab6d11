package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decouple-go/decouple/hotswap"
	"github.com/decouple-go/decouple/trampoline"
)

// Environment of the child program that the test binary runs as itself.
const (
	envChild     = "LIBSWAP_TEST_CHILD"      // "1" runs the child instead of the tests
	envLib       = "LIBSWAP_TEST_LIB"        // library path to open and watch
	envSocketDir = "LIBSWAP_TEST_SOCKET_DIR" // Options.SocketDir
	envDebounce  = "LIBSWAP_TEST_DEBOUNCE"   // Options.Debounce, as a Go duration
	envReject    = "LIBSWAP_TEST_REJECT"     // if set, Options.Admission rejects every file with this text
)

// callers is the number of goroutines that call vl_version in the child.
const callers = 4

// childMessage is one JSON line the child writes to stdout.
type childMessage struct {
	Event string `json:"event"` // "ready", "version" or "summary"
	PID   int    `json:"pid,omitempty"`
	// Version is the string that vl_version returned ("ready") or that a
	// caller saw for the first time ("version").
	Version string `json:"version,omitempty"`

	// Fields of "summary".
	Calls       map[string]int64 `json:"calls,omitempty"`    // calls by returned version
	Failures    int64            `json:"failures"`           // calls that panicked or returned neither 1.0.0 nor 2.0.0
	Regressions int64            `json:"regressions"`        // a caller saw 1.0.0 after it had seen 2.0.0
	Versions    []string         `json:"versions,omitempty"` // distinct return values in the order first seen
	Errors      []string         `json:"errors,omitempty"`   // unexpected return values and panics, at most 10
}

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild is a program that serves calls from a watched library: it opens
// the library in ModeProtect, watches it with a hotswap.Manager, calls
// vl_version from several goroutines until stdin is closed, and reports on
// stdout.
func runChild() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	fail := func(err error) int {
		log.Error("child failed", "error", err)
		return 1
	}
	path := os.Getenv(envLib)
	debounce, err := time.ParseDuration(os.Getenv(envDebounce))
	if err != nil {
		return fail(fmt.Errorf("%s: %w", envDebounce, err))
	}

	g, err := trampoline.Open(path, &trampoline.Options{Mode: trampoline.ModeProtect})
	if err != nil {
		return fail(err)
	}
	defer g.Close()
	fn, err := g.Func("vl_version")
	if err != nil {
		return fail(err)
	}
	// vl_version returns a pointer into the library, which is inaccessible
	// outside a call window, so the string is copied inside one.
	version := func() string {
		var v string
		g.Hold(func() { v = g.GoString(fn.Call0()) })
		return v
	}

	opts := hotswap.Options{Logger: log, SocketDir: os.Getenv(envSocketDir), Debounce: debounce}
	if reason := os.Getenv(envReject); reason != "" {
		opts.Admission = func(string) error { return errors.New(reason) }
	}
	m, err := hotswap.New(opts)
	if err != nil {
		return fail(err)
	}
	defer m.Close()
	if err := m.Watch(path, g); err != nil {
		return fail(err)
	}
	if err := m.SetVersionFunc(path, version); err != nil {
		return fail(err)
	}

	var out childOutput
	out.send(childMessage{Event: "ready", PID: os.Getpid(), Version: version()})
	var stats callStats
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() { stats.call(version, stop, &out) })
	}

	io.Copy(io.Discard, os.Stdin)
	close(stop)
	wg.Wait()
	out.send(stats.summary())
	return 0
}

// childOutput writes JSON lines to stdout, one writer at a time.
type childOutput struct {
	mu sync.Mutex
}

func (o *childOutput) send(msg childMessage) {
	o.mu.Lock()
	defer o.mu.Unlock()
	json.NewEncoder(os.Stdout).Encode(msg)
}

// callStats counts the calls of the calling goroutines by result.
type callStats struct {
	calls1, calls2 atomic.Int64
	failures       atomic.Int64
	regressions    atomic.Int64

	mu       sync.Mutex
	versions []string
	errors   []string
}

func (s *callStats) call(version func() string, stop <-chan struct{}, out *childOutput) {
	seen2 := false
	for i := 0; ; i++ {
		// Bursts of calls with short pauses keep several calls in flight
		// at once without spinning the CPU the whole test.
		if i%100 == 99 {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
		v, err := callOnce(version)
		switch {
		case err != nil:
			s.fail(err.Error())
		case v == "1.0.0":
			s.calls1.Add(1)
			if seen2 {
				s.regressions.Add(1)
			}
		case v == "2.0.0":
			s.calls2.Add(1)
			seen2 = true
		default:
			s.fail(fmt.Sprintf("unexpected return value %q", v))
			continue
		}
		if err == nil && s.firstSeen(v) {
			out.send(childMessage{Event: "version", Version: v})
		}
	}
}

func callOnce(version func() string) (v string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("call panicked: %v", r)
		}
	}()
	return version(), nil
}

func (s *callStats) fail(msg string) {
	s.failures.Add(1)
	s.mu.Lock()
	if len(s.errors) < 10 {
		s.errors = append(s.errors, msg)
	}
	s.mu.Unlock()
}

func (s *callStats) firstSeen(v string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seen := range s.versions {
		if seen == v {
			return false
		}
	}
	s.versions = append(s.versions, v)
	return true
}

func (s *callStats) summary() childMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return childMessage{
		Event:       "summary",
		Calls:       map[string]int64{"1.0.0": s.calls1.Load(), "2.0.0": s.calls2.Load()},
		Failures:    s.failures.Load(),
		Regressions: s.regressions.Load(),
		Versions:    s.versions,
		Errors:      s.errors,
	}
}

// child is a running child program, seen from the test.
type child struct {
	pid      int
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	messages chan childMessage
	stderr   *lockedBuffer
	stopped  bool
}

// childOptions configures startChild.
type childOptions struct {
	debounce time.Duration // default 20ms
	reject   string        // see envReject
}

// startChild runs the child program on the library at lib with its control
// socket in socketDir and waits until its callers have made a call.
func startChild(t *testing.T, lib, socketDir string, opts childOptions) *child {
	t.Helper()
	if opts.debounce == 0 {
		opts.debounce = 20 * time.Millisecond
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(),
		envChild+"=1",
		envLib+"="+lib,
		envSocketDir+"="+socketDir,
		envDebounce+"="+opts.debounce.String(),
		envReject+"="+opts.reject,
	)
	c := &child{cmd: cmd, messages: make(chan childMessage, 16), stderr: new(lockedBuffer)}
	cmd.Stderr = c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.messages)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var msg childMessage
			if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
				msg = childMessage{Event: "invalid", Errors: []string{sc.Text()}}
			}
			c.messages <- msg
		}
	}()
	t.Cleanup(func() {
		if !c.stopped {
			c.stdin.Close()
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("child stderr:\n%s", c.stderr.String())
		}
	})

	ready := c.next(t, "ready")
	if ready.Version != "1.0.0" {
		t.Fatalf("child started with version %q, want 1.0.0", ready.Version)
	}
	c.pid = ready.PID
	// The callers have started once one of them reports its first result.
	c.waitVersion(t, "1.0.0")
	return c
}

// next returns the next message of the given event, skipping others.
func (c *child) next(t *testing.T, event string) childMessage {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case msg, ok := <-c.messages:
			if !ok {
				t.Fatalf("child exited before sending %q: %v\nstderr:\n%s", event, c.cmd.Wait(), c.stderr.String())
			}
			if msg.Event == event {
				return msg
			}
		case <-timeout:
			t.Fatalf("child sent no %q message within 30s", event)
		}
	}
}

// waitVersion waits until a caller in the child has seen version v.
func (c *child) waitVersion(t *testing.T, v string) {
	t.Helper()
	for {
		if msg := c.next(t, "version"); msg.Version == v {
			return
		}
	}
}

// stop closes the child's stdin, which ends it, and returns its summary.
func (c *child) stop(t *testing.T) childMessage {
	t.Helper()
	c.stdin.Close()
	summary := c.next(t, "summary")
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("child exited with %v", err)
	}
	c.stopped = true
	return summary
}

// checkSummary checks that the child's calls saw exactly the versions in
// want, in that order, with no failed call.
func checkSummary(t *testing.T, s childMessage, want ...string) {
	t.Helper()
	if s.Failures != 0 {
		t.Errorf("child had %d failed calls, want 0: %q", s.Failures, s.Errors)
	}
	if s.Regressions != 0 {
		t.Errorf("child callers saw 1.0.0 after 2.0.0 %d times, want 0", s.Regressions)
	}
	if !slices.Equal(s.Versions, want) {
		t.Errorf("child saw versions %q, want %q", s.Versions, want)
	}
	for _, v := range want {
		if s.Calls[v] == 0 {
			t.Errorf("child made no call that returned %s, want some", v)
		}
	}
}

// lockedBuffer is a bytes.Buffer that the child's stderr copier and the
// test can use concurrently.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
