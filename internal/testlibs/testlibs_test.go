package testlibs

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Dynamic tags for packed relative relocations. debug/elf in Go 1.26 does not
// define them. The values are from the System V gABI.
const (
	dtRELRSZ elf.DynTag = 35
	dtRELR   elf.DynTag = 36
)

// library describes one file built by testdata/libs/Makefile and what the
// tests expect to find in it.
type library struct {
	name    string                 // path relative to the build folder
	soname  string                 // expected DT_SONAME
	exports map[string]elf.SymType // defined global dynamic symbols
	needed  []string               // DT_NEEDED entries that must be present
	imports []string               // undefined dynamic symbols that must be present
}

var versionedExports = map[string]elf.SymType{
	"vl_version":       elf.STT_FUNC,
	"vl_version_major": elf.STT_FUNC,
	"vl_add":           elf.STT_FUNC,
	"vl_sleep_ms":      elf.STT_FUNC,
	"vl_calls":         elf.STT_OBJECT,
}

var tlsExports = map[string]elf.SymType{
	"tg_counter":    elf.STT_TLS,
	"tg_next":       elf.STT_FUNC,
	"tg_seed_value": elf.STT_TLS,
	"tg_seed":       elf.STT_FUNC,
}

// libraries lists every file the Makefile builds.
// TestMakeFromCleanCopy checks that the list is complete.
var libraries = []library{
	{
		name:    "v1/libversioned.so.1",
		soname:  "libversioned.so.1",
		exports: versionedExports,
		imports: []string{"nanosleep"},
	},
	{
		name:   "kind/libversioned.so.1",
		soname: "libversioned.so.1",
		exports: map[string]elf.SymType{
			"vl_version":       elf.STT_FUNC,
			"vl_version_major": elf.STT_FUNC,
			"vl_add":           elf.STT_OBJECT,
			"vl_sleep_ms":      elf.STT_FUNC,
			"vl_calls":         elf.STT_OBJECT,
		},
		imports: []string{"nanosleep"},
	},
	{
		name:    "v2/libversioned.so.1",
		soname:  "libversioned.so.1",
		exports: versionedExports,
		imports: []string{"nanosleep"},
	},
	{
		name:   "libtrivial.so",
		soname: "libtrivial.so",
		exports: map[string]elf.SymType{
			"tl_labs":     elf.STT_FUNC,
			"tl_sum9":     elf.STT_FUNC,
			"tl_mix":      elf.STT_FUNC,
			"tl_halve":    elf.STT_FUNC,
			"tl_sum10d":   elf.STT_FUNC,
			"tl_apply":    elf.STT_FUNC,
			"tl_sort":     elf.STT_FUNC,
			"tl_counter":  elf.STT_OBJECT,
			"tl_bump":     elf.STT_FUNC,
			"tl_hello":    elf.STT_FUNC,
			"tl_ctor_ran": elf.STT_FUNC,
		},
		needed:  []string{"libc.so.6"},
		imports: []string{"qsort", "getenv", "open", "write"},
	},
	{
		name:   "libcxx.so",
		soname: "libcxx.so",
		exports: map[string]elf.SymType{
			"cx_throw_catch":  elf.STT_FUNC,
			"cx_name":         elf.STT_FUNC,
			"cx_static_ready": elf.STT_FUNC,
		},
		needed:  []string{"libstdc++.so.6"},
		imports: []string{"__cxa_throw", "__cxa_allocate_exception", "__cxa_atexit"},
	},
	{
		name:   "librelr.so",
		soname: "librelr.so",
		exports: map[string]elf.SymType{
			"rr_name":  elf.STT_FUNC,
			"rr_count": elf.STT_FUNC,
		},
	},
	{
		name:   "libifunc.so",
		soname: "libifunc.so",
		exports: map[string]elf.SymType{
			"if_value":          elf.STT_GNU_IFUNC,
			"if_call_table":     elf.STT_FUNC,
			"if_resolver_calls": elf.STT_FUNC,
		},
	},
	{
		name:    "libtlsgd.so",
		soname:  "libtlsgd.so",
		exports: tlsExports,
		imports: []string{"__tls_get_addr"},
	},
	{name: "libtlsdesc.so", soname: "libtlsdesc.so", exports: tlsExports},
	{name: "libtlsie.so", soname: "libtlsie.so", exports: tlsExports},
	{
		name:    "libexecstack.so",
		soname:  "libexecstack.so",
		exports: map[string]elf.SymType{"es_value": elf.STT_FUNC},
	},
	{
		name:   "libtextrel.so",
		soname: "libtextrel.so",
		exports: map[string]elf.SymType{
			"tr_value": elf.STT_FUNC,
			"tr_data":  elf.STT_OBJECT,
		},
	},
	{
		name:    "libneedsm.so",
		soname:  "libneedsm.so",
		exports: map[string]elf.SymType{"nm_hypot": elf.STT_FUNC},
		needed:  []string{"libm.so.6"},
		imports: []string{"hypot"},
	},
	{
		name:    "libcyclea.so",
		soname:  "libcyclea.so",
		exports: map[string]elf.SymType{"cy_a": elf.STT_FUNC},
		needed:  []string{"libcycleb.so"},
	},
	{
		name:    "libcycleb.so",
		soname:  "libcycleb.so",
		exports: map[string]elf.SymType{"cy_b": elf.STT_FUNC},
		needed:  []string{"libcyclea.so"},
	},
	{
		name:    "libsymver.so",
		soname:  "libsymver.so",
		exports: map[string]elf.SymType{"sv_value": elf.STT_FUNC},
	},
	{
		name:    "libdependent.so",
		soname:  "libdependent.so",
		exports: map[string]elf.SymType{"dp_labs_twice": elf.STT_FUNC},
		needed:  []string{"libtrivial.so"},
		imports: []string{"tl_labs"},
	},
}

