package gen

import (
	"bytes"
	"errors"
	"flag"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/mapping.golden from the generator's output")

// method is a generated method, printed back as source.
type method struct {
	Doc  string
	Sig  string // parameters and results, as in "(a int32) int32"
	Body string
}

// parseMethods parses src and returns its methods on Lib by name.
func parseMethods(t *testing.T, src []byte) map[string]method {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "gen.go", src, parser.ParseComments)
	if err != nil {
		t.Fatalf("parse generated source: %v\n%s", err, src)
	}
	print := func(n any) string {
		var b bytes.Buffer
		if err := printer.Fprint(&b, fset, n); err != nil {
			t.Fatalf("print %T: %v", n, err)
		}
		return b.String()
	}
	methods := make(map[string]method)
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Recv == nil {
			continue
		}
		sig := strings.TrimPrefix(print(fd.Type), "func")
		methods[fd.Name.Name] = method{Doc: fd.Doc.Text(), Sig: sig, Body: print(fd.Body)}
	}
	return methods
}

func generateMapping(t *testing.T) (Args, []byte) {
	t.Helper()
	args := Args{Lib: buildMapping(t), Header: "testdata/mapping.h", Package: "mapping"}
	src, err := Generate(args)
	if err != nil {
		t.Fatalf("Generate(%+v): %v", args, err)
	}
	return args, src
}

func TestGenerateTypeMapping(t *testing.T) {
	_, src := generateMapping(t)
	methods := parseMethods(t, src)

	tests := []struct {
		cname, goName, sig, call string
	}{
		{"m_add_schar", "M_add_schar", "(a int8, b int8) int8", "Call2("},
		{"m_add_uchar", "M_add_uchar", "(a uint8, b uint8) uint8", "Call2("},
		{"m_char_id", "M_char_id", "(c int8) int8", "Call1("},
		{"m_add_short", "M_add_short", "(a int16, b int16) int16", "Call2("},
		{"m_add_ushort", "M_add_ushort", "(a uint16, b uint16) uint16", "Call2("},
		{"m_add_int", "M_add_int", "(a int32, b int32) int32", "Call2("},
		{"m_add_uint", "M_add_uint", "(a uint32, b uint32) uint32", "Call2("},
		{"m_add_long", "M_add_long", "(a int64, b int64) int64", "Call2("},
		{"m_add_ulong", "M_add_ulong", "(a uint64, b uint64) uint64", "Call2("},
		{"m_add_llong", "M_add_llong", "(a int64, b int64) int64", "Call2("},
		{"m_add_ullong", "M_add_ullong", "(a uint64, b uint64) uint64", "Call2("},
		{"m_neg_i64", "M_neg_i64", "(v int64) int64", "Call1("},
		{"m_not_u8", "M_not_u8", "(v uint8) uint8", "Call1("},
		{"m_strlen", "M_strlen", "(s unsafe.Pointer) uint64", "Call1("},
		{"m_chain", "M_chain", "(n uint64, m uint64) uint64", "Call2("},
		{"m_status", "M_status", "() int32", "Call0("},
		{"m_is_odd", "M_is_odd", "(v int32) bool", "Call1("},
		{"m_not", "M_not", "(v bool) bool", "Call1("},
		{"m_next_color", "M_next_color", "(c int32) int32", "Call1("},
		{"m_flip", "M_flip", "(d int32) int32", "Call1("},
		{"m_scale_f", "M_scale_f", "(v float32, times int32) float32", "CallArgs("},
		{"m_hypot2", "M_hypot2", "(x float64, y float64) float64", "CallArgs("},
		{"m_mix", "M_mix", "(a int32, b float32, c int64, d float64) float64", "CallArgs("},
		{"m_sum10", "M_sum10", "(a1 int64, a2 int64, a3 int64, a4 int64, a5 int64, a6 int64, a7 int64, a8 int64, a9 int64, a10 int64) int64", "CallArgs("},
		{"m_fill", "M_fill", "(buf unsafe.Pointer, n uint64, v uint8)", "Call3("},
		{"m_greeting", "M_greeting", "() unsafe.Pointer", "Call0("},
		{"m_name", "M_name", "(p unsafe.Pointer) unsafe.Pointer", "Call1("},
		{"m_identity", "M_identity", "(p unsafe.Pointer) unsafe.Pointer", "Call1("},
		{"m_sort", "M_sort", "(base unsafe.Pointer, n uint64, cmp uintptr) int32", "Call3("},
		{"m_apply", "M_apply", "(fn uintptr, v int32) int32", "Call2("},
		{"m_nothing", "M_nothing", "()", "Call0("},
		{"m_array_param", "M_array_param", "(values unsafe.Pointer) int32", "Call1("},
		{"m_keywords", "M_keywords", "(type_ int32, func_ int32, range_ int32, r int32, l_ int32) int32", "Call5("},
		{"m_unnamed", "M_unnamed", "(a0 int32, a1 int64) int32", "Call2("},
		{"M_collide", "M_collide", "() int32", "Call0("},
		{"m_collide", "M_collide_", "() int32", "Call0("},
		{"_m_underscore", "X_m_underscore", "(v int32) int32", "Call1("},
		{"m_ifunc", "M_ifunc", "(v int32) int32", "Call1("},
	}
	for _, tt := range tests {
		t.Run(tt.cname, func(t *testing.T) {
			m, ok := methods[tt.goName]
			if !ok {
				t.Fatalf("method %s for %s not generated", tt.goName, tt.cname)
			}
			if m.Sig != tt.sig {
				t.Errorf("signature of %s = %s, want %s", tt.goName, m.Sig, tt.sig)
			}
			if !strings.Contains(m.Body, tt.call) {
				t.Errorf("body of %s does not use %s:\n%s", tt.goName, tt.call, m.Body)
			}
			if want := "calls the C function " + tt.cname + ", symbol version MAPPING_1:"; !strings.Contains(m.Doc, want) {
				t.Errorf("doc of %s does not contain %q:\n%s", tt.goName, want, m.Doc)
			}
		})
	}
}

