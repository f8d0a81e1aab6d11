// Package testlibs builds the C test libraries in testdata/libs and returns
// their paths. Only tests import it.
//
// The first call to [Dir] or [Path] in a process runs make -C testdata/libs,
// which needs make, gcc and g++. Because go test ./... runs the tests of
// several packages in parallel processes, the build holds an exclusive flock
// on testdata/libs/build/.lock, so one process builds while the others wait
// and then find the libraries up to date.
package testlibs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Dir builds the test libraries once per process and returns the absolute
// path of testdata/libs/build. It calls tb.Fatalf with make's output if the
// build fails.
func Dir(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = buildAll()
	})
	if buildErr != nil {
		tb.Fatalf("build test libraries: %v", buildErr)
	}
	return buildDir
}

// Path builds the test libraries once per process and returns the absolute
// path of one of them. The name is relative to testdata/libs/build and uses
// slashes, for example "libtrivial.so" or "v1/libversioned.so.1". Path calls
// tb.Fatalf if the build fails or the Makefile does not produce that file.
func Path(tb testing.TB, name string) string {
	tb.Helper()
	if !filepath.IsLocal(filepath.FromSlash(name)) {
		tb.Fatalf("test library %q: invalid name, want a relative path inside testdata/libs/build such as \"libtrivial.so\"", name)
	}

	path := filepath.Join(Dir(tb), filepath.FromSlash(name))
	if _, err := os.Stat(path); err != nil {
		tb.Fatalf("test library %q: %v (check that testdata/libs/Makefile builds it)", name, err)
	}
	return path
}

// buildAll runs make in testdata/libs and returns the build folder.
func buildAll() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	libs := filepath.Join(root, "testdata", "libs")
	if _, err := runMake(libs); err != nil {
		return "", err
	}
	return filepath.Join(libs, "build"), nil
}

// runMake runs make -C dir with the given arguments while holding an
// exclusive flock on dir/build/.lock, and returns make's combined output.
// The error also contains that output.
func runMake(dir string, args ...string) ([]byte, error) {
	build := filepath.Join(dir, "build")
	if err := os.MkdirAll(build, 0o755); err != nil {
		return nil, fmt.Errorf("create build folder: %w", err)
	}

	// os.OpenFile sets O_CLOEXEC, so make does not inherit the lock.
	lock, err := os.OpenFile(filepath.Join(build, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open build lock: %w", err)
	}
	defer lock.Close()
	if err := flock(lock, unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	// Closing the file releases the lock, including when make fails.

	cmd := exec.Command("make", append([]string{"-C", dir}, args...)...)
	out, err := cmd.CombinedOutput()
	if errors.Is(err, exec.ErrNotFound) {
		return nil, fmt.Errorf("make not found: install the Debian package make: %w", err)
	}
	if err != nil {
		return out, fmt.Errorf("make -C %s: %w\n%s", dir, err, out)
	}
	return out, nil
}

// flock calls flock(2) and retries if a signal interrupts the wait.
func flock(f *os.File, operation int) error {
	for {
		err := unix.Flock(int(f.Fd()), operation)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// repoRoot returns the root of the repository: the folder that contains
// go.mod and testdata/libs/Makefile. It starts from this source file's
// location, which is unavailable when the test binary was built with
// -trimpath, and otherwise walks up from the working directory to the first
// go.mod.
func repoRoot() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		root := filepath.Join(filepath.Dir(file), "..", "..")
		if isRepoRoot(root) {
			return root, nil
		}
	}

	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for dir := wd; ; {
		if fileExists(filepath.Join(dir, "go.mod")) {
			if !isRepoRoot(dir) {
				return "", fmt.Errorf("find repository root: %s has go.mod but no testdata/libs/Makefile", dir)
			}
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find repository root: no go.mod in %s or its parents", wd)
		}
		dir = parent
	}
}

func isRepoRoot(dir string) bool {
	return fileExists(filepath.Join(dir, "go.mod")) &&
		fileExists(filepath.Join(dir, "testdata", "libs", "Makefile"))
}

func fileExists(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular()
}