func openELF(t *testing.T, name string) *elf.File {
	t.Helper()
	f, err := elf.Open(Path(t, name))
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func dynValue(t *testing.T, f *elf.File, tag elf.DynTag) (uint64, bool) {
	t.Helper()
	values, err := f.DynValue(tag)
	if err != nil {
		t.Fatalf("read %v: %v", tag, err)
	}
	if len(values) == 0 {
		return 0, false
	}
	return values[0], true
}

func dynFlags(t *testing.T, f *elf.File) elf.DynFlag {
	t.Helper()
	v, _ := dynValue(t, f, elf.DT_FLAGS)
	return elf.DynFlag(v)
}

func findProg(f *elf.File, typ elf.ProgType) *elf.Prog {
	for _, p := range f.Progs {
		if p.Type == typ {
			return p
		}
	}
	return nil
}

// rela is one entry of an SHT_RELA section.
type rela struct {
	offset uint64
	typ    elf.R_X86_64
}

// relocations returns the entries of all SHT_RELA sections.
func relocations(t *testing.T, f *elf.File) []rela {
	t.Helper()
	var relocs []rela
	for _, s := range f.Sections {
		if s.Type != elf.SHT_RELA {
			continue
		}
		data, err := s.Data()
		if err != nil {
			t.Fatalf("read %s: %v", s.Name, err)
		}
		// Elf64_Rela: r_offset, r_info, r_addend, 8 bytes each.
		const relaSize = 24
		for off := 0; off+relaSize <= len(data); off += relaSize {
			info := binary.LittleEndian.Uint64(data[off+8:])
			relocs = append(relocs, rela{
				offset: binary.LittleEndian.Uint64(data[off:]),
				typ:    elf.R_X86_64(elf.R_TYPE64(info)),
			})
		}
	}
	return relocs
}

// relocTypes returns how many relocations of each type the SHT_RELA sections
// contain.
func relocTypes(t *testing.T, f *elf.File) map[elf.R_X86_64]int {
	t.Helper()
	counts := make(map[elf.R_X86_64]int)
	for _, r := range relocations(t, f) {
		counts[r.typ]++
	}
	return counts
}

func buildID(t *testing.T, f *elf.File) []byte {
	t.Helper()
	s := f.Section(".note.gnu.build-id")
	if s == nil {
		t.Fatal("no .note.gnu.build-id section")
	}
	data, err := s.Data()
	if err != nil {
		t.Fatalf("read build ID note: %v", err)
	}
	// Elf64_Nhdr: namesz, descsz, type, then the name "GNU\0" and the ID.
	if len(data) < 16 {
		t.Fatalf("build ID note is %d bytes, want at least 16", len(data))
	}
	nameSize := binary.LittleEndian.Uint32(data[0:])
	descSize := binary.LittleEndian.Uint32(data[4:])
	start := 12 + (nameSize+3)&^3
	if uint64(start)+uint64(descSize) > uint64(len(data)) {
		t.Fatalf("build ID note: descriptor of %d bytes at %d overruns %d bytes", descSize, start, len(data))
	}
	return data[start : start+descSize]
}

func TestLibrariesAreSharedObjects(t *testing.T) {
	for _, lib := range libraries {
		t.Run(lib.name, func(t *testing.T) {
			f := openELF(t, lib.name)

			if f.Type != elf.ET_DYN {
				t.Errorf("type %v, want ET_DYN", f.Type)
			}
			if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
				t.Errorf("class %v machine %v, want ELFCLASS64 EM_X86_64", f.Class, f.Machine)
			}

			soname, err := f.DynString(elf.DT_SONAME)
			if err != nil {
				t.Fatalf("read DT_SONAME: %v", err)
			}
			if !slices.Equal(soname, []string{lib.soname}) {
				t.Errorf("DT_SONAME %q, want [%q]", soname, lib.soname)
			}

			needed, err := f.DynString(elf.DT_NEEDED)
			if err != nil {
				t.Fatalf("read DT_NEEDED: %v", err)
			}
			for _, want := range lib.needed {
				if !slices.Contains(needed, want) {
					t.Errorf("DT_NEEDED %q, want it to contain %q", needed, want)
				}
			}

			syms, err := f.DynamicSymbols()
			if err != nil {
				t.Fatalf("read dynamic symbols: %v", err)
			}
			defined := make(map[string]elf.Symbol)
			undefined := make(map[string]bool)
			for _, s := range syms {
				if s.Section == elf.SHN_UNDEF {
					undefined[s.Name] = true
				} else {
					defined[s.Name] = s
				}
			}
			for name, typ := range lib.exports {
				s, ok := defined[name]
				if !ok {
					t.Errorf("export %s missing", name)
					continue
				}
				if got := elf.ST_TYPE(s.Info); got != typ {
					t.Errorf("export %s has type %v, want %v", name, got, typ)
				}
				if got := elf.ST_BIND(s.Info); got != elf.STB_GLOBAL {
					t.Errorf("export %s has binding %v, want STB_GLOBAL", name, got)
				}
			}
			for _, name := range lib.imports {
				if !undefined[name] {
					t.Errorf("import %s missing from the undefined dynamic symbols", name)
				}
			}
		})
	}
}

