package trampoline

import (
	"testing"
	"unsafe"

	"github.com/decouple-go/decouple/internal/testlibs"
)

// GoString must stop at the end of the image's mapped pages when the
// string there has no terminator, rather than read the unmapped page after.
func TestGoStringStopsAtImageEnd(t *testing.T) {
	g, err := Open(testlibs.Path(t, "libtrivial.so"), &Options{Mode: ModeProtect})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	counter, err := g.Var("tl_counter")
	if err != nil {
		t.Fatal(err)
	}

	var addr, end uintptr
	im := g.cur.Load()
	if err := counter.Do(func(a uintptr) {
		addr = a
		for _, r := range im.regions {
			if a >= r.Addr && a < r.Addr+r.Size {
				end = r.Addr + r.Size
			}
		}
		// Fill from the variable to the end of its region: no NUL.
		for p := a; p < end; p++ {
			*(*byte)(unsafe.Add(unsafe.Pointer(nil), p)) = 'x'
		}
	}); err != nil {
		t.Fatal(err)
	}
	if end == 0 {
		t.Fatalf("no region holds tl_counter at %#x", addr)
	}
	if last := im.regions[len(im.regions)-1]; last.Addr+last.Size != end {
		t.Skipf("tl_counter's region ends at %#x, before the image's last page %#x; the test needs it at the end", end, last.Addr+last.Size)
	}

	s := g.GoString(addr)
	if want := int(end - addr); len(s) != want {
		t.Errorf("GoString read %d bytes, want %d (up to the end of the image)", len(s), want)
	}
}
