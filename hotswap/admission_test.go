package hotswap

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/decouple-go/decouple/internal/testlibs"
	"github.com/decouple-go/decouple/loader"
)

var errTestPolicy = errors.New("test policy rejects this file")

func TestAdmit(t *testing.T) {
	v1 := testlibs.Path(t, "v1/libversioned.so.1")
	v1Data, err := os.ReadFile(v1)
	if err != nil {
		t.Fatal(err)
	}
	v1Sum := sha256.Sum256(v1Data)
	v1SHA := hex.EncodeToString(v1Sum[:])

	tests := []struct {
		name string
		// setup creates the file to check in dir and returns its path.
		setup         func(t *testing.T, dir string) string
		watchedIsLink bool
		extra         func(string) error
		wantReason    string // substring of the AdmissionError; empty for success
		wantIs        error  // extra errors.Is target, if any
		wantSHA       string // expected SHA-256 recorded, if any
	}{
		{
			name:    "library",
			setup:   func(t *testing.T, dir string) string { return writeFile(t, dir, "lib.so", v1Data, 0o644) },
			wantSHA: v1SHA,
		},
		{
			name:       "group writable",
			setup:      func(t *testing.T, dir string) string { return writeFile(t, dir, "lib.so", v1Data, 0o664) },
			wantReason: "writable by group or others (mode 0664)",
			wantSHA:    v1SHA,
		},
		{
			name:       "world writable",
			setup:      func(t *testing.T, dir string) string { return writeFile(t, dir, "lib.so", v1Data, 0o646) },
			wantReason: "writable by group or others (mode 0646)",
		},
		{
			name: "text file",
			setup: func(t *testing.T, dir string) string {
				return writeFile(t, dir, "lib.so", []byte("not a library\n"), 0o644)
			},
			wantReason: "not a loadable shared object",
			wantIs:     loader.ErrFormat,
		},
		{
			name:       "truncated library",
			setup:      func(t *testing.T, dir string) string { return writeFile(t, dir, "lib.so", v1Data[:512], 0o644) },
			wantReason: "not a loadable shared object",
			wantIs:     loader.ErrFormat,
		},
		{
			name:       "missing",
			setup:      func(t *testing.T, dir string) string { return filepath.Join(dir, "lib.so") },
			wantReason: "stat failed",
			wantIs:     fs.ErrNotExist,
		},
		{
			name: "directory",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "lib.so")
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
				return path
			},
			wantReason: "is not a regular file (type directory)",
		},
		{
			name: "named pipe",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "lib.so")
				if err := syscall.Mkfifo(path, 0o644); err != nil {
					t.Fatal(err)
				}
				return path
			},
			wantReason: "is not a regular file (type named pipe)",
		},
		{
			name: "symlink where a file was watched",
			setup: func(t *testing.T, dir string) string {
				writeFile(t, dir, "real.so", v1Data, 0o644)
				return symlink(t, dir, "real.so", "lib.so")
			},
			wantReason: "is a symbolic link to",
		},
		{
			name: "symlink where a symlink was watched",
			setup: func(t *testing.T, dir string) string {
				writeFile(t, dir, "real.so", v1Data, 0o644)
				return symlink(t, dir, "real.so", "lib.so")
			},
			watchedIsLink: true,
			wantSHA:       v1SHA,
		},
		{
			name:          "dangling symlink",
			setup:         func(t *testing.T, dir string) string { return symlink(t, dir, "gone.so", "lib.so") },
			watchedIsLink: true,
			wantReason:    "resolve symbolic link",
			wantIs:        fs.ErrNotExist,
		},
		{
			name:       "rejected by Admission option",
			setup:      func(t *testing.T, dir string) string { return writeFile(t, dir, "lib.so", v1Data, 0o644) },
			extra:      func(string) error { return errTestPolicy },
			wantReason: "rejected by the Admission check",
			wantIs:     errTestPolicy,
			wantSHA:    v1SHA,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t, t.TempDir())
			file, err := admit(path, tt.watchedIsLink, tt.extra)

			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("admit(%s) = %v, want success", path, err)
				}
				if file.spec == nil || file.spec.Soname != "libversioned.so.1" {
					t.Errorf("admitted spec = %+v, want SONAME libversioned.so.1", file.spec)
				}
			} else {
				if err == nil {
					t.Fatalf("admit(%s) succeeded, want an error containing %q", path, tt.wantReason)
				}
				if !strings.Contains(err.Error(), tt.wantReason) {
					t.Errorf("admit(%s) error = %q, want it to contain %q", path, err, tt.wantReason)
				}
				if !errors.Is(err, ErrAdmission) {
					t.Errorf("errors.Is(%v, ErrAdmission) = false, want true", err)
				}
				var ae *AdmissionError
				if !errors.As(err, &ae) || !strings.HasPrefix(ae.Path, filepath.Dir(path)) {
					t.Errorf("admit(%s) error %v does not name a file in %s", path, err, filepath.Dir(path))
				}
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false, want true", err, tt.wantIs)
			}
			if tt.wantSHA != "" {
				if file == nil {
					t.Fatalf("admit(%s) returned no file description, want one with sha256 %s", path, tt.wantSHA)
				}
				if file.sha256 != tt.wantSHA {
					t.Errorf("recorded sha256 = %s, want %s", file.sha256, tt.wantSHA)
				}
			}
		})
	}
}