func TestLibrariesHardening(t *testing.T) {
	for _, lib := range libraries {
		t.Run(lib.name, func(t *testing.T) {
			f := openELF(t, lib.name)

			if findProg(f, elf.PT_GNU_RELRO) == nil {
				t.Error("PT_GNU_RELRO missing, want one from -z relro")
			}
			if dynFlags(t, f)&elf.DF_BIND_NOW == 0 {
				t.Errorf("DT_FLAGS %v, want DF_BIND_NOW from -z now", dynFlags(t, f))
			}

			stack := findProg(f, elf.PT_GNU_STACK)
			if stack == nil {
				t.Fatal("PT_GNU_STACK missing")
			}
			wantExec := lib.name == "libexecstack.so"
			if gotExec := stack.Flags&elf.PF_X != 0; gotExec != wantExec {
				t.Errorf("PT_GNU_STACK flags %v, want PF_X set = %v", stack.Flags, wantExec)
			}

			_, textrel := dynValue(t, f, elf.DT_TEXTREL)
			wantTextrel := lib.name == "libtextrel.so"
			if textrel != wantTextrel {
				t.Errorf("DT_TEXTREL present = %v, want %v", textrel, wantTextrel)
			}
		})
	}
}

func TestRELR(t *testing.T) {
	f := openELF(t, "librelr.so")

	if _, ok := dynValue(t, f, dtRELR); !ok {
		t.Fatal("DT_RELR missing: the linker may lack -z pack-relative-relocs (GNU ld 2.38 or later has it)")
	}
	size, ok := dynValue(t, f, dtRELRSZ)
	if !ok || size == 0 {
		t.Errorf("DT_RELRSZ = %d (present %v), want a positive size", size, ok)
	}
	if n := relocTypes(t, f)[elf.R_X86_64_RELATIVE]; n != 0 {
		t.Errorf("%d R_X86_64_RELATIVE entries in RELA sections, want 0 because all are packed into DT_RELR", n)
	}

	// A library built without the option keeps its relative relocations in
	// RELA, which the loader must still handle.
	plain := openELF(t, "libtrivial.so")
	if _, ok := dynValue(t, plain, dtRELR); ok {
		t.Error("libtrivial.so has DT_RELR, want none")
	}
}

