package hotswap

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/decouple-go/decouple/internal/testlibs"
)

func newManager(t *testing.T, opts Options) *Manager {
	t.Helper()
	if opts.SocketDir == "" {
		opts.SocketDir = t.TempDir()
	}
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

func dial(t *testing.T, m *Manager) *Client {
	t.Helper()
	c, err := Dial(context.Background(), m.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestNewCreatesAndCloseRemovesSocket(t *testing.T) {
	dir := t.TempDir()
	m, err := New(Options{SocketDir: dir})
	if err != nil {
		t.Fatal(err)
	}

	want := filepath.Join(dir, strconv.Itoa(os.Getpid())+".sock")
	if m.SocketPath() != want {
		t.Errorf("SocketPath() = %s, want %s", m.SocketPath(), want)
	}
	fi, err := os.Lstat(want)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		t.Errorf("%s has type %v, want a socket", want, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", want, perm)
	}

	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Lstat(want); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Close, Lstat(%s) = %v, want not exist", want, err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if err := m.SetVersionFunc("/nowhere", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("SetVersionFunc after Close = %v, want ErrClosed", err)
	}
}

func TestDefaultSocketDir(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	if got, want := DefaultSocketDir(), "/run/user/1000/decouple"; got != want {
		t.Errorf("with XDG_RUNTIME_DIR set, DefaultSocketDir() = %s, want %s", got, want)
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	if got, want := DefaultSocketDir(), fmt.Sprintf("/tmp/decouple-%d", os.Getuid()); got != want {
		t.Errorf("without XDG_RUNTIME_DIR, DefaultSocketDir() = %s, want %s", got, want)
	}
}

func TestNewCreatesDefaultSocketDir(t *testing.T) {
	runtimeDir := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", runtimeDir)
	m, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	dir := filepath.Join(runtimeDir, "decouple")
	if got := filepath.Dir(m.SocketPath()); got != dir {
		t.Errorf("socket directory = %s, want %s", got, dir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("%s has mode %04o, want 0700", dir, perm)
	}
}

func TestNewRejectsOpenDefaultSocketDir(t *testing.T) {
	runtimeDir := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", runtimeDir)
	dir := filepath.Join(runtimeDir, "decouple")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	m, err := New(Options{})
	if err == nil {
		m.Close()
		t.Fatalf("New with %s at mode 0755 succeeded, want an error", dir)
	}
	if want := "has mode 0755"; !strings.Contains(err.Error(), want) {
		t.Errorf("New error = %q, want it to contain %q", err, want)
	}
}

func TestNewRemovesStaleSockets(t *testing.T) {
	dir := t.TempDir()

	// A process that has exited leaves a pid that is not in use, unless
	// the kernel reuses it within the test, which pid_max makes unlikely.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(dir, strconv.Itoa(cmd.Process.Pid)+".sock")
	leaveSocket(t, dead)
	live := filepath.Join(dir, strconv.Itoa(os.Getppid())+".sock")
	leaveSocket(t, live)
	other := filepath.Join(dir, "notes.sock")
	writeFile(t, dir, "notes.sock", nil, 0o600)

	newManager(t, Options{SocketDir: dir})

	if _, err := os.Lstat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket of exited pid %d: Lstat = %v, want not exist", cmd.Process.Pid, err)
	}
	if _, err := os.Lstat(live); err != nil {
		t.Errorf("socket of running pid %d: Lstat = %v, want it kept", os.Getppid(), err)
	}
	if _, err := os.Lstat(other); err != nil {
		t.Errorf("file not named <pid>.sock: Lstat = %v, want it kept", err)
	}
}

// leaveSocket creates a socket file at path that nothing listens on, as a
// killed process leaves it.
func leaveSocket(t *testing.T, path string) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
}

func TestNewRejectsSecondManagerInProcess(t *testing.T) {
	dir := t.TempDir()
	newManager(t, Options{SocketDir: dir})

	m, err := New(Options{SocketDir: dir})
	if err == nil {
		m.Close()
		t.Fatal("second New in the same socket directory succeeded, want an error")
	}
	if want := "already served"; !strings.Contains(err.Error(), want) {
		t.Errorf("second New error = %q, want it to contain %q", err, want)
	}
}

func TestNewReplacesOwnStaleSocket(t *testing.T) {
	dir := t.TempDir()
	leaveSocket(t, filepath.Join(dir, strconv.Itoa(os.Getpid())+".sock"))

	m := newManager(t, Options{SocketDir: dir})
	if _, err := dial(t, m).Status(context.Background()); err != nil {
		t.Errorf("Status on a socket that replaced a stale one: %v", err)
	}
}

func TestNewRejectsLongSocketPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	m, err := New(Options{SocketDir: dir})
	if err == nil {
		m.Close()
		t.Fatalf("New with socket directory of %d bytes succeeded, want an error", len(dir))
	}
	if want := "set Options.SocketDir to a shorter directory"; !strings.Contains(err.Error(), want) {
		t.Errorf("New error = %q, want it to contain %q", err, want)
	}
}

func TestControlStatusWithoutLibraries(t *testing.T) {
	m := newManager(t, Options{})
	s, err := dial(t, m).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.PID != os.Getpid() {
		t.Errorf("status pid = %d, want %d", s.PID, os.Getpid())
	}
	if want := filepath.Base(os.Args[0]); s.Program != want {
		t.Errorf("status program = %q, want %q", s.Program, want)
	}
	if len(s.Libraries) != 0 {
		t.Errorf("status libraries = %+v, want none", s.Libraries)
	}
}

func TestControlInvalidRequests(t *testing.T) {
	m := newManager(t, Options{})
	conn, err := net.Dial("unix", m.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)

	sha := strings.Repeat("ab", 32)
	tests := []struct {
		request   string
		wantError string
	}{
		{`not json`, "invalid request"},
		{`{"op":"reload"}`, `unknown op "reload"`},
		{`{"op":"wait","sha256":"` + sha + `"}`, "missing path"},
		{`{"op":"wait","path":"/lib/x.so","sha256":"abc"}`, `invalid sha256 "abc"`},
		{`{"op":"wait","path":"/lib/x.so","sha256":"` + sha + `"}`, "/lib/x.so: path is not watched"},
	}
	// All requests go over one connection, which must stay usable after
	// each error.
	for _, tt := range tests {
		if _, err := fmt.Fprintln(conn, tt.request); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("reading the response to %s: %v", tt.request, err)
		}
		var resp Response
		if err := json.Unmarshal(line, &resp); err != nil {
			t.Fatalf("response %q to %s: %v", line, tt.request, err)
		}
		if !strings.Contains(resp.Error, tt.wantError) {
			t.Errorf("response to %s has error %q, want it to contain %q", tt.request, resp.Error, tt.wantError)
		}
	}
}

