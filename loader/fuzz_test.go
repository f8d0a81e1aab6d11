package loader_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/decouple-go/decouple/internal/testlibs"
	"github.com/decouple-go/decouple/loader"
)

// maxSeedSize keeps the corpus small: the fuzzer copies and mutates whole
// inputs, so large seeds slow every execution down.
const maxSeedSize = 32 << 10

// fuzzSeeds returns real libraries found on this machine, smallest system
// libraries and every test library, plus mangled copies of one of them.
func fuzzSeeds(f testing.TB) [][]byte {
	var seeds [][]byte
	for _, soname := range []string{"libz.so.1", "libbz2.so.1.0", "liblzma.so.5", "libexpat.so.1"} {
		for _, dir := range []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64"} {
			data, err := os.ReadFile(filepath.Join(dir, soname))
			if err == nil && len(data) <= maxSeedSize {
				seeds = append(seeds, data)
				break
			}
		}
	}

	err := filepath.WalkDir(testlibs.Dir(f), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(d.Name(), ".so") {
			return err
		}
		data, err := os.ReadFile(path)
		if err == nil && len(data) <= maxSeedSize {
			seeds = append(seeds, data)
		}
		return err
	})
	if err != nil {
		f.Fatalf("read the test libraries: %v", err)
	}

	base, err := os.ReadFile(testlibs.Path(f, "libtrivial.so"))
	if err != nil {
		f.Fatal(err)
	}
	return append(seeds, mangle(base)...)
}

// mangle returns damaged copies of a library: truncations, and single
// fields of the ELF header, program headers and dynamic section replaced by
// out-of-range values.
func mangle(base []byte) [][]byte {
	out := [][]byte{
		base[:64], base[:100], base[:len(base)/2], base[:len(base)-1],
	}
	edit := func(fn func(b []byte)) {
		b := bytes.Clone(base)
		fn(b)
		out = append(out, b)
	}
	le := binary.LittleEndian
	edit(func(b []byte) { b[elf.EI_CLASS] = byte(elf.ELFCLASS32) })
	edit(func(b []byte) { le.PutUint16(b[56:], 0xffff) })
	edit(func(b []byte) { le.PutUint64(b[32:], uint64(len(b))-8) })

	f, err := elf.NewFile(bytes.NewReader(base))
	if err != nil {
		return out
	}
	phoff := le.Uint64(base[32:])
	for i, p := range f.Progs {
		ph := phoff + uint64(i)*56
		if p.Type == elf.PT_LOAD {
			edit(func(b []byte) { le.PutUint64(b[ph+40:], 1<<40) })
			edit(func(b []byte) { le.PutUint64(b[ph+8:], uint64(len(b))) })
		}
	}
	if dyn := f.Section(".dynamic"); dyn != nil {
		for off := dyn.Offset; off+16 <= dyn.Offset+dyn.Size; off += 16 {
			switch elf.DynTag(le.Uint64(base[off:])) {
			case elf.DT_STRSZ, elf.DT_RELASZ, elf.DT_PLTRELSZ, elf.DT_SYMTAB, elf.DT_GNU_HASH, elf.DT_VERSYM, elf.DT_VERNEED, elf.DT_INIT_ARRAY:
				edit(func(b []byte) { le.PutUint64(b[off+8:], 0xfffffffffffffff0) })
			}
		}
	}
	return out
}

// FuzzParse feeds arbitrary bytes to ParseBytes. The parser must return a
// spec or an error matching ErrFormat or ErrNotSupported, and must not
// panic: ParseBytes recovers a panic into a FormatError, which this target
// reports as a failure because it means a bounds check is missing.
func FuzzParse(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := loader.ParseBytes("fuzz.so", data)
		if err != nil {
			if strings.Contains(err.Error(), "internal parser error") {
				t.Fatalf("the parser panicked: %v", err)
			}
			if !errors.Is(err, loader.ErrFormat) && !errors.Is(err, loader.ErrNotSupported) {
				t.Fatalf("error %q matches neither ErrFormat nor ErrNotSupported", err)
			}
			if !strings.Contains(err.Error(), "fuzz.so") {
				t.Fatalf("message %q does not name the file fuzz.so", err)
			}
			return
		}

		if len(spec.Segments) == 0 {
			t.Fatal("ParseBytes returned a spec without segments")
		}
		badReloc := ""
		for i, r := range spec.Relocs {
			if int(r.Sym) < len(spec.Symbols) {
				continue
			}
			if r.Type == elf.R_X86_64_NONE {
				badReloc = fmt.Sprintf("Parse keeps an R_X86_64_NONE relocation (%d) whose symbol index %d is outside the %d-entry table, so Reloc.Sym is not always an index into Spec.Symbols", i, r.Sym, len(spec.Symbols))
				continue
			}
			t.Fatalf("%v relocation %d names symbol %d, but the table has %d", r.Type, i, r.Sym, len(spec.Symbols))
		}
		exports := spec.Exports()
		for i, e := range exports {
			if e.Name == "" {
				t.Fatalf("export %d has an empty name", i)
			}
			if i > 0 && exports[i-1].Name > e.Name {
				t.Fatalf("exports are not sorted: %q before %q", exports[i-1].Name, e.Name)
			}
		}
		if err := spec.CheckOwnLoader(); err != nil {
			if !errors.Is(err, loader.ErrNotSupported) {
				t.Fatalf("CheckOwnLoader: error %q does not match ErrNotSupported", err)
			}
			if !strings.Contains(err.Error(), "fuzz.so") {
				t.Fatalf("CheckOwnLoader: message %q does not name the file fuzz.so", err)
			}
		}
		if badReloc != "" {
			t.Fatalf("Parse accepted an invalid file: %s", badReloc)
		}
	})
}