// TestGenerateCallArgsLayout checks that arguments land in the registers
// and stack slots the System V AMD64 convention assigns.
func TestGenerateCallArgsLayout(t *testing.T) {
	_, src := generateMapping(t)
	methods := parseMethods(t, src)
	tests := []struct {
		goName string
		lines  []string
	}{
		{"M_mix", []string{
			"args.Ints[0] = uintptr(a)",
			"args.Floats[0] = uint64(math.Float32bits(b))",
			"args.Ints[1] = uintptr(c)",
			"args.Floats[1] = math.Float64bits(d)",
			"res := l.fnM_mix.CallArgs(&args)",
			"return math.Float64frombits(res.X0)",
		}},
		{"M_scale_f", []string{
			"args.Floats[0] = uint64(math.Float32bits(v))",
			"args.Ints[0] = uintptr(times)",
			"return math.Float32frombits(uint32(res.X0))",
		}},
		{"M_sum16", []string{
			"args.Ints[5] = uintptr(i6)",
			"args.Stack[0] = uintptr(i7)",
			"args.Floats[7] = math.Float64bits(d8)",
			"args.Stack[1] = uintptr(math.Float64bits(d9))",
			"args.NStack = 2",
		}},
		{"M_sum10", []string{
			"args.Ints[5] = uintptr(a6)",
			"args.Stack[0] = uintptr(a7)",
			"args.Stack[3] = uintptr(a10)",
			"args.NStack = 4",
			"res := l.fnM_sum10.CallArgs(&args)",
			"return int64(res.R0)",
		}},
		{"M_fill", []string{
			"l.fnM_fill.Call3(pointerArg(buf), uintptr(n), uintptr(v))",
			"runtime.KeepAlive(buf)",
		}},
		{"M_not", []string{
			"rax := l.fnM_not.Call1(boolArg(v))",
			"return rax&0xff != 0",
		}},
		{"M_greeting", []string{"return resultPointer(rax)"}},
		{"M_apply", []string{"rax := l.fnM_apply.Call2(fn, uintptr(v))"}},
	}
	for _, tt := range tests {
		m, ok := methods[tt.goName]
		if !ok {
			t.Errorf("method %s not generated", tt.goName)
			continue
		}
		for _, line := range tt.lines {
			if !strings.Contains(m.Body, line) {
				t.Errorf("body of %s lacks %q:\n%s", tt.goName, line, m.Body)
			}
		}
	}
}

