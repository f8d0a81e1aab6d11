package loader

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/decouple-go/decouple/internal/ccall"
	"github.com/decouple-go/decouple/internal/testlibs"
)

func TestCXXExceptions(t *testing.T) {
	dtorFile := filepath.Join(t.TempDir(), "dtor")
	t.Setenv("DECOUPLE_TEST_DTOR_FILE", dtorFile)
	im, err := Open(testlibs.Path(t, "libcxx.so"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := im.Lookup("cx_throw_catch")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 41} {
		if got := ccall.Call1(f, 0, uintptr(n)); got != uintptr(n+1) {
			t.Errorf("cx_throw_catch(%d) = %d, want %d", n, got, n+1)
		}
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(dtorFile)
	if !strings.Contains(string(data), "cxx static destructor") {
		t.Errorf("destructor file holds %q, want the line written by the static destructor", data)
	}
}