func TestAdmitResolvesWatchedSymlink(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "libversioned.so.1.0", readFile(t, testlibs.Path(t, "v1/libversioned.so.1")), 0o644)
	link := symlink(t, dir, "libversioned.so.1.0", "libversioned.so.1")

	file, err := admit(link, true, func(path string) error {
		if want := filepath.Join(dir, "libversioned.so.1.0"); path != want {
			t.Errorf("Admission option got path %s, want the link target %s", path, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "libversioned.so.1.0"); file.path != want {
		t.Errorf("admitted path = %s, want the link target %s", file.path, want)
	}
	if file.linkFrom != link {
		t.Errorf("admitted linkFrom = %q, want %s", file.linkFrom, link)
	}
}

func TestAdmitRejectsForeignOwner(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("changing a file's owner needs root")
	}
	const foreignUID = 54321
	dir := t.TempDir()
	path := writeFile(t, dir, "lib.so", readFile(t, testlibs.Path(t, "v1/libversioned.so.1")), 0o644)
	if err := os.Chown(path, foreignUID, foreignUID); err != nil {
		t.Fatal(err)
	}

	_, err := admit(path, false, nil)
	if err == nil {
		t.Fatalf("admit(%s) owned by uid %d succeeded, want an error", path, foreignUID)
	}
	if want := "is owned by uid 54321"; !strings.Contains(err.Error(), want) {
		t.Errorf("admit error = %q, want it to contain %q", err, want)
	}
}

func TestAdmitRejectsExecutable(t *testing.T) {
	exe := pieExecutable(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "lib.so", readFile(t, exe), 0o644)

	_, err := admit(path, false, nil)
	if err == nil {
		t.Fatalf("admit of a copy of %s succeeded, want an error", exe)
	}
	if want := "is an executable"; !strings.Contains(err.Error(), want) {
		t.Errorf("admit error = %q, want it to contain %q", err, want)
	}
}

// pieExecutable returns a system program built as a position-independent
// executable, which parses as ET_DYN like a library.
func pieExecutable(t *testing.T) string {
	t.Helper()
	exe, err := exec.LookPath("true")
	if err != nil {
		t.Skipf("no true program to use as an executable: %v", err)
	}
	spec, err := loader.Parse(exe)
	if err != nil || !spec.Features.Executable {
		t.Skipf("%s is not a position-independent executable (parse error: %v)", exe, err)
	}
	return exe
}
