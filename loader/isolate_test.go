package loader

import (
	"strings"
	"testing"

	"github.com/decouple-go/decouple/internal/ccall"
	"github.com/decouple-go/decouple/internal/testlibs"
)

func TestIsolateDependency(t *testing.T) {
	path := testlibs.Path(t, "libdependent.so")
	im, err := Open(path, &Options{Isolate: []string{"libtrivial.so"}})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()

	// libdependent.so calls nothing of the C library, so libtrivial.so is
	// its only DT_NEEDED entry.
	if len(im.Deps) != 1 || im.Deps[0].Name != "libtrivial.so" {
		t.Fatalf("Deps = %+v, want only libtrivial.so", im.Deps)
	}
	d := im.Deps[0]
	if d.How != "own loader" || d.Image == nil {
		t.Fatalf("libtrivial.so bound by %q (image %v), want the own loader", d.How, d.Image)
	}
	if d.Image.Contains(im.Base) || im.Contains(d.Image.Base) {
		t.Errorf("dependency range %#x overlaps the library's %#x", d.Image.Base, im.Base)
	}
	if dd := d.Image.Deps; len(dd) != 1 || dd[0].Name != "libc.so.6" || dd[0].How != "system loader" {
		t.Errorf("libtrivial.so's dependencies = %+v, want libc.so.6 through the system loader", dd)
	}

	f, err := im.Lookup("dp_labs_twice")
	if err != nil {
		t.Fatal(err)
	}
	if got := ccall.Call1(f, 0, uintptr(^uint64(20))); got != 42 {
		t.Errorf("dp_labs_twice(-21) = %d, want 42", got)
	}
	if n := len(im.Regions()); n <= len(im.regions) {
		t.Errorf("Regions() has %d entries, want more than the library's own %d", n, len(im.regions))
	}
}

func TestIsolateCycle(t *testing.T) {
	path := testlibs.Path(t, "libcyclea.so")
	_, err := Open(path, &Options{Isolate: []string{"*"}})
	if err == nil || !strings.Contains(err.Error(), "DT_NEEDED cycle: libcyclea.so -> libcycleb.so -> libcyclea.so") {
		t.Fatalf("Open with a dependency cycle: error %v, want one naming the cycle", err)
	}
}