func TestTextrel(t *testing.T) {
	f := openELF(t, "libtextrel.so")

	if dynFlags(t, f)&elf.DF_TEXTREL == 0 {
		t.Errorf("DT_FLAGS %v, want DF_TEXTREL", dynFlags(t, f))
	}

	// The relocation that makes it a text relocation: R_X86_64_64 for the
	// movabs operand, at an address inside an executable PT_LOAD segment.
	var inText bool
	for _, r := range relocations(t, f) {
		if r.typ != elf.R_X86_64_64 {
			continue
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && r.offset >= p.Vaddr && r.offset < p.Vaddr+p.Memsz {
				inText = true
			}
		}
	}
	if !inText {
		t.Errorf("relocation types %v, want an R_X86_64_64 inside the executable segment", relocTypes(t, f))
	}
}

func TestIFUNC(t *testing.T) {
	f := openELF(t, "libifunc.so")

	counts := relocTypes(t, f)
	if counts[elf.R_X86_64_IRELATIVE] == 0 {
		t.Errorf("relocation types %v, want at least one R_X86_64_IRELATIVE", counts)
	}
}

func TestTLS(t *testing.T) {
	tests := []struct {
		name      string
		reloc     elf.R_X86_64
		staticTLS bool
	}{
		{"libtlsgd.so", elf.R_X86_64_DTPMOD64, false},
		{"libtlsdesc.so", elf.R_X86_64_TLSDESC, false},
		{"libtlsie.so", elf.R_X86_64_TPOFF64, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := openELF(t, tt.name)

			tls := findProg(f, elf.PT_TLS)
			if tls == nil {
				t.Fatal("PT_TLS missing")
			}
			if tls.Memsz < 8 {
				t.Errorf("PT_TLS memsz %d, want at least 8 for the long counter", tls.Memsz)
			}

			counts := relocTypes(t, f)
			if counts[tt.reloc] == 0 {
				t.Errorf("relocation types %v, want at least one %v", counts, tt.reloc)
			}

			static := dynFlags(t, f)&elf.DF_STATIC_TLS != 0
			if static != tt.staticTLS {
				t.Errorf("DF_STATIC_TLS set = %v, want %v", static, tt.staticTLS)
			}
		})
	}
}

