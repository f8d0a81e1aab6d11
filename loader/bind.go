package loader

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/decouple-go/decouple/internal/ccall"
)

// The system loader's entry points, found once through purego.
var system struct {
	once    sync.Once
	err     error
	dlvsym  uintptr
	dlsym   uintptr
	dlinfo  uintptr
	environ uintptr // address of libc's environ variable
}

func systemLoader() error {
	system.once.Do(func() {
		libc, err := purego.Dlopen("libc.so.6", purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			system.err = fmt.Errorf("open the C library: %w", err)
			return
		}
		for _, s := range []struct {
			name string
			addr *uintptr
		}{{"dlvsym", &system.dlvsym}, {"dlsym", &system.dlsym}, {"dlinfo", &system.dlinfo}, {"environ", &system.environ}} {
			if *s.addr, err = purego.Dlsym(libc, s.name); err != nil {
				system.err = fmt.Errorf("find %s in the C library: %w", s.name, err)
				return
			}
		}
	})
	return system.err
}

// bindDependencies opens every DT_NEEDED library: those named in
// opts.Isolate with the own loader, each in a range of its own, and the
// rest through the system loader, which shares one copy of each with the
// rest of the process. chain lists the libraries being loaded above this
// one, to detect DT_NEEDED cycles.
func (im *Image) bindDependencies(opts *Options, chain []string) error {
	if err := systemLoader(); err != nil {
		return err
	}
	for _, name := range im.Spec.Needed {
		if opts.isolated(name) {
			dep, err := im.loadIsolated(name, opts, chain)
			if err != nil {
				return err
			}
			im.Deps = append(im.Deps, Dependency{Name: name, How: "own loader", Path: dep.Spec.Path, Image: dep})
			continue
		}
		h, err := systemDependency(name)
		if err != nil {
			return fmt.Errorf("dependency %s: %w", name, err)
		}
		im.Deps = append(im.Deps, Dependency{Name: name, How: "system loader", handle: h})
	}
	return nil
}

// isolated reports whether the dependency name is to be loaded with the
// own loader.
func (o *Options) isolated(name string) bool {
	for _, n := range o.Isolate {
		if n == name || n == "*" {
			return true
		}
	}
	return false
}

// loadIsolated finds the dependency name next to the library, then in
// LibraryDirs, and loads it with the own loader.
func (im *Image) loadIsolated(name string, opts *Options, chain []string) (*Image, error) {
	for _, c := range chain {
		if c == name {
			return nil, formatErrorf(im.Spec.Path, -1, "DT_NEEDED cycle: %s -> %s", strings.Join(chain, " -> "), name)
		}
	}
	path, err := findDependency(name, filepath.Dir(im.Spec.Path))
	if err != nil {
		return nil, fmt.Errorf("dependency %s: %w", name, err)
	}
	spec, err := Parse(path)
	if err != nil {
		return nil, fmt.Errorf("dependency %s: %w", name, err)
	}
	if err := spec.CheckOwnLoader(); err != nil {
		spec.Close()
		return nil, fmt.Errorf("dependency %s cannot be isolated: %w", name, err)
	}
	dep, err := load(spec, opts, chain)
	if err != nil {
		spec.Close()
		return nil, fmt.Errorf("dependency %s: %w", name, err)
	}
	dep.ownsSpec = true
	return dep, nil
}

// LibraryDirs are the folders searched for a dependency loaded with the
// own loader when it is not next to the library that needs it.
var LibraryDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

func findDependency(name, dir string) (string, error) {
	if strings.ContainsRune(name, '/') {
		return name, nil
	}
	for _, d := range append([]string{dir}, LibraryDirs...) {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found next to the library or in %v", name, LibraryDirs)
}

// systemDeps contains the system loader's handles of dependencies, opened
// once per process and never closed. Most are the C library and its
// siblings, which stay loaded anyway. Reopening one that was closed (libm,
// say) would cost a full load for every image that needs it.
var systemDeps struct {
	mu      sync.Mutex
	handles map[string]uintptr
}

func systemDependency(name string) (uintptr, error) {
	systemDeps.mu.Lock()
	defer systemDeps.mu.Unlock()
	if h, ok := systemDeps.handles[name]; ok {
		return h, nil
	}
	h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return 0, err
	}
	if systemDeps.handles == nil {
		systemDeps.handles = make(map[string]uintptr)
	}
	systemDeps.handles[name] = h
	return h, nil
}

// closeDependency releases a dependency of an image being unloaded:
// isolated ones are unloaded with it, system ones stay loaded.
func closeDependency(d Dependency) {
	if d.Image != nil {
		d.Image.Close()
	}
}

// cstring returns a NUL-terminated copy of s. The caller keeps the slice
// alive across the C call.
func cstring(s string) []byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b
}

// resolveImport finds the address of an undefined symbol in the image's
// dependencies. A versioned import is looked up with dlvsym in the library
// that VERNEED names for that version. An unversioned one is looked up with
// dlsym in each dependency in DT_NEEDED order. It returns 0 without error for a weak
// symbol that nothing defines.
func (im *Image) resolveImport(sym Symbol) (uintptr, error) {
	for _, d := range im.Deps {
		if d.Image == nil || (sym.Library != "" && d.Name != sym.Library) {
			continue
		}
		if addr, err := d.Image.LookupVersion(sym.Name, sym.Version); err == nil {
			return addr, nil
		}
	}

	name := cstring(sym.Name)
	defer runtime.KeepAlive(name)
	if sym.Version != "" {
		version := cstring(sym.Version)
		defer runtime.KeepAlive(version)
		for _, d := range im.Deps {
			if d.handle == 0 || (sym.Library != "" && d.Name != sym.Library) {
				continue
			}
			addr := ccall.Call3(system.dlvsym, 0, d.handle, uintptr(unsafe.Pointer(&name[0])), uintptr(unsafe.Pointer(&version[0])))
			if addr != 0 {
				return addr, nil
			}
		}
	} else {
		for _, d := range im.Deps {
			if d.handle == 0 {
				continue
			}
			if addr := ccall.Call2(system.dlsym, 0, d.handle, uintptr(unsafe.Pointer(&name[0]))); addr != 0 {
				return addr, nil
			}
		}
	}
	if sym.Bind == elf.STB_WEAK {
		return 0, nil
	}
	if sym.Version != "" {
		return 0, fmt.Errorf("import %s@%s (from %s): %w in %v", sym.Name, sym.Version, sym.Library, ErrSymbolNotFound, im.Spec.Needed)
	}
	return 0, fmt.Errorf("import %s: %w in %v", sym.Name, ErrSymbolNotFound, im.Spec.Needed)
}
