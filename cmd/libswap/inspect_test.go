package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/decouple-go/decouple/internal/testlibs"
)

func TestInspectVersionedLibrary(t *testing.T) {
	lib := testlibs.Path(t, "v2/libversioned.so.1")
	out, _, err := runLibswap(t, "inspect", lib, "--call", "vl_version", "--json")
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	var rep inspectReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("inspect --json printed invalid JSON: %v\n%s", err, out)
	}
	if rep.Soname != "libversioned.so.1" {
		t.Errorf("soname = %q, want libversioned.so.1", rep.Soname)
	}
	if rep.AutoBackend != "own" {
		t.Errorf("auto backend = %q, want own", rep.AutoBackend)
	}
	if !contains(rep.Functions, "vl_version") || !contains(rep.Objects, "vl_calls") {
		t.Errorf("functions %v and objects %v, want vl_version and vl_calls among them", rep.Functions, rep.Objects)
	}
	if rep.Relocations["R_X86_64_RELATIVE"] == 0 {
		t.Errorf("relocations %v, want some R_X86_64_RELATIVE", rep.Relocations)
	}
	if rep.Load == nil || rep.Load.Call == nil || rep.Load.Call.Result != "2.0.0" {
		t.Fatalf("load report %+v, want vl_version() = 2.0.0", rep.Load)
	}
	if rep.Load.Backend != "own" || len(rep.Load.Dependencies) != 1 || rep.Load.Dependencies[0].How != "system loader" {
		t.Errorf("load report %+v, want the own loader with libc.so.6 through the system loader", rep.Load)
	}
}

func TestInspectFallbackReason(t *testing.T) {
	out, _, err := runLibswap(t, "inspect", testlibs.Path(t, "libtlsie.so"), "--load")
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	for _, want := range []string{"initial-exec TLS", "auto choice  system loader", "loaded by    system loader"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
}

func TestInspectRejectsBadCalls(t *testing.T) {
	lib := testlibs.Path(t, "libtlsgd.so")
	for _, tc := range []struct {
		symbol, want string
	}{
		{"tg_counter", "does not export a function named tg_counter"},
		{"tg_next", "is not a mapped address"},
	} {
		_, _, err := runLibswap(t, "inspect", lib, "--call", tc.symbol)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("inspect --call %s: error %v, want one containing %q", tc.symbol, err, tc.want)
		}
	}
	text := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(text, []byte("not a library\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runLibswap(t, "inspect", text); err == nil || !strings.Contains(err.Error(), "not an ELF file") {
		t.Errorf("inspect of a text file: error %v, want one saying it is not an ELF file", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
