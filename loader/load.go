package loader

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/decouple-go/decouple/internal/ccall"
)

// Options control how an image is loaded. The zero value is valid.
type Options struct {
	// DataInMemfd keeps the writable segments in a memfd shared mapping
	// instead of private anonymous memory, so that their contents survive
	// while the image is unmapped between calls.
	DataInMemfd bool

	// Backend selects the own loader, the system loader, or the own
	// loader with a fallback to the system loader (the default).
	Backend Backend

	// Isolate names DT_NEEDED dependencies (as written in the library,
	// such as "libz.so.1") that the own loader loads too, each in a range
	// of its own that gates protect along with the library; "*" selects
	// all. Other dependencies bind through the system loader.
	Isolate []string
}

// Region is one page-aligned range of an image with a single protection.
// A gate changes the protection of regions, or unmaps and maps them again.
type Region struct {
	Addr uintptr
	Size uintptr
	Prot int // PROT_* bits the library expects inside a call

	fd     int   // file or memfd the pages come from; -1 for anonymous memory
	offset int64 // offset of Addr's page in fd
	shared bool  // MAP_SHARED (memfd) rather than MAP_PRIVATE
}

// Remappable reports whether the region can be mapped again from its file
// or memfd after being unmapped, without losing contents.
func (r Region) Remappable() bool { return r.fd >= 0 && (r.shared || r.Prot&unix.PROT_WRITE == 0) }

// Dependency records how one DT_NEEDED entry was bound.
type Dependency struct {
	Name  string
	How   string // "system loader" or "own loader"
	Path  string // file loaded by the own loader
	Image *Image // the dependency's image when the own loader loaded it

	handle uintptr
}

// Image is one library loaded by the own loader: mapped, relocated,
// bound and initialised. Its methods are safe for concurrent use, except
// that Close must not overlap a call into the library.
type Image struct {
	Spec     *Spec
	Base     uintptr // address of the image's first page
	Span     uintptr // bytes reserved for the image
	LoadTime time.Duration
	Deps     []Dependency
	Backend  Backend // BackendOwn or BackendSystem
	Fallback string  // reason BackendAuto chose the system loader, or ""
	// Shared reports a system-loaded image whose file the system loader
	// had loaded already: the image is that process-wide copy, shared with
	// other users, not a new one.
	Shared bool

	base     unsafe.Pointer
	regions  []Region
	ehFrame  uintptr // registered .eh_frame address, 0 when none
	ownsSpec bool    // Open parsed the spec for this image alone; Close closes it
	handle   uintptr // dlopen handle of a system-loaded image
	fileID   fileID  // device and inode of a system-loaded image's file
	// keepReadable are the page ranges of a system-loaded image that must
	// stay readable between calls (see markKeepReadable).
	keepReadable [][2]uintptr
	file         *os.File
	memfd        int

	closeOnce sync.Once
	closeErr  error
}

// Open parses and loads the library at path.
func Open(path string, opts *Options) (*Image, error) {
	spec, err := Parse(path)
	if err != nil {
		return nil, err
	}
	im, err := Load(spec, opts)
	if err != nil {
		spec.Close()
		return nil, err
	}
	im.ownsSpec = true
	return im, nil
}

// CheckOwnLoader reports the first feature of the library that the own
// loader does not load, as a *NotSupportedError, or nil.
func (s *Spec) CheckOwnLoader() error {
	f := s.Features
	switch {
	case f.Executable:
		return notSupported(s.Path, "executable", "the file has PT_INTERP or DT_PREINIT_ARRAY; only shared libraries can be loaded")
	case f.TextRel:
		return notSupported(s.Path, "text relocations", "relocations target read-only segments, which would have to be made writable; rebuild the library with -fPIC")
	case f.ExecStack:
		return notSupported(s.Path, "executable stack", "PT_GNU_STACK asks for an executable stack; rebuild with -Wl,-z,noexecstack")
	case f.CopyReloc:
		return notSupported(s.Path, "R_X86_64_COPY relocations", "copy relocations belong in executables, not in a library")
	case f.StaticTLS:
		return notSupported(s.Path, "initial-exec TLS", "DF_STATIC_TLS needs space in the static TLS block that the system loader sized at program start; load it with the system backend")
	case f.TLS:
		return notSupported(s.Path, "thread-local storage (PT_TLS)", "the own loader does not set up TLS blocks; load it with the system backend")
	case f.CXX && s.EHFrame == 0:
		return notSupported(s.Path, "C++ without unwind tables", "the library has no PT_GNU_EH_FRAME, so exceptions could not unwind through it; load it with the system backend")
	}
	for i, r := range s.Relocs {
		switch r.Type {
		case elf.R_X86_64_NONE, elf.R_X86_64_64, elf.R_X86_64_GLOB_DAT, elf.R_X86_64_JMP_SLOT,
			elf.R_X86_64_RELATIVE, elf.R_X86_64_IRELATIVE:
		default:
			return notSupported(s.Path, fmt.Sprintf("relocation type %v", r.Type), fmt.Sprintf("relocation %d at %#x has a type the own loader does not apply", i, r.Offset))
		}
	}
	return nil
}

