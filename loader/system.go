package loader

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"
	"golang.org/x/sys/unix"

	"github.com/decouple-go/decouple/internal/ccall"
)

// Backend selects who maps a library.
type Backend int

const (
	// BackendAuto uses the own loader and falls back to the system loader
	// when the own loader does not support a feature of the library. The
	// image records the reason in Fallback.
	BackendAuto Backend = iota
	// BackendOwn uses only the own loader.
	BackendOwn
	// BackendSystem maps the library with the system's dlopen. The gates
	// still protect its segments, but the library is placed where the
	// system loader puts it and shares its symbol scope rules.
	BackendSystem
)

func (b Backend) String() string {
	switch b {
	case BackendAuto:
		return "auto"
	case BackendOwn:
		return "own"
	case BackendSystem:
		return "system"
	}
	return fmt.Sprintf("Backend(%d)", int(b))
}

// ParseBackend returns the backend named s ("auto", "own", "system").
func ParseBackend(s string) (Backend, error) {
	for b := BackendAuto; b <= BackendSystem; b++ {
		if b.String() == s {
			return b, nil
		}
	}
	return 0, fmt.Errorf("unknown loader backend %q: use auto, own or system", s)
}

// Loadable reports why neither backend loads the library, or nil: an
// executable, or a library asking for an executable stack, which glibc
// would grant by making every thread stack executable.
func (s *Spec) Loadable() error {
	if f := s.Features; f.Executable || f.ExecStack {
		return s.CheckOwnLoader()
	}
	return nil
}

// ChooseBackend returns the backend BackendAuto would use for the spec,
// and the reason when that is the system loader. Check Loadable first.
func (s *Spec) ChooseBackend() (Backend, string) {
	if err := s.CheckOwnLoader(); err != nil {
		return BackendSystem, err.Error()
	}
	return BackendOwn, ""
}

// fileID identifies a file by device and inode, as the system loader does.
type fileID struct{ dev, ino uint64 }

func fileIdentity(f *os.File) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fileID{}, err
	}
	return fileID{dev: st.Dev, ino: st.Ino}, nil
}

// fileSet records the files that system-loaded images of this package
// hold, so that a second load of one is rejected before dlopen.
type fileSet struct {
	mu    sync.Mutex
	files map[fileID]bool
}

var systemImages = fileSet{files: map[fileID]bool{}}

// add records id and reports whether it was new.
func (s *fileSet) add(id fileID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files[id] {
		return false
	}
	s.files[id] = true
	return true
}

func (s *fileSet) remove(id fileID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.files, id)
}

// rtldNoload is glibc's RTLD_NOLOAD: return a handle only if the object
// is loaded already.
const rtldNoload = 0x4

// The link_map of glibc starts with l_addr, the difference between the
// addresses in the file and in memory.
const rtldDILinkmap = 2

// loadSystem maps spec's library with dlopen. It passes /proc/self/fd/N of
// the file it opened, so that the system loader maps exactly the file that
// was parsed and admitted. A path would let glibc return an earlier object
// loaded under the same name.
func loadSystem(spec *Spec, reason string) (*Image, error) {
	start := time.Now()
	if err := spec.Loadable(); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := systemLoader(); err != nil {
		return nil, err
	}
	file, err := spec.openFile()
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", spec.Path, err)
	}
	im := &Image{Spec: spec, Backend: BackendSystem, Fallback: reason, memfd: -1, file: file}

	// The system loader keeps one copy of a file per process, and dlopen
	// of a loaded file reads that copy's pages, which a gate may have
	// sealed. A file that an image of ours holds already is rejected
	// without calling dlopen.
	id, err := fileIdentity(file)
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("load %s: %w", spec.Path, err)
	}
	if !systemImages.add(id) {
		file.Close()
		return nil, notSupported(spec.Path, "a second system-loader image of one file", "the system loader keeps one copy of a file per process, and another image holds it already; load a copy of the file under another name, or use the own loader")
	}
	im.fileID = id

	fdPath := fmt.Sprintf("/proc/self/fd/%d", file.Fd())
	// A file that other code in the process loaded is returned as that
	// same copy: the image is then shared, and sealing it would break the
	// other users.
	if prev, err := purego.Dlopen(fdPath, purego.RTLD_NOW|rtldNoload); err == nil && prev != 0 {
		im.Shared = true
		purego.Dlclose(prev)
	}
	h, err := purego.Dlopen(fdPath, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		systemImages.remove(id)
		file.Close()
		return nil, fmt.Errorf("load %s with the system loader: %w", spec.Path, err)
	}
	im.handle = h

	var linkMap uintptr
	if rc := ccall.Call3(system.dlinfo, 0, h, rtldDILinkmap, uintptr(unsafe.Pointer(&linkMap))); rc != 0 || linkMap == 0 {
		im.closeSystem()
		return nil, fmt.Errorf("load %s: dlinfo(RTLD_DI_LINKMAP) failed", spec.Path)
	}
	lAddr := **(**uintptr)(unsafe.Pointer(&linkMap))
	first := alignDown(spec.Segments[0].Vaddr, pageSize)
	im.Base = lAddr + uintptr(first)
	im.Span = uintptr(spec.Span)
	im.base = *(*unsafe.Pointer)(unsafe.Pointer(&im.Base))
	im.systemRegions()
	im.LoadTime = time.Since(start)
	return im, nil
}

