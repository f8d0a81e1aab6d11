package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/decouple-go/decouple/hotswap"
	"github.com/decouple-go/decouple/internal/testlibs"
	"github.com/decouple-go/decouple/loader"
)

// runLibswap runs the command line args and returns its stdout and stderr.
func runLibswap(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), &out, &errOut, args)
	return out.String(), errOut.String(), err
}

// installV1 copies the v1 build of libversioned.so.1 into a new temporary
// directory and returns its path.
func installV1(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "libversioned.so.1")
	copyFile(t, testlibs.Path(t, "v1/libversioned.so.1"), path)
	return path
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, 0o644); err != nil {
		t.Fatal(err)
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// checkOnlyFile checks that dir contains only the file name, so that no
// temporary file was left behind.
func checkOnlyFile(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != name {
		t.Errorf("%s contains %q, want only %q", dir, names, name)
	}
}

// statusJSON runs "libswap status --json" and returns the decoded output.
func statusJSON(t *testing.T, socketDir string) []hotswap.Status {
	t.Helper()
	stdout, stderr, err := runLibswap(t, "status", "--json", "--socket-dir", socketDir)
	if err != nil {
		t.Fatalf("status --json: %v\nstderr: %s", err, stderr)
	}
	var list []hotswap.Status
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatalf("status --json output %q: %v", stdout, err)
	}
	return list
}