func TestGenerateSkipped(t *testing.T) {
	_, src := generateMapping(t)
	methods := parseMethods(t, src)
	tests := []struct {
		cname, goName, reason string
	}{
		{"m_point_make", "M_point_make", "result: point_t passed by value"},
		{"m_point_sum", "M_point_sum", "parameter 1 (p): struct point passed by value"},
		{"m_number", "M_number", "result: union number passed by value"},
		{"m_printf", "M_printf", "variadic"},
		{"m_ld", "M_ld", "result: long double"},
		{"m_takes_ld", "M_takes_ld", "parameter 1 (v): long double"},
		{"m_complex", "M_complex", "result: complex type"},
		{"m_missing", "M_missing", "not exported by libmapping.so.1"},
		{"m_old", "M_old", "exported by libmapping.so.1 only as the non-default version m_old@MAPPING_0"},
	}
	for _, tt := range tests {
		if _, ok := methods[tt.goName]; ok {
			t.Errorf("method %s generated for %s, want it skipped", tt.goName, tt.cname)
		}
		if want := "//   - " + tt.cname + ": " + tt.reason; !bytes.Contains(src, []byte(want)) {
			t.Errorf("skipped list lacks %q", want)
		}
	}

	// The list is sorted by C name.
	var listed []string
	for _, m := range regexp.MustCompile(`(?m)^//   - (\w+):`).FindAllSubmatch(src, -1) {
		listed = append(listed, string(m[1]))
	}
	if len(listed) != len(tests) {
		t.Errorf("skipped list has %d entries %q, want %d", len(listed), listed, len(tests))
	}
	for i := 1; i < len(listed); i++ {
		if listed[i-1] >= listed[i] {
			t.Errorf("skipped list not sorted: %q before %q", listed[i-1], listed[i])
		}
	}

	// Exported but undeclared functions appear nowhere.
	for _, name := range []string{"m_undeclared", "m_old_impl"} {
		if bytes.Contains(src, []byte(name)) {
			t.Errorf("output mentions %s, which mapping.h does not declare", name)
		}
	}
}

func TestGenerateOpenRegistersAll(t *testing.T) {
	_, src := generateMapping(t)
	methods := parseMethods(t, src)
	registered := regexp.MustCompile(`(?m)^\t\t\{"(\w+)", &l\.fn(\w+)\},$`).FindAllSubmatch(src, -1)
	// Every method except Gate and Close wraps one registered function.
	if want := len(methods) - 2; len(registered) != want {
		t.Errorf("Open registers %d functions, want %d (one per wrapper method)", len(registered), want)
	}
	for _, m := range registered {
		if _, ok := methods[string(m[2])]; !ok {
			t.Errorf("Open registers %s into field fn%s, but there is no method %s", m[1], m[2], m[2])
		}
	}
}

func TestGenerateStable(t *testing.T) {
	args, first := generateMapping(t)
	second, err := Generate(args)
	if err != nil {
		t.Fatalf("second Generate: %v", err)
	}
	if !bytes.Equal(first, second) {
		t.Errorf("two runs of Generate(%+v) differ", args)
	}
}

func TestGenerateHeaderComment(t *testing.T) {
	args, src := generateMapping(t)
	firstLine, _, _ := bytes.Cut(src, []byte("\n"))
	want := "// Code generated by libwrapgen -lib " + args.Lib + " -header testdata/mapping.h -pkg mapping; DO NOT EDIT."
	if string(firstLine) != want {
		t.Errorf("first line = %q, want %q", firstLine, want)
	}

	lib, header, ok := InputHashes(src)
	if !ok {
		t.Fatalf("InputHashes found no hashes in the output")
	}
	wantLib, err := fileSHA256(args.Lib)
	if err != nil {
		t.Fatal(err)
	}
	wantHeader, err := fileSHA256(args.Header)
	if err != nil {
		t.Fatal(err)
	}
	if lib != wantLib {
		t.Errorf("library hash = %s, want %s", lib, wantLib)
	}
	if header != wantHeader {
		t.Errorf("header hash = %s, want %s", header, wantHeader)
	}

	if !bytes.Contains(src, []byte("\n//go:build linux && amd64\n")) {
		t.Errorf("output lacks the linux && amd64 build constraint")
	}
	if want := `const DefaultPath = "` + args.Lib + `"`; !bytes.Contains(src, []byte(want)) {
		t.Errorf("output lacks %s", want)
	}
	if want := "// Package mapping calls the C library libmapping.so.1 through"; !bytes.Contains(src, []byte(want)) {
		t.Errorf("package documentation does not name the soname: want %q", want)
	}
}