// Load maps spec's library into a fresh, randomly placed address range,
// relocates it, binds its imports through the system loader and runs its
// initialisers. On error nothing of the library stays mapped.
func Load(spec *Spec, opts *Options) (*Image, error) {
	if opts == nil {
		opts = &Options{}
	}
	switch opts.Backend {
	case BackendSystem:
		return loadSystem(spec, "")
	case BackendAuto:
		if b, reason := spec.ChooseBackend(); b == BackendSystem {
			return loadSystem(spec, reason)
		}
	case BackendOwn:
		if err := spec.CheckOwnLoader(); err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
	default:
		return nil, fmt.Errorf("load %s: unknown backend %d", spec.Path, int(opts.Backend))
	}
	return load(spec, opts, nil)
}

func load(spec *Spec, opts *Options, chain []string) (*Image, error) {
	start := time.Now()
	im := &Image{Spec: spec, Backend: BackendOwn, memfd: -1}
	name := spec.Soname
	if name == "" {
		name = filepath.Base(spec.Path)
	}
	if err := im.load(opts, append(chain[:len(chain):len(chain)], name)); err != nil {
		im.release()
		return nil, fmt.Errorf("load %s: %w", spec.Path, err)
	}
	im.LoadTime = time.Since(start)
	return im, nil
}

func (im *Image) load(opts *Options, chain []string) error {
	spec := im.Spec
	f, err := spec.openFile()
	if err != nil {
		return err
	}
	im.file = f

	base, err := reserve(spec.Span, maxAlign(spec.Segments))
	if err != nil {
		return err
	}
	im.base = base
	im.Base = uintptr(base)
	im.Span = uintptr(spec.Span)

	if err := im.mapSegments(opts); err != nil {
		return err
	}
	if err := im.bindDependencies(opts, chain); err != nil {
		return err
	}
	if err := im.relocate(); err != nil {
		return err
	}
	if err := im.applyRelro(); err != nil {
		return err
	}
	if err := im.registerFrames(); err != nil {
		return err
	}
	im.runInit()
	return nil
}

