package loader

import (
	"errors"
	"testing"

	"github.com/decouple-go/decouple/internal/ccall"
	"github.com/decouple-go/decouple/internal/testlibs"
)

func TestSymbolVersions(t *testing.T) {
	im, err := Open(testlibs.Path(t, "libsymver.so"), &Options{Backend: BackendOwn})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()

	// The version definitions V1 and V2 are absolute symbols, not exports.
	var names []string
	for _, e := range im.Spec.Exports() {
		names = append(names, e.Name+"@"+e.Version)
	}
	if len(names) != 2 || names[0] != "sv_value@V1" || names[1] != "sv_value@V2" {
		t.Errorf("Exports() = %v, want [sv_value@V1 sv_value@V2]", names)
	}

	for _, tc := range []struct {
		version string
		want    uintptr
	}{{"V1", 1}, {"V2", 2}, {"", 2}} {
		addr, err := im.LookupVersion("sv_value", tc.version)
		if err != nil {
			t.Errorf("LookupVersion(sv_value, %q): %v", tc.version, err)
			continue
		}
		if got := ccall.Call0(addr, 0); got != tc.want {
			t.Errorf("sv_value at version %q returned %d, want %d", tc.version, got, tc.want)
		}
	}
	if _, err := im.LookupVersion("sv_value", "V3"); !errors.Is(err, ErrSymbolNotFound) {
		t.Errorf("LookupVersion(sv_value, V3): error %v, want one matching ErrSymbolNotFound", err)
	}
	if _, err := im.Lookup("V1"); !errors.Is(err, ErrSymbolNotFound) {
		t.Errorf("Lookup(V1), a version definition: error %v, want one matching ErrSymbolNotFound", err)
	}
}
