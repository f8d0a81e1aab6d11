package gen

import (
	"go/token"
	"slices"
	"testing"
)

func TestExportedName(t *testing.T) {
	tests := []struct{ c, want string }{
		{"compress", "Compress"},
		{"deflateInit2_", "DeflateInit2_"},
		{"crc32", "Crc32"},
		{"zError", "ZError"},
		{"Already", "Already"},
		{"_private", "X_private"},
		{"__x", "X__x"},
		{"f$g", "F_g"},
		{"énorme", "Énorme"},
		{"中文", "X中文"},
	}
	for _, tt := range tests {
		got := exportedName(tt.c)
		if got != tt.want {
			t.Errorf("exportedName(%q) = %q, want %q", tt.c, got, tt.want)
		}
		if !token.IsExported(got) || !token.IsIdentifier(got) {
			t.Errorf("exportedName(%q) = %q, want an exported Go identifier", tt.c, got)
		}
	}
}

func TestParamNames(t *testing.T) {
	tests := []struct {
		c, want []string
	}{
		{[]string{"dest", "destLen"}, []string{"dest", "destLen"}},
		{[]string{"", ""}, []string{"a0", "a1"}},
		{[]string{"type", "func", "range", "map"}, []string{"type_", "func_", "range_", "map_"}},
		{[]string{"len", "string", "uintptr", "nil"}, []string{"len_", "string_", "uintptr_", "nil_"}},
		{[]string{"l", "args", "rax", "res"}, []string{"l_", "args_", "rax_", "res_"}},
		{[]string{"unsafe", "runtime", "math", "trampoline"}, []string{"unsafe_", "runtime_", "math_", "trampoline_"}},
		{[]string{"pointerArg", "boolArg", "resultPointer"}, []string{"pointerArg_", "boolArg_", "resultPointer_"}},
		// A named a1 and the unnamed second parameter would both be a1.
		{[]string{"a1", ""}, []string{"a1", "a1_"}},
		{[]string{"type_", "type"}, []string{"type_", "type__"}},
		{[]string{"_"}, []string{"__"}},
		{[]string{"r", "x", "xmm0"}, []string{"r", "x", "xmm0"}},
	}
	for _, tt := range tests {
		got := paramNames(tt.c)
		if !slices.Equal(got, tt.want) {
			t.Errorf("paramNames(%q) = %q, want %q", tt.c, got, tt.want)
		}
		for _, n := range got {
			if !token.IsIdentifier(n) {
				t.Errorf("paramNames(%q) returned %q, not a Go identifier", tt.c, n)
			}
		}
	}
}

func TestUniqueNameReserved(t *testing.T) {
	usedNames := map[string]bool{}
	for n := range reservedMethods {
		usedNames[n] = true
	}
	for _, tt := range []struct{ c, want string }{
		{"close", "Close_"},
		{"gate", "Gate_"},
		{"Close_", "Close__"},
		{"open", "Open"}, // Open is a function, not a method, so it does not clash
	} {
		if got := uniqueName(exportedName(tt.c), usedNames); got != tt.want {
			t.Errorf("name for %s = %s, want %s", tt.c, got, tt.want)
		}
	}
}