// systemRegions describes the segments the system loader mapped, with
// the protections it gave them (PT_GNU_RELRO read-only).
func (im *Image) systemRegions() {
	first := alignDown(im.Spec.Segments[0].Vaddr, pageSize)
	for _, seg := range im.Spec.Segments {
		start := alignDown(seg.Vaddr, pageSize)
		end := alignUp(seg.Vaddr+seg.Memsz, pageSize)
		im.addRegion(Region{Addr: im.Base + uintptr(start-first), Size: uintptr(end - start), Prot: protFlags(seg.Flags), fd: -1})
	}
	im.markKeepReadable()
	if r := im.Spec.Relro; r[1] > r[0] {
		im.markReadOnly(im.Base+uintptr(r[0]-first), im.Base+uintptr(r[1]-first))
	}
}

// lookupSystem finds an export of a system-loaded image with dlvsym or
// dlsym on its handle.
func (im *Image) lookupSystem(name, version string) (uintptr, error) {
	if _, err := im.Spec.findExport(name, version); err != nil {
		return 0, err
	}
	cname := cstring(name)
	defer runtime.KeepAlive(cname)
	var addr uintptr
	if version != "" {
		cver := cstring(version)
		defer runtime.KeepAlive(cver)
		addr = ccall.Call3(system.dlvsym, 0, im.handle, uintptr(unsafe.Pointer(&cname[0])), uintptr(unsafe.Pointer(&cver[0])))
	} else {
		addr = ccall.Call2(system.dlsym, 0, im.handle, uintptr(unsafe.Pointer(&cname[0])))
	}
	if addr == 0 {
		return 0, fmt.Errorf("%s: %s: %w", im.Spec.Path, name, ErrSymbolNotFound)
	}
	return addr, nil
}

// closeSystem runs the library's finalisers through dlclose. A library
// marked DF_1_NODELETE stays mapped, as the system loader decides.
func (im *Image) closeSystem() error {
	var err error
	defer systemImages.remove(im.fileID)
	if im.handle != 0 {
		if e := purego.Dlclose(im.handle); e != nil {
			err = fmt.Errorf("dlclose %s: %w", im.Spec.Path, e)
		}
		im.handle = 0
	}
	if im.file != nil {
		im.file.Close()
		im.file = nil
	}
	return errors.Join(err)
}

// markKeepReadable lists the pages that must stay readable between calls
// when the system loader loaded the image. glibc copies the PT_TLS
// initialization image into every new thread, outside any call. And every
// later dlopen, of any library, reads the headers, dynamic section and
// dynamic strings of each object already loaded (to match a name against
// its SONAME, for one), as does dl_iterate_phdr, which unwinders call.
func (im *Image) markKeepReadable() {
	ranges := slices.Clone(im.Spec.sysReads)
	if t := im.Spec.TLS; t != nil && t.Filesz > 0 {
		ranges = append(ranges, [2]uint64{t.Vaddr, t.Vaddr + t.Filesz})
	}
	first := alignDown(im.Spec.Segments[0].Vaddr, pageSize)
	var pages [][2]uint64
	for _, r := range ranges {
		lo, hi := alignDown(r[0], pageSize), alignUp(r[1], pageSize)
		if lo < first || hi <= lo || hi-first > im.Spec.Span {
			continue // outside the image: nothing there to keep
		}
		pages = append(pages, [2]uint64{lo, hi})
	}
	slices.SortFunc(pages, func(a, b [2]uint64) int { return cmp.Compare(a[0], b[0]) })
	im.keepReadable = nil
	for _, p := range pages {
		n := len(im.keepReadable)
		lo, hi := im.Base+uintptr(p[0]-first), im.Base+uintptr(p[1]-first)
		if n > 0 && lo <= im.keepReadable[n-1][1] {
			im.keepReadable[n-1][1] = max(im.keepReadable[n-1][1], hi)
			continue
		}
		im.keepReadable = append(im.keepReadable, [2]uintptr{lo, hi})
	}
}
