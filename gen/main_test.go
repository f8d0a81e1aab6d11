package gen

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// workDir is a temporary directory shared by the tests of this package and
// removed by TestMain.
var workDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gen-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	zlibPath   = "/usr/lib/x86_64-linux-gnu/libz.so.1"
	zlibHeader = "/usr/include/zlib.h"
)

// requireZlib skips the test if the system zlib library or header is
// missing.
func requireZlib(t testing.TB) {
	t.Helper()
	for _, p := range []string{zlibPath, zlibHeader} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("zlib is not installed: %v", err)
		}
	}
}

// requireCC skips the test if there is no C compiler, which both
// modernc.org/cc/v4 (for the host's predefined macros and include paths)
// and the test library need.
func requireCC(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("cc"); err != nil {
		t.Skipf("no C compiler: %v", err)
	}
}

var mappingLib = sync.OnceValues(func() (string, error) {
	out := filepath.Join(workDir, "libmapping.so.1")
	cmd := exec.Command("cc", "-shared", "-fPIC", "-O1", "-Wall",
		"-Wl,--version-script=testdata/mapping.map", "-Wl,-soname,libmapping.so.1",
		"-o", out, "testdata/mapping.c")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s: %w\n%s", cmd, err, b)
	}
	return out, nil
})

// buildMapping compiles testdata/mapping.c into a shared library, once per
// test binary, and returns its path.
func buildMapping(t testing.TB) string {
	t.Helper()
	requireCC(t)
	path, err := mappingLib()
	if err != nil {
		t.Fatalf("build test library: %v", err)
	}
	return path
}