// openFile returns a descriptor of the parsed file for the image to own:
// a duplicate of the one Parse kept, or, for a spec from ParseBytes, the
// file at the spec's path if it still has the parsed size.
func (s *Spec) openFile() (*os.File, error) {
	if s.mapping != nil && s.file == nil {
		return nil, fmt.Errorf("%s: the spec was closed; parse the file again", s.Path)
	}
	if s.file != nil {
		fd, err := unix.FcntlInt(s.file.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("duplicate the descriptor of %s: %w", s.Path, err)
		}
		return os.NewFile(uintptr(fd), s.Path), nil
	}
	f, err := os.Open(s.Path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.Size() != s.Size {
		f.Close()
		return nil, fmt.Errorf("file changed since it was parsed: size %d, parsed %d; parse it again", st.Size(), s.Size)
	}
	return f, nil
}

func maxAlign(segs []Segment) uint64 {
	a := uint64(pageSize)
	for _, s := range segs {
		if s.Align > a && s.Align <= 1<<21 {
			a = s.Align
		}
	}
	return a
}

// addr converts an address relative to the ELF file's base (a symbol
// value, a relocation offset) to an address in the process.
func (im *Image) addr(v uint64) uintptr {
	return im.Base + uintptr(v-alignDown(im.Spec.Segments[0].Vaddr, pageSize))
}

// Regions returns the image's page ranges with the protections the library
// expects during a call, followed by those of its isolated dependencies.
func (im *Image) Regions() []Region {
	out := append([]Region(nil), im.regions...)
	for _, d := range im.Deps {
		if d.Image != nil {
			out = append(out, d.Image.Regions()...)
		}
	}
	return out
}

// Contains reports whether addr lies in the image's reserved range.
func (im *Image) Contains(addr uintptr) bool {
	return addr >= im.Base && addr < im.Base+im.Span
}

// Lookup returns the address of the default version of an exported
// function or object.
func (im *Image) Lookup(name string) (uintptr, error) {
	return im.LookupVersion(name, "")
}

// LookupVersion returns the address of name at the given version; an
// empty version selects the default one.
func (im *Image) LookupVersion(name, version string) (uintptr, error) {
	if im.Backend == BackendSystem {
		return im.lookupSystem(name, version)
	}
	idx, err := im.Spec.findExport(name, version)
	if err != nil {
		return 0, err
	}
	sym := im.Spec.Symbols[idx]
	addr := im.addr(sym.Value)
	if sym.Type == elf.STT_GNU_IFUNC {
		addr = ccall.Call0(addr, 0)
	}
	return addr, nil
}

// ExportKindOf returns whether the default version of name is a function
// or a data object, and false if the library does not export it.
func (s *Spec) ExportKindOf(name string) (ExportKind, bool) {
	idx, err := s.findExport(name, "")
	if err != nil {
		return 0, false
	}
	switch s.Symbols[idx].Type {
	case elf.STT_FUNC, elf.STT_GNU_IFUNC:
		return ExportFunc, true
	case elf.STT_OBJECT, elf.STT_COMMON:
		return ExportObject, true
	}
	return 0, false
}

// LookupReadsImage reports whether Lookup(name) reads the image's memory
// or runs its code, so that a caller keeping the image inaccessible must
// open it first: always for a system-loaded image (dlsym reads its symbol
// table), and for an IFUNC symbol (Lookup runs its resolver).
func (im *Image) LookupReadsImage(name string) bool {
	if im.Backend == BackendSystem {
		return true
	}
	idx, err := im.Spec.findExport(name, "")
	return err == nil && im.Spec.Symbols[idx].Type == elf.STT_GNU_IFUNC
}

// findExport returns the symbol index of an exported name; version ""
// selects the default version, preferring a global over a weak definition.
func (s *Spec) findExport(name, version string) (int, error) {
	s.exportsOnce.Do(s.indexExports)
	best := -1
	for _, i := range s.exports[name] {
		sym := s.Symbols[i]
		if version != "" {
			if sym.Version == version {
				return i, nil
			}
			continue
		}
		if sym.Hidden {
			continue
		}
		if best < 0 || (sym.Bind == elf.STB_GLOBAL && s.Symbols[best].Bind != elf.STB_GLOBAL) {
			best = i
		}
	}
	if best >= 0 {
		return best, nil
	}
	if version != "" {
		return 0, fmt.Errorf("%s: %s@%s: %w", s.Path, name, version, ErrSymbolNotFound)
	}
	return 0, fmt.Errorf("%s: %s: %w", s.Path, name, ErrSymbolNotFound)
}

// indexExports builds the map from exported names to symbol indexes.
func (s *Spec) indexExports() {
	s.exports = make(map[string][]int)
	for i, sym := range s.Symbols {
		// Absolute symbols have no address in the image to return.
		if sym.Defined && !sym.Abs && sym.Name != "" && (sym.Bind == elf.STB_GLOBAL || sym.Bind == elf.STB_WEAK) {
			s.exports[sym.Name] = append(s.exports[sym.Name], i)
		}
	}
}

// Close runs the library's finalisers (DT_FINI_ARRAY in reverse, then
// DT_FINI) and unmaps the whole image. The caller must make sure that no
// call into the library is running or will start. Close is idempotent.
func (im *Image) Close() error {
	im.closeOnce.Do(func() {
		if im.ownsSpec {
			defer im.Spec.Close()
		}
		if im.Backend == BackendSystem {
			im.closeErr = im.closeSystem()
			return
		}
		im.runFini()
		im.deregisterFrames()
		im.closeErr = im.release()
	})
	return im.closeErr
}

// release unmaps the reservation and closes the descriptors without
// running any library code.
func (im *Image) release() error {
	var errs []error
	im.deregisterFrames()
	if im.base != nil {
		if err := unix.MunmapPtr(im.base, im.Span); err != nil {
			errs = append(errs, fmt.Errorf("unmap %#x+%#x: %w", im.Base, im.Span, err))
		}
		im.base = nil
	}
	if im.memfd >= 0 {
		unix.Close(im.memfd)
		im.memfd = -1
	}
	if im.file != nil {
		im.file.Close()
		im.file = nil
	}
	// Dependencies go after the library that needs them, last one first.
	for i := len(im.Deps) - 1; i >= 0; i-- {
		closeDependency(im.Deps[i])
	}
	im.Deps = nil
	return errors.Join(errs...)
}