func TestVersionedPair(t *testing.T) {
	v1 := openELF(t, "v1/libversioned.so.1")
	v2 := openELF(t, "v2/libversioned.so.1")

	soname1, err := v1.DynString(elf.DT_SONAME)
	if err != nil {
		t.Fatal(err)
	}
	soname2, err := v2.DynString(elf.DT_SONAME)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(soname1, soname2) {
		t.Errorf("DT_SONAME v1 %q, v2 %q, want equal", soname1, soname2)
	}

	id1, id2 := buildID(t, v1), buildID(t, v2)
	if bytes.Equal(id1, id2) {
		t.Errorf("build IDs are both %x, want different", id1)
	}

	for _, tt := range []struct {
		f       *elf.File
		version string
		other   string
	}{
		{v1, "1.0.0", "2.0.0"},
		{v2, "2.0.0", "1.0.0"},
	} {
		rodata := tt.f.Section(".rodata")
		if rodata == nil {
			t.Fatal("no .rodata section")
		}
		data, err := rodata.Data()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(tt.version+"\x00")) {
			t.Errorf(".rodata %q, want it to contain %q", data, tt.version)
		}
		if bytes.Contains(data, []byte(tt.other+"\x00")) {
			t.Errorf(".rodata %q, want it not to contain %q", data, tt.other)
		}
	}
}

func TestPathIsAbsolute(t *testing.T) {
	path := Path(t, "v1/libversioned.so.1")
	if !filepath.IsAbs(path) {
		t.Errorf("Path returned %q, want an absolute path", path)
	}
	if want := filepath.Join(Dir(t), "v1", "libversioned.so.1"); path != want {
		t.Errorf("Path returned %q, want %q", path, want)
	}
}

func TestSystemLibrary(t *testing.T) {
	path := SystemLibrary(t, "libc.so.6", "libc6")
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	if f.Type != elf.ET_DYN {
		t.Errorf("%s has type %v, want ET_DYN", path, f.Type)
	}
}

func TestSystemLibraryMissingSkips(t *testing.T) {
	var skipped bool
	t.Run("libdecouple-missing.so.0", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		path := SystemLibrary(t, "libdecouple-missing.so.0", "none")
		t.Errorf("SystemLibrary returned %q for a library that does not exist, want a skip", path)
	})
	if !skipped {
		t.Error("subtest was not skipped, want SystemLibrary to call Skipf")
	}
}

// copySources copies the sources and Makefile of testdata/libs, without the
// build folder, into a new temporary folder and returns it.
func copySources(t *testing.T) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, "testdata", "libs")
	dst := t.TempDir()

	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestMakeFromCleanCopy builds a fresh copy of testdata/libs from several
// goroutines at once, as parallel test processes would, then checks that
// make considers the result up to date and that it contains exactly the
// libraries listed in the libraries table.
func TestMakeFromCleanCopy(t *testing.T) {
	dir := copySources(t)

	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = runMake(dir)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("build %d: %v", i, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// make -q exits with status 0 only if every target is up to date.
	if out, err := exec.Command("make", "-q", "-C", dir).CombinedOutput(); err != nil {
		t.Errorf("make -q after a build: %v, want exit status 0 (up to date)\n%s", err, out)
	}

	var built []string
	build := filepath.Join(dir, "build")
	err := filepath.WalkDir(build, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.Contains(d.Name(), ".so") {
			rel, err := filepath.Rel(build, path)
			if err != nil {
				return err
			}
			built = append(built, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, lib := range libraries {
		listed = append(listed, lib.name)
	}
	slices.Sort(built)
	slices.Sort(listed)
	if !slices.Equal(built, listed) {
		t.Errorf("make built %q, want the libraries table %q", built, listed)
	}
}

func TestMakeMissingCompiler(t *testing.T) {
	dir := copySources(t)

	tests := []struct {
		variable string
		pkg      string
	}{
		{"CC", "gcc"},
		{"CXX", "g++"},
	}
	for _, tt := range tests {
		t.Run(tt.variable, func(t *testing.T) {
			out, err := runMake(dir, tt.variable+"=/nonexistent/"+tt.pkg)
			if err == nil {
				t.Fatalf("make with %s=/nonexistent/%s succeeded, want an error", tt.variable, tt.pkg)
			}
			want := "install the Debian package " + tt.pkg + " "
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q, want it to contain %q", err, want)
			}
			if len(out) == 0 {
				t.Error("make output is empty, want the error message")
			}
		})
	}
}
