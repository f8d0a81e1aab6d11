package gen

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// LibraryDirs lists the directories FindLibrary searches, in order, for a
// library given by file name only. They are the Debian multiarch and the
// lib64 directories for x86-64 Linux.
var LibraryDirs = []string{
	"/lib/x86_64-linux-gnu",
	"/usr/lib/x86_64-linux-gnu",
	"/usr/local/lib/x86_64-linux-gnu",
	"/lib64",
	"/usr/lib64",
	"/usr/local/lib",
	"/lib",
	"/usr/lib",
}

// Library is the part of a shared object's dynamic symbol table that the
// generator uses.
type Library struct {
	// Path is the file the symbols were read from.
	Path string
	// Soname is the DT_SONAME entry, or "" if the library has none.
	Soname string
	// Funcs maps the name of every function the library defines to its
	// symbols, one per version, sorted by version name.
	Funcs map[string][]Symbol
}

// Symbol is one defined function symbol of a Library.
type Symbol struct {
	Name string
	// Version is the symbol version name, "" for an unversioned symbol or
	// one of the base version.
	Version string
	// Default reports whether a lookup by plain name binds this symbol, as
	// dlsym does: the symbol is unversioned or has the default version
	// (name@@VERSION rather than name@VERSION).
	Default bool
	// Weak reports whether the symbol has STB_WEAK binding.
	Weak bool
	// IFunc reports whether the symbol is an STT_GNU_IFUNC indirect
	// function, whose address the loader gets by calling a resolver.
	IFunc bool
}

// Exported returns the symbol a lookup of name binds, and false if the
// library has no such function or only non-default versions of it.
func (l *Library) Exported(name string) (Symbol, bool) {
	for _, s := range l.Funcs[name] {
		if s.Default {
			return s, true
		}
	}
	return Symbol{}, false
}

// FindLibrary returns name unchanged if it contains a slash, and otherwise
// the first file called name in LibraryDirs. The error wraps
// ErrLibraryNotFound.
func FindLibrary(name string) (string, error) {
	if strings.Contains(name, "/") {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("find library %s: %w: %w", name, ErrLibraryNotFound, err)
		}
		return name, nil
	}
	if name == "" {
		return "", fmt.Errorf("find library: %w: empty name", ErrLibraryNotFound)
	}
	for _, dir := range LibraryDirs {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("find library %s: %w in %s; pass a path instead", name, ErrLibraryNotFound, strings.Join(LibraryDirs, ", "))
}

// ReadLibrary reads the dynamic symbol table of the shared object at path.
// The error wraps ErrFormat if the file is not a valid ELF shared object and
// ErrUnsupported if it is one for another machine than x86-64.
func ReadLibrary(path string) (*Library, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read library: %w", err)
	}
	defer f.Close()
	return ParseLibrary(f, path)
}

// ParseLibrary is ReadLibrary for a file already open as r. The name is used
// in errors and as Library.Path.
func ParseLibrary(r io.ReaderAt, name string) (lib *Library, err error) {
	// debug/elf trusts offsets and counts in the file and can panic on a
	// malformed one, so a panic becomes an ErrFormat error naming the file.
	defer func() {
		if v := recover(); v != nil {
			lib = nil
			err = fmt.Errorf("parse %s: %w: debug/elf panicked: %v", name, ErrFormat, v)
		}
	}()
	return parseLibrary(r, name)
}

func parseLibrary(r io.ReaderAt, name string) (*Library, error) {
	var magic [4]byte
	if n, _ := r.ReadAt(magic[:], 0); n < len(magic) || string(magic[:]) != elf.ELFMAG {
		return nil, fmt.Errorf("parse %s: %w: the file does not start with the ELF magic \\x7fELF; pass a shared library (.so) with -lib", name, ErrFormat)
	}
	f, err := elf.NewFile(r)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("parse %s: %w: the file ends inside its ELF headers; it is truncated", name, ErrFormat)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w: %w", name, ErrFormat, err)
	}
	if f.Type != elf.ET_DYN {
		return nil, fmt.Errorf("parse %s: %w: file type %v, want ET_DYN (a shared object)", name, ErrFormat, f.Type)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("parse %s: %w: %v %v, want ELFCLASS64 EM_X86_64", name, ErrUnsupported, f.Class, f.Machine)
	}

	lib := &Library{Path: name, Funcs: make(map[string][]Symbol)}
	sonames, err := f.DynString(elf.DT_SONAME)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w: read DT_SONAME: %w", name, ErrFormat, err)
	}
	if len(sonames) > 0 {
		lib.Soname = sonames[0]
	}

	syms, err := f.DynamicSymbols()
	if err != nil {
		if errors.Is(err, elf.ErrNoSymbols) {
			return lib, nil
		}
		return nil, fmt.Errorf("parse %s: %w: read dynamic symbols: %w", name, ErrFormat, err)
	}
	for _, s := range syms {
		if !isFunction(s) {
			continue
		}
		lib.Funcs[s.Name] = append(lib.Funcs[s.Name], Symbol{
			Name:    s.Name,
			Version: s.Version,
			Default: !s.HasVersion || !s.VersionIndex.IsHidden(),
			Weak:    elf.ST_BIND(s.Info) == elf.STB_WEAK,
			IFunc:   elf.ST_TYPE(s.Info) == elf.STT_GNU_IFUNC,
		})
	}
	for _, versions := range lib.Funcs {
		slices.SortFunc(versions, func(a, b Symbol) int { return strings.Compare(a.Version, b.Version) })
	}
	return lib, nil
}

// isFunction reports whether s is a function another object can bind to: it
// is defined, has global or weak binding, default or protected visibility,
// and type STT_FUNC or STT_GNU_IFUNC.
func isFunction(s elf.Symbol) bool {
	if s.Section == elf.SHN_UNDEF || s.Name == "" {
		return false
	}
	switch elf.ST_BIND(s.Info) {
	case elf.STB_GLOBAL, elf.STB_WEAK:
	default:
		return false
	}
	switch elf.ST_VISIBILITY(s.Other) {
	case elf.STV_DEFAULT, elf.STV_PROTECTED:
	default:
		return false
	}
	switch elf.ST_TYPE(s.Info) {
	case elf.STT_FUNC, elf.STT_GNU_IFUNC:
		return true
	}
	return false
}

// sortedNames returns the keys of m in increasing order.
func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
