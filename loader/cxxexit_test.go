package loader_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ebitengine/purego"

	"github.com/decouple-go/decouple/internal/ccall"
	"github.com/decouple-go/decouple/internal/testlibs"
	"github.com/decouple-go/decouple/loader"
)

// TestCXXNothingRunsAfterUnload checks that a C++ image's static
// destructor, registered with __cxa_atexit, runs once at Close and not
// again when the process exits through the C library's exit(), which runs
// the atexit handlers still registered. A handler left behind would jump
// into the unmapped image and kill the child with SIGSEGV.
func TestCXXNothingRunsAfterUnload(t *testing.T) {
	if inChild(t.Name()) {
		im, err := loader.Open(os.Getenv("DECOUPLE_TEST_LIB"), ownLoader())
		if err != nil {
			t.Fatal(err)
		}
		throwCatch, err := im.Lookup("cx_throw_catch")
		if err != nil {
			t.Fatal(err)
		}
		if got := ccall.Call1(throwCatch, 0, 41); got != 42 {
			t.Fatalf("cx_throw_catch(41) = %d, want 42", got)
		}
		if err := im.Close(); err != nil {
			t.Fatal(err)
		}
		libc, err := purego.Dlopen("libc.so.6", purego.RTLD_NOW)
		if err != nil {
			t.Fatal(err)
		}
		exit, err := purego.Dlsym(libc, "exit")
		if err != nil {
			t.Fatal(err)
		}
		ccall.Call1(exit, 0, 0)
		t.Fatal("exit returned")
	}

	dtorFile := filepath.Join(t.TempDir(), "dtor.log")
	out, err := runChild(t, t.Name(),
		"DECOUPLE_TEST_LIB="+testlibs.Path(t, "libcxx.so"),
		"DECOUPLE_TEST_DTOR_FILE="+dtorFile)
	if err != nil {
		t.Fatalf("child process: %v, want exit status 0 from exit()\n%s", err, out)
	}
	got, err := os.ReadFile(dtorFile)
	if err != nil {
		t.Fatalf("read the destructor's file: %v (child output:\n%s)", err, out)
	}
	if string(got) != "cxx static destructor\n" {
		t.Errorf("destructor file contains %q, want exactly one line %q", got, "cxx static destructor\n")
	}
}