// TestGenerateGolden compares the whole output with testdata/mapping.golden,
// after replacing the parts that depend on the C compiler and the
// temporary directory. Run with -update to rewrite the golden file.
func TestGenerateGolden(t *testing.T) {
	args, src := generateMapping(t)
	libHash, _, _ := InputHashes(src)
	got := bytes.ReplaceAll(src, []byte(libHash), []byte("LIBRARY-SHA-256"))
	got = bytes.ReplaceAll(got, []byte(filepath.Dir(args.Lib)), []byte("$WORK"))

	golden := filepath.Join("testdata", "mapping.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden file (run go test -run TestGenerateGolden -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s; inspect with go test -run TestGenerateGolden -update and git diff", golden)
	}
}

func TestGenerateFilters(t *testing.T) {
	lib := buildMapping(t)
	tests := []struct {
		name             string
		include, exclude string
		wrapped, skipped []string
	}{
		{"include", `^m_add_`, "", []string{"M_add_int", "M_add_ullong"}, []string{"m_not: does not match -include ^m_add_"}},
		{"exclude", "", `^m_(add|sum)`, []string{"M_not", "M_mix"}, []string{"m_add_int: matches -exclude ^m_(add|sum)", "m_sum16: matches -exclude"}},
		{"both", `^m_add_`, `u`, []string{"M_add_int", "M_add_schar"}, []string{"m_add_uint: matches -exclude u", "m_flip: does not match -include"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := Args{Lib: lib, Header: "testdata/mapping.h", Include: tt.include, Exclude: tt.exclude}
			src, err := Generate(args)
			if err != nil {
				t.Fatalf("Generate(%+v): %v", args, err)
			}
			methods := parseMethods(t, src)
			for _, name := range tt.wrapped {
				if _, ok := methods[name]; !ok {
					t.Errorf("method %s missing", name)
				}
			}
			for _, s := range tt.skipped {
				if !bytes.Contains(src, []byte("//   - "+s)) {
					t.Errorf("skipped list lacks %q", s)
				}
			}
		})
	}
}

