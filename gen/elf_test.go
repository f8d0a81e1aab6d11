package gen

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadLibraryZlib(t *testing.T) {
	requireZlib(t)
	lib, err := ReadLibrary(zlibPath)
	if err != nil {
		t.Fatalf("ReadLibrary(%s): %v", zlibPath, err)
	}
	if lib.Soname != "libz.so.1" {
		t.Errorf("Soname = %q, want libz.so.1", lib.Soname)
	}
	tests := []struct {
		name, version string
	}{
		{"compress", ""},
		{"crc32", ""},
		{"compressBound", "ZLIB_1.2.0"},
		{"crc32_z", "ZLIB_1.2.9"},
	}
	for _, tt := range tests {
		sym, ok := lib.Exported(tt.name)
		if !ok {
			t.Errorf("Exported(%q) = false, want true", tt.name)
			continue
		}
		if sym.Version != tt.version {
			t.Errorf("version of %s = %q, want %q", tt.name, sym.Version, tt.version)
		}
		if sym.IFunc || sym.Weak {
			t.Errorf("%s: IFunc %v Weak %v, want both false", tt.name, sym.IFunc, sym.Weak)
		}
	}
	// Undefined imports and version definitions are not functions of libz.
	for _, name := range []string{"malloc", "memcpy", "ZLIB_1.2.9"} {
		if _, ok := lib.Funcs[name]; ok {
			t.Errorf("Funcs contains %s, which libz does not define as a function", name)
		}
	}
}

func TestReadLibraryVersionsAndIFunc(t *testing.T) {
	lib, err := ReadLibrary(buildMapping(t))
	if err != nil {
		t.Fatal(err)
	}
	if lib.Soname != "libmapping.so.1" {
		t.Errorf("Soname = %q, want libmapping.so.1", lib.Soname)
	}

	old := lib.Funcs["m_old"]
	if len(old) != 1 || old[0].Version != "MAPPING_0" || old[0].Default {
		t.Errorf("m_old symbols = %+v, want one non-default symbol of version MAPPING_0", old)
	}
	if _, ok := lib.Exported("m_old"); ok {
		t.Errorf("Exported(m_old) = true, want false for a symbol with only a non-default version")
	}

	ifunc, ok := lib.Exported("m_ifunc")
	if !ok || !ifunc.IFunc {
		t.Errorf("Exported(m_ifunc) = %+v, %v; want an IFunc symbol", ifunc, ok)
	}

	add, ok := lib.Exported("m_add_int")
	if !ok || add.Version != "MAPPING_1" || !add.Default {
		t.Errorf("Exported(m_add_int) = %+v, %v; want the default version MAPPING_1", add, ok)
	}

	// Static functions and local symbols from the version script stay out.
	for _, name := range []string{"m_ifunc_impl", "resolve_m_ifunc", "_init", "_fini"} {
		if _, ok := lib.Funcs[name]; ok {
			t.Errorf("Funcs contains %s, which is not exported", name)
		}
	}
}

func TestReadLibraryGlibcVersions(t *testing.T) {
	path, err := FindLibrary("libc.so.6")
	if err != nil {
		t.Skipf("no libc.so.6 in the library directories: %v", err)
	}
	lib, err := ReadLibrary(path)
	if err != nil {
		t.Fatal(err)
	}
	// glibc exports memcpy as memcpy@GLIBC_2.2.5 and memcpy@@GLIBC_2.14
	// (an IFUNC); only the default one binds by plain name.
	syms := lib.Funcs["memcpy"]
	if len(syms) < 2 {
		t.Fatalf("memcpy symbols = %+v, want at least two versions", syms)
	}
	var defaults []string
	for _, s := range syms {
		if s.Default {
			defaults = append(defaults, s.Version)
		}
	}
	if len(defaults) != 1 {
		t.Errorf("default versions of memcpy = %q, want exactly one", defaults)
	}
	if !slices.IsSortedFunc(syms, func(a, b Symbol) int { return strings.Compare(a.Version, b.Version) }) {
		t.Errorf("memcpy symbols %+v not sorted by version", syms)
	}
}

func TestReadLibraryErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	text := write("text.so", []byte("this is not an ELF file\n"))
	empty := write("empty.so", nil)

	tests := []struct {
		name   string
		path   string
		target error
	}{
		{"text file", text, ErrFormat},
		{"empty file", empty, ErrFormat},
		{"executable", "/proc/self/exe", nil},
	}
	if lib := mappingBytes(t); lib != nil {
		// The same library claiming to be for AArch64.
		arm := bytes.Clone(lib)
		binary.LittleEndian.PutUint16(arm[18:], uint16(elf.EM_AARCH64))
		tests = append(tests, struct {
			name   string
			path   string
			target error
		}{"aarch64", write("arm.so", arm), ErrUnsupported})
		// The same library claiming to be a relocatable object.
		rel := bytes.Clone(lib)
		binary.LittleEndian.PutUint16(rel[16:], uint16(elf.ET_REL))
		tests = append(tests, struct {
			name   string
			path   string
			target error
		}{"relocatable", write("rel.o", rel), ErrFormat})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lib, err := ReadLibrary(tt.path)
			if tt.target == nil {
				// A Go test binary is ET_EXEC, or ET_DYN when built as a
				// position-independent executable, which ReadLibrary
				// accepts: it reads symbols, it does not load.
				if err != nil && !errors.Is(err, ErrFormat) {
					t.Errorf("ReadLibrary(%s) error %q, want nil or one wrapping ErrFormat", tt.path, err)
				}
				if err == nil && lib == nil {
					t.Errorf("ReadLibrary(%s) returned neither a library nor an error", tt.path)
				}
				return
			}
			if err == nil {
				t.Fatalf("ReadLibrary(%s) succeeded, want an error wrapping %v", tt.path, tt.target)
			}
			if !errors.Is(err, tt.target) {
				t.Errorf("ReadLibrary(%s) error %q does not wrap %v", tt.path, err, tt.target)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("ReadLibrary(%s) error %q does not name the file", tt.path, err)
			}
		})
	}
}

func TestFindLibrary(t *testing.T) {
	requireZlib(t)
	got, err := FindLibrary("libz.so.1")
	if err != nil {
		t.Fatalf("FindLibrary(libz.so.1): %v", err)
	}
	if filepath.Base(got) != "libz.so.1" || !slices.Contains(LibraryDirs, filepath.Dir(got)) {
		t.Errorf("FindLibrary(libz.so.1) = %s, want libz.so.1 in one of %q", got, LibraryDirs)
	}
	if got, err := FindLibrary(zlibPath); err != nil || got != zlibPath {
		t.Errorf("FindLibrary(%s) = %q, %v; want the path unchanged", zlibPath, got, err)
	}
	for _, name := range []string{"libdecouple-nonexistent.so.3", "/nonexistent/libz.so.1", ""} {
		if _, err := FindLibrary(name); !errors.Is(err, ErrLibraryNotFound) {
			t.Errorf("FindLibrary(%q) error = %v, want ErrLibraryNotFound", name, err)
		}
	}
}

// mappingBytes returns the contents of the test library, or nil if it
// cannot be built.
func mappingBytes(t testing.TB) []byte {
	t.Helper()
	if testing.Short() {
		return nil
	}
	path, err := mappingLib()
	if err != nil {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzParseLibrary feeds real shared libraries and mangled copies of them
// to ParseLibrary, which must return a result or an error wrapping
// ErrFormat or ErrUnsupported, never panic.
func FuzzParseLibrary(f *testing.F) {
	var seeds [][]byte
	for _, p := range []string{zlibPath} {
		if b, err := os.ReadFile(p); err == nil {
			seeds = append(seeds, b)
		}
	}
	if b := mappingBytes(f); b != nil {
		seeds = append(seeds, b)
	}
	for _, b := range seeds {
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add(b[:64])
		// Corrupt the section header offset, count and string table index,
		// and the first program header.
		for _, off := range []int{0x28, 0x3c, 0x3e, 0x40, 0x48} {
			m := bytes.Clone(b)
			for i := range 4 {
				m[off+i] ^= 0xff
			}
			f.Add(m)
		}
	}
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lib, err := ParseLibrary(bytes.NewReader(data), "fuzz.so")
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %q wraps neither ErrFormat nor ErrUnsupported", err)
			}
			if lib != nil {
				t.Fatalf("ParseLibrary returned a library with error %v", err)
			}
			return
		}
		for name, syms := range lib.Funcs {
			if name == "" || len(syms) == 0 {
				t.Fatalf("Funcs[%q] = %+v, want a non-empty name with symbols", name, syms)
			}
			for _, s := range syms {
				if s.Name != name {
					t.Fatalf("Funcs[%q] contains symbol %q", name, s.Name)
				}
			}
		}
	})
}
