package trampoline

import (
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/decouple-go/decouple/internal/ccall"
)

var libcCopy struct {
	once            sync.Once
	strnlen, memcpy uintptr
	err             error
}

func copyFuncs() error {
	libcCopy.once.Do(func() {
		h, err := purego.Dlopen("libc.so.6", purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			libcCopy.strnlen, err = purego.Dlsym(h, "strnlen")
		}
		if err == nil {
			libcCopy.memcpy, err = purego.Dlsym(h, "memcpy")
		}
		libcCopy.err = err
	})
	return libcCopy.err
}

// MaxString bounds the length GoString reads, so that a pointer to
// unterminated memory cannot make it copy without end.
const MaxString = 1 << 20

// readLimit returns how many bytes from p GoString may read: up to the end
// of the run of contiguous regions holding p when p points into the image,
// else MaxString. A pointer outside the image (the C heap) is trusted.
func (im *image) readLimit(p uintptr) uintptr {
	end := uintptr(0)
	for _, r := range im.regions {
		switch {
		case end == 0 && p >= r.Addr && p < r.Addr+r.Size:
			end = r.Addr + r.Size
		case end != 0 && r.Addr == end:
			end = r.Addr + r.Size
		}
	}
	if end == 0 {
		return MaxString
	}
	return min(MaxString, end-p)
}

// GoString copies the NUL-terminated C string at p, which may point into
// the library's memory, inside a call window of the current image, so that
// it works in every mode: between calls those pages are inaccessible. It
// returns "" for a NULL pointer. It stops after MaxString bytes, and for a
// pointer into the image at the end of the image's mapped pages. Any other
// invalid pointer faults, as it would in C.
func (g *Gate) GoString(p uintptr) string {
	if p == 0 {
		return ""
	}
	if err := copyFuncs(); err != nil {
		panic("trampoline: " + err.Error())
	}
	im := g.enter()
	defer im.w.exit()
	n := ccall.Call2(libcCopy.strnlen, im.pkru, p, im.readLimit(p))
	if n == 0 {
		return ""
	}
	buf := make([]byte, n)
	ccall.Call3(libcCopy.memcpy, im.pkru, uintptr(unsafe.Pointer(&buf[0])), p, n)
	return string(buf)
}

// CopyOut copies len(dst) bytes from src, which may point into the
// library's memory, inside a call window of the current image.
func (g *Gate) CopyOut(dst []byte, src uintptr) {
	if len(dst) == 0 {
		return
	}
	if err := copyFuncs(); err != nil {
		panic("trampoline: " + err.Error())
	}
	im := g.enter()
	defer im.w.exit()
	ccall.Call3(libcCopy.memcpy, im.pkru, uintptr(unsafe.Pointer(&dst[0])), src, uintptr(len(dst)))
}

// Hold keeps a call window of the current image open while fn runs. The
// image cannot be unloaded meanwhile, even by a swap, so fn can call a
// function that returns a pointer into the library's memory and copy the
// data out before the pointer goes stale:
//
//	var v string
//	g.Hold(func() { v = g.GoString(version.Call0()) })
//
// Calls that fn makes still enter the gate's current image, which is the
// new one after a concurrent swap. The held image stays accessible until
// Hold returns, and so does every image that a swap retires meanwhile, so
// pointers those calls return stay readable too. A swap during a long
// Hold therefore reports SwapReport.Drained false, and the retired images
// are unloaded once the Hold returns.
func (g *Gate) Hold(fn func()) {
	im := g.enter()
	defer im.w.exit()
	fn()
}