func TestGenerateErrors(t *testing.T) {
	lib := buildMapping(t)
	broken := filepath.Join(t.TempDir(), "broken.h")
	if err := os.WriteFile(broken, []byte("int f(int;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(lib)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(t.TempDir(), "truncated.so")
	if err := os.WriteFile(truncated, data[:40], 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    Args
		target  error  // errors.Is target, or nil
		message string // substring of the error
	}{
		{"invalid package", Args{Lib: lib, Header: "testdata/mapping.h", Package: "my-pkg"}, nil, `invalid package name "my-pkg"`},
		{"package main", Args{Lib: lib, Header: "testdata/mapping.h", Package: "main"}, nil, `invalid package name "main"`},
		{"missing header", Args{Lib: lib}, nil, "missing header"},
		{"header not found", Args{Lib: lib, Header: "testdata/nonexistent.h"}, nil, "parse header testdata/nonexistent.h: stat testdata/nonexistent.h: no such file or directory; pass the library's C header with -header"},
		{"header syntax error", Args{Lib: lib, Header: broken}, nil, "parse header " + broken},
		{"invalid include", Args{Lib: lib, Header: "testdata/mapping.h", Include: "("}, nil, "invalid -include regular expression"},
		{"invalid exclude", Args{Lib: lib, Header: "testdata/mapping.h", Exclude: "[z-a]"}, nil, "invalid -exclude regular expression"},
		{"library not found", Args{Lib: "libdecouple-nonexistent.so.7", Header: "testdata/mapping.h"}, ErrLibraryNotFound, "libdecouple-nonexistent.so.7"},
		{"library not ELF", Args{Lib: "testdata/mapping.h", Header: "testdata/mapping.h"}, ErrFormat, "testdata/mapping.h: invalid ELF shared object: the file does not start with the ELF magic"},
		{"library truncated", Args{Lib: truncated, Header: "testdata/mapping.h"}, ErrFormat, "the file ends inside its ELF headers; it is truncated"},
		{"nothing to wrap", Args{Lib: lib, Header: "testdata/mapping.h", Include: "^nomatch$"}, ErrNoFunctions, "none of the"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := Generate(tt.args)
			if err == nil {
				t.Fatalf("Generate(%+v) = %d bytes, want an error", tt.args, len(src))
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("Generate(%+v) error %q does not wrap %v", tt.args, err, tt.target)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("Generate(%+v) error %q does not contain %q", tt.args, err, tt.message)
			}
		})
	}
}

func TestGenerateIncludeDirs(t *testing.T) {
	lib := buildMapping(t)
	dir := t.TempDir()
	// wrap.h includes mapping.h by a name only -I can resolve.
	if err := os.WriteFile(filepath.Join(dir, "wrap.h"), []byte("#include <mapping.h>\nint m_add_int(int a, int b);\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := Args{Lib: lib, Header: filepath.Join(dir, "wrap.h"), Package: "wrap"}
	if _, err := Generate(args); err == nil {
		t.Fatalf("Generate without -I succeeded, want an include error for <mapping.h>")
	}

	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	args.IncludeDirs = []string{testdata}
	src, err := Generate(args)
	if err != nil {
		t.Fatalf("Generate(%+v): %v", args, err)
	}

	methods := parseMethods(t, src)
	// Functions from the included file are wrapped when exported.
	for _, name := range []string{"M_add_int", "M_mix"} {
		if _, ok := methods[name]; !ok {
			t.Errorf("method %s missing", name)
		}
	}
	// Only wrap.h's own declarations are listed as skipped; m_missing is
	// declared in the included mapping.h and not exported, so it is not.
	if bytes.Contains(src, []byte("m_missing")) {
		t.Errorf("output mentions m_missing, which only the included mapping.h declares")
	}
	// Exported but unexpressible functions from the included file are listed.
	if !bytes.Contains(src, []byte("//   - m_printf: variadic")) {
		t.Errorf("skipped list lacks the exported variadic m_printf")
	}
}

func TestArgsCommand(t *testing.T) {
	tests := []struct {
		args Args
		want string
	}{
		{Args{Lib: "libz.so.1", Header: "/usr/include/zlib.h", Package: "zlib"},
			"libwrapgen -lib libz.so.1 -header /usr/include/zlib.h -pkg zlib"},
		{Args{Lib: "libz.so.1", Header: "/usr/include/zlib.h"},
			"libwrapgen -lib libz.so.1 -header /usr/include/zlib.h -pkg zlib"},
		{Args{Lib: "/opt/my lib/libx.so", Header: "x.h", Package: "x", IncludeDirs: []string{"inc", "/usr/local/include"}, Include: "^x_", Exclude: "it's"},
			`libwrapgen -lib '/opt/my lib/libx.so' -header x.h -pkg x -I inc -I /usr/local/include -include '^x_' -exclude 'it'\''s'`},
	}
	for _, tt := range tests {
		if got := tt.args.Command(); got != tt.want {
			t.Errorf("%+v.Command() = %s, want %s", tt.args, got, tt.want)
		}
	}
}

func TestArgsPackageName(t *testing.T) {
	tests := []struct {
		args Args
		want string
	}{
		{Args{Header: "/usr/include/zlib.h"}, "zlib"},
		{Args{Header: "include/SDL2/SDL.h"}, "sdl"},
		{Args{Header: "x/lib-foo.h"}, "lib_foo"},
		{Args{Header: "zlib.h", Package: "z"}, "z"},
	}
	for _, tt := range tests {
		if got := tt.args.PackageName(); got != tt.want {
			t.Errorf("%+v.PackageName() = %q, want %q", tt.args, got, tt.want)
		}
	}
	if got, want := (Args{Header: "zlib.h"}).FileName(), "zlib_gen.go"; got != want {
		t.Errorf("FileName() = %q, want %q", got, want)
	}
}
