package loader

import (
	"unsafe"

	"github.com/decouple-go/decouple/internal/ccall"
)

// emptyArgv is the argument vector initialisers receive: argc 0 and an
// empty, NULL-terminated argv. It is a package variable so that a library
// that keeps the pointer keeps valid memory.
var emptyArgv [1]uintptr

// runInit calls DT_INIT and then each DT_INIT_ARRAY entry, with the
// arguments glibc passes: argc, argv and the process environment.
func (im *Image) runInit() {
	spec := im.Spec
	first := alignDown(spec.Segments[0].Vaddr, pageSize)
	argv := uintptr(unsafe.Pointer(&emptyArgv[0]))
	envp := **(**uintptr)(unsafe.Pointer(&system.environ))
	if spec.Init != 0 {
		ccall.Call3(im.addr(spec.Init), 0, 0, argv, envp)
	}
	for _, slot := range spec.InitArray {
		fn := *(*uintptr)(unsafe.Add(im.base, slot-first))
		if fn == 0 || fn == ^uintptr(0) {
			continue
		}
		ccall.Call3(fn, 0, 0, argv, envp)
	}
}

// runFini calls each DT_FINI_ARRAY entry in reverse order, then DT_FINI.
// The regions must be accessible.
func (im *Image) runFini() {
	if im.base == nil {
		return
	}
	spec := im.Spec
	first := alignDown(spec.Segments[0].Vaddr, pageSize)
	for i := len(spec.FiniArray) - 1; i >= 0; i-- {
		fn := *(*uintptr)(unsafe.Add(im.base, spec.FiniArray[i]-first))
		if fn == 0 || fn == ^uintptr(0) {
			continue
		}
		ccall.Call0(fn, 0)
	}
	if spec.Fini != 0 {
		ccall.Call0(im.addr(spec.Fini), 0)
	}
}