func TestPushSwitchesRunningProcess(t *testing.T) {
	lib := installV1(t)
	socketDir := t.TempDir()
	c := startChild(t, lib, socketDir, childOptions{})
	v2 := testlibs.Path(t, "v2/libversioned.so.1")

	stdout, stderr, err := runLibswap(t, "push", v2, "--to", lib, "--socket-dir", socketDir, "--timeout", "30s")
	if err != nil {
		t.Fatalf("push: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	if want := fmt.Sprintf("pid %d (%s): switched to 2.0.0\n", c.pid, filepath.Base(os.Args[0])); !strings.Contains(stdout, want) {
		t.Errorf("push output %q, want it to contain %q", stdout, want)
	}
	if want := "installed " + v2 + " at " + lib; !strings.Contains(stdout, want) {
		t.Errorf("push output %q, want it to contain %q", stdout, want)
	}
	c.waitVersion(t, "2.0.0")

	if got, want := fileSHA256(t, lib), fileSHA256(t, v2); got != want {
		t.Errorf("%s has sha256 %s after push, want %s of v2", lib, got, want)
	}
	fi, err := os.Stat(lib)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o644 {
		t.Errorf("%s has mode %04o after push, want 0644", lib, perm)
	}
	checkOnlyFile(t, filepath.Dir(lib), filepath.Base(lib))

	list := statusJSON(t, socketDir)
	if len(list) != 1 || len(list[0].Libraries) != 1 {
		t.Fatalf("status lists %+v, want one process with one library", list)
	}
	s := list[0].Libraries[0]
	if s.Image.Version != "2.0.0" || s.Swaps != 1 {
		t.Errorf("status image version %q with %d swaps, want 2.0.0 with 1 swap", s.Image.Version, s.Swaps)
	}

	checkSummary(t, c.stop(t), "1.0.0", "2.0.0")
}

func TestPushRejectsTextFile(t *testing.T) {
	lib := installV1(t)
	socketDir := t.TempDir()
	c := startChild(t, lib, socketDir, childOptions{})
	text := filepath.Join(t.TempDir(), "notes.so")
	if err := os.WriteFile(text, []byte("this is not a library\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := fileSHA256(t, lib)

	stdout, _, err := runLibswap(t, "push", text, "--to", lib, "--socket-dir", socketDir)
	if err == nil {
		t.Fatalf("push of a text file succeeded with output %q, want an error", stdout)
	}
	if want := "rejected " + text + ", " + lib + " is unchanged"; !strings.Contains(err.Error(), want) {
		t.Errorf("push error = %q, want it to contain %q", err, want)
	}
	if got := fileSHA256(t, lib); got != before {
		t.Errorf("%s has sha256 %s after the rejected push, want the old %s", lib, got, before)
	}
	checkOnlyFile(t, filepath.Dir(lib), filepath.Base(lib))

	list := statusJSON(t, socketDir)
	if len(list) != 1 || len(list[0].Libraries) != 1 {
		t.Fatalf("status lists %+v, want one process with one library", list)
	}
	if s := list[0].Libraries[0]; s.Image.Version != "1.0.0" || s.LastEvent != nil {
		t.Errorf("status image version %q, last event %+v; want 1.0.0 and no event", s.Image.Version, s.LastEvent)
	}
	checkSummary(t, c.stop(t), "1.0.0")
}

func TestAdmissionRejectsRenamedGarbage(t *testing.T) {
	lib := installV1(t)
	socketDir := t.TempDir()
	c := startChild(t, lib, socketDir, childOptions{})

	// Bypass libswap: rename a garbage file over the library directly.
	tmp := filepath.Join(filepath.Dir(lib), ".garbage")
	garbage := []byte("\x7fELF but nothing else\n")
	if err := os.WriteFile(tmp, garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, lib); err != nil {
		t.Fatal(err)
	}

	sockets, err := hotswap.ListSockets(socketDir)
	if err != nil || len(sockets) != 1 {
		t.Fatalf("ListSockets(%s) = %v, %v; want the child's socket", socketDir, sockets, err)
	}
	client, err := hotswap.Dial(context.Background(), sockets[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sum := sha256.Sum256(garbage)
	// The plain form of the request, without a cursor or an inode, as a
	// script would send it.
	res, err := client.Wait(context.Background(), hotswap.WaitRequest{Path: lib, SHA256: hex.EncodeToString(sum[:]), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.TimedOut || res.Event.Outcome != hotswap.OutcomeRefused {
		t.Fatalf("wait for the garbage file returned %+v, want outcome refused", res)
	}

	list := statusJSON(t, socketDir)
	if len(list) != 1 || len(list[0].Libraries) != 1 {
		t.Fatalf("status lists %+v, want one process with one library", list)
	}
	s := list[0].Libraries[0]
	if s.Image.Version != "1.0.0" {
		t.Errorf("status image version = %q, want 1.0.0", s.Image.Version)
	}
	if s.LastEvent == nil || s.LastEvent.Outcome != hotswap.OutcomeRefused || !strings.Contains(s.LastEvent.Reason, "admission of "+lib) {
		t.Errorf("status last event = %+v, want refused with a reason naming %s", s.LastEvent, lib)
	}

	text, _, err := runLibswap(t, "status", "--socket-dir", socketDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{fmt.Sprintf("pid %d (", c.pid), lib, "version 1.0.0", ": refused: admission of " + lib} {
		if !strings.Contains(text, want) {
			t.Errorf("status output %q, want it to contain %q", text, want)
		}
	}

	checkSummary(t, c.stop(t), "1.0.0")
}

func TestPushReportsUnsuccessfulOutcomes(t *testing.T) {
	tests := []struct {
		name      string
		lib       string // test library to push
		opts      childOptions
		timeout   string
		wantLine  string
		installed bool // the file passes the check and is renamed over the target
	}{
		{
			name:     "refused by admission",
			lib:      "v2/libversioned.so.1",
			opts:     childOptions{reject: "deployment frozen"},
			timeout:  "30s",
			wantLine: "refused before install: admission of ",
		},
		{
			name:     "load check failed",
			lib:      "libtrivial.so", // lacks vl_version, which the child registered
			timeout:  "30s",
			wantLine: "failed before install: check: ",
		},
		{
			name:      "timed out",
			lib:       "v2/libversioned.so.1",
			opts:      childOptions{debounce: time.Minute},
			timeout:   "300ms",
			wantLine:  "timed out after 300ms",
			installed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lib := installV1(t)
			before := fileSHA256(t, lib)
			socketDir := t.TempDir()
			c := startChild(t, lib, socketDir, tt.opts)

			stdout, _, err := runLibswap(t, "push", testlibs.Path(t, tt.lib), "--to", lib, "--socket-dir", socketDir, "--timeout", tt.timeout)
			want := "a process watching " + lib + " rejected "
			if tt.installed {
				want = "1 of 1 processes watching " + lib + " did not switch"
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("push error = %v, want one containing %q", err, want)
			}
			if want := fmt.Sprintf("pid %d (%s): %s", c.pid, filepath.Base(os.Args[0]), tt.wantLine); !strings.Contains(stdout, want) {
				t.Errorf("push output %q, want it to contain %q", stdout, want)
			}
			if strings.Contains(stdout, ".libswap-") {
				t.Errorf("push output %q names the temporary copy, which is gone; want the file passed to push", stdout)
			}
			if after := fileSHA256(t, lib); !tt.installed && after != before {
				t.Errorf("%s has sha256 %s after a rejected push, want the old %s", lib, after, before)
			}
			checkOnlyFile(t, filepath.Dir(lib), filepath.Base(lib))
			checkSummary(t, c.stop(t), "1.0.0")
		})
	}
}

func TestPushWithoutWatchers(t *testing.T) {
	v1 := testlibs.Path(t, "v1/libversioned.so.1")
	socketDir := t.TempDir()
	for _, name := range []string{"new", "existing"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			dst := filepath.Join(dir, "libversioned.so.1")
			if name == "existing" {
				copyFile(t, testlibs.Path(t, "v2/libversioned.so.1"), dst)
			}

			stdout, _, err := runLibswap(t, "push", v1, "--to", dst, "--socket-dir", socketDir)
			if err != nil {
				t.Fatal(err)
			}
			if want := "no process with a control socket in " + socketDir + " watches " + dst; !strings.Contains(stdout, want) {
				t.Errorf("push output %q, want it to contain %q", stdout, want)
			}
			if got, want := fileSHA256(t, dst), fileSHA256(t, v1); got != want {
				t.Errorf("%s has sha256 %s, want %s", dst, got, want)
			}
			checkOnlyFile(t, dir, "libversioned.so.1")
		})
	}
}

func TestPushRejectsInvalidInput(t *testing.T) {
	v2Data, err := os.ReadFile(testlibs.Path(t, "v2/libversioned.so.1"))
	if err != nil {
		t.Fatal(err)
	}
	// e_machine is the 16-bit field at offset 18 of the ELF header; 183 is
	// EM_AARCH64.
	arm := bytes.Clone(v2Data)
	arm[18], arm[19] = 183, 0

	tests := []struct {
		name string
		// setup returns the NEW.so argument and the --to path, inside dir.
		setup     func(t *testing.T, dir string) (src, dst string)
		wantError string
	}{
		{
			name: "wrong architecture",
			setup: func(t *testing.T, dir string) (string, string) {
				src := filepath.Join(dir, "arm.so")
				if err := os.WriteFile(src, arm, 0o644); err != nil {
					t.Fatal(err)
				}
				return src, installV1(t)
			},
			wantError: "machine EM_AARCH64 not supported",
		},
		{
			name: "executable",
			setup: func(t *testing.T, dir string) (string, string) {
				exe, err := exec.LookPath("true")
				if err != nil {
					t.Skipf("no true program to use as an executable: %v", err)
				}
				if spec, err := loader.Parse(exe); err != nil || !spec.Features.Executable {
					t.Skipf("%s is not a position-independent executable (parse error: %v)", exe, err)
				}
				return exe, installV1(t)
			},
			wantError: "it is an executable",
		},
		{
			name: "missing NEW.so",
			setup: func(t *testing.T, dir string) (string, string) {
				return filepath.Join(dir, "missing.so"), installV1(t)
			},
			wantError: "no such file or directory",
		},
		{
			name: "directory as NEW.so",
			setup: func(t *testing.T, dir string) (string, string) {
				return dir, installV1(t)
			},
			wantError: "is not a regular file",
		},
		{
			name: "symlink as destination",
			setup: func(t *testing.T, dir string) (string, string) {
				lib := installV1(t)
				link := filepath.Join(filepath.Dir(lib), "libversioned.so")
				if err := os.Symlink("libversioned.so.1", link); err != nil {
					t.Fatal(err)
				}
				return testlibs.Path(t, "v2/libversioned.so.1"), link
			},
			wantError: "is a symbolic link to",
		},
		{
			name: "same file",
			setup: func(t *testing.T, dir string) (string, string) {
				lib := installV1(t)
				return lib, lib
			},
			wantError: "are the same file",
		},
		{
			name: "missing destination directory",
			setup: func(t *testing.T, dir string) (string, string) {
				return testlibs.Path(t, "v2/libversioned.so.1"), filepath.Join(dir, "missing", "libversioned.so.1")
			},
			wantError: "does not exist; create it first",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := tt.setup(t, t.TempDir())
			before, _ := os.ReadFile(dst)

			_, _, err := runLibswap(t, "push", src, "--to", dst, "--socket-dir", t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tt.wantError) {
				t.Fatalf("push %s --to %s = %v, want an error containing %q", src, dst, err, tt.wantError)
			}
			after, _ := os.ReadFile(dst)
			if !bytes.Equal(before, after) {
				t.Errorf("%s changed although the push failed", dst)
			}
		})
	}
}

func TestRunUsageErrors(t *testing.T) {
	tests := []struct {
		args      []string
		wantError string
	}{
		{nil, "missing command"},
		{[]string{"reload"}, `unknown command "reload"`},
		{[]string{"push", "--to", "/tmp/x.so"}, "expected exactly one NEW.so argument, got 0"},
		{[]string{"push", "a.so", "b.so", "--to", "/tmp/x.so"}, "expected exactly one NEW.so argument, got 2"},
		{[]string{"push", "a.so"}, "missing --to PATH"},
		{[]string{"push", "a.so", "--to", "/tmp/x.so", "--timeout", "soon"}, `invalid value "soon" for flag -timeout`},
		{[]string{"push", "a.so", "--to", "/tmp/x.so", "--timeout", "0s"}, "invalid --timeout 0s"},
		{[]string{"push", "a.so", "--to", "/tmp/x.so", "--force"}, "flag provided but not defined: -force"},
		{[]string{"status", "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, err := runLibswap(t, tt.args...)
			var usage usageError
			if !errors.As(err, &usage) {
				t.Fatalf("run(%q) = %v, want a usageError", tt.args, err)
			}
			if !strings.Contains(err.Error(), tt.wantError) {
				t.Errorf("run(%q) error = %q, want it to contain %q", tt.args, err, tt.wantError)
			}
			if !strings.Contains(stderr, "Usage:") {
				t.Errorf("run(%q) stderr = %q, want usage text", tt.args, stderr)
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	for _, args := range [][]string{{"push", "-h"}, {"status", "--help"}} {
		stdout, _, err := runLibswap(t, args...)
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("run(%q) = %v, want flag.ErrHelp", args, err)
		}
		if !strings.Contains(stdout, "Usage: libswap "+args[0]) || !strings.Contains(stdout, "-socket-dir directory") {
			t.Errorf("run(%q) stdout = %q, want usage with the flag descriptions", args, stdout)
		}
	}
}

func TestStatusWithoutProcesses(t *testing.T) {
	dir := t.TempDir()
	stdout, _, err := runLibswap(t, "status", "--socket-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := "no process has a control socket in " + dir + "\n"; stdout != want {
		t.Errorf("status output %q, want %q", stdout, want)
	}

	stdout, _, err = runLibswap(t, "status", "--json", "--socket-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[]\n"; stdout != want {
		t.Errorf("status --json output %q, want %q", stdout, want)
	}
}

// A process that is alive but does not respond may watch the target, so
// push installs nothing. A listener of the test process itself, which
// accepts connections and never replies, plays that process.
func TestPushRefusesWhenAProcessDoesNotAnswer(t *testing.T) {
	socketDir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(socketDir, fmt.Sprintf("%d.sock", os.Getpid())))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var open []net.Conn
		defer func() {
			for _, c := range open {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			open = append(open, c)
		}
	}()

	lib := installV1(t)
	before := fileSHA256(t, lib)
	_, _, err = runLibswap(t, "push", testlibs.Path(t, "v2/libversioned.so.1"), "--to", lib, "--socket-dir", socketDir, "--timeout", "500ms")
	if want := "is running but did not respond"; err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "nothing was installed") {
		t.Errorf("push error = %v, want one containing %q and %q", err, want, "nothing was installed")
	}
	if after := fileSHA256(t, lib); after != before {
		t.Errorf("%s has sha256 %s after the push was refused, want the old %s", lib, after, before)
	}
	checkOnlyFile(t, filepath.Dir(lib), filepath.Base(lib))
}