func TestListSockets(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"12.sock", "3.sock", "x.sock", "5.txt", "-1.sock"} {
		writeFile(t, dir, name, nil, 0o600)
	}
	got, err := ListSockets(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []Socket{{PID: 3, Path: filepath.Join(dir, "3.sock")}, {PID: 12, Path: filepath.Join(dir, "12.sock")}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ListSockets = %v, want %v", got, want)
	}

	got, err = ListSockets(filepath.Join(dir, "missing"))
	if err != nil || len(got) != 0 {
		t.Errorf("ListSockets of a missing directory = %v, %v; want no sockets and no error", got, err)
	}
}

func TestAddressJSON(t *testing.T) {
	data, err := json.Marshal(ImageStatus{Start: 0x7f0012340000, End: 0x7f0012350000})
	if err != nil {
		t.Fatal(err)
	}
	if want := `"start":"0x7f0012340000","end":"0x7f0012350000"`; !strings.Contains(string(data), want) {
		t.Errorf("encoded image status %s, want it to contain %s", data, want)
	}
	var back ImageStatus
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Start != 0x7f0012340000 || back.End != 0x7f0012350000 {
		t.Errorf("decoded addresses %v-%v, want 0x7f0012340000-0x7f0012350000", back.Start, back.End)
	}
}

func TestClientCanceledContext(t *testing.T) {
	m := newManager(t, Options{})
	c := dial(t, m)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Status(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Status with a canceled context = %v, want context.Canceled", err)
	}
}

// OpCheck loads a candidate as a swap would and reports the outcome, but
// the running image keeps serving and the watched file is not touched.
func TestCheckCandidate(t *testing.T) {
	lib := watchVersioned(t, Options{})
	dir := t.TempDir()
	tests := []struct {
		name    string
		data    []byte
		perm    os.FileMode
		want    Outcome
		wantWhy string
	}{
		{"loadable", lib.v2, 0o644, OutcomeSwitched, ""},
		{"missing symbol", readFile(t, testlibs.Path(t, "libtrivial.so")), 0o644, OutcomeFailed, "does not export vl_version_major"},
		{"writable by others", lib.v2, 0o666, OutcomeRefused, "writable by group or others"},
		{"not a library", []byte("not an ELF file\n"), 0o644, OutcomeRefused, "not a loadable shared object"},
	}
	c := dial(t, lib.m)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			candidate := writeFile(t, dir, strings.ReplaceAll(tt.name, " ", "-")+".so", tt.data, tt.perm)
			if err := os.Chmod(candidate, tt.perm); err != nil {
				t.Fatal(err)
			}
			res, err := c.Check(context.Background(), lib.path, candidate)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != tt.want || !strings.Contains(res.Reason, tt.wantWhy) {
				t.Errorf("check of %s: outcome %s (%q), want %s with a reason containing %q", tt.name, res.Outcome, res.Reason, tt.want, tt.wantWhy)
			}
			if got := lib.call(); got != 1 {
				t.Errorf("vl_version_major() after the check = %d, want 1 from the running image", got)
			}
		})
	}
	if s := lib.status(t); s.Swaps != 0 {
		t.Errorf("status swaps = %d after checks only, want 0", s.Swaps)
	}
}

// While a check runs, status reports since when, so that a check stuck in
// a candidate's constructor shows. An Admission function that waits holds
// the check open here.
func TestCheckShowsInStatus(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	lib := watchVersioned(t, Options{Admission: func(string) error {
		entered <- struct{}{}
		<-release
		return nil
	}})
	candidate := writeFile(t, t.TempDir(), "candidate.so", lib.v2, 0o644)

	done := make(chan error, 1)
	go func() {
		_, err := dial(t, lib.m).Check(context.Background(), lib.path, candidate)
		done <- err
	}()
	<-entered
	if s := lib.status(t); s.CheckingSince == nil {
		t.Error("status during a check has no checking_since, want the start of the check")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := lib.status(t); s.CheckingSince != nil {
		t.Errorf("status after the check has checking_since %v, want none", s.CheckingSince)
	}
}
