package loader

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/decouple-go/decouple/internal/testlibs"
)

// TestRelroReadOnly checks that PT_GNU_RELRO is read-only after loading.
// Its start is rarely page-aligned, so the page holding the start must be
// protected too, as glibc does.
func TestRelroReadOnly(t *testing.T) {
	im, err := Open(testlibs.SystemLibrary(t, "libz.so.1", "zlib1g"), &Options{Backend: BackendOwn})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	r := im.Spec.Relro
	if r[1] <= r[0] {
		t.Skip("libz.so.1 has no whole page of PT_GNU_RELRO on this system")
	}
	addr := im.addr(r[0])

	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(maps), "\n") {
		var lo, hi uintptr
		var perms string
		if _, err := fmt.Sscanf(line, "%x-%x %s", &lo, &hi, &perms); err != nil {
			continue
		}
		if addr >= lo && addr < hi {
			if !strings.HasPrefix(perms, "r--") {
				t.Errorf("RELRO page %#x is mapped %s, want r--", addr, perms)
			}
			return
		}
	}
	t.Fatalf("RELRO page %#x not found in /proc/self/maps", addr)
}
