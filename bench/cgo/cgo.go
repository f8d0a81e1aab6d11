// Package cgobench calls C functions through cgo. Its benchmarks compare
// that baseline with purego and with decouple's gates in one run, so that
// the ratios in docs/benchmarks-gate.md come from the same process. It is a
// module of its own because the main module builds without cgo.
package cgobench

/*
#cgo LDFLAGS: -lz
#include <dlfcn.h>
#include <stdlib.h>
#include <zlib.h>

// lookup opens the library at path with the system dynamic loader and
// returns the address of the symbol name, or NULL with *err set.
static void *lookup(const char *path, const char *name, const char **err)
{
	void *h, *fn;

	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		*err = dlerror();
		return NULL;
	}
	fn = dlsym(h, name);
	if (fn == NULL)
		*err = dlerror();
	return fn;
}

static long call_long(void *fn, long x)
{
	return ((long (*)(long))fn)(x);
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Lookup opens the shared library at path with dlopen and returns the
// address of the function name in it. The library stays loaded.
func Lookup(path, name string) (unsafe.Pointer, error) {
	cpath, cname := C.CString(path), C.CString(name)
	defer C.free(unsafe.Pointer(cpath))
	defer C.free(unsafe.Pointer(cname))
	var cerr *C.char
	fn := C.lookup(cpath, cname, &cerr)
	if fn == nil {
		return nil, fmt.Errorf("look up %s in %s: %s", name, path, C.GoString(cerr))
	}
	return fn, nil
}

// CallLong calls fn, a C function long (*)(long), with x.
func CallLong(fn unsafe.Pointer, x int64) int64 {
	return int64(C.call_long(fn, C.long(x)))
}

// CRC32 returns zlib's crc32(crc, p, len(p)), called through cgo with the
// program linked against -lz. p must not be empty or longer than 4 GiB - 1,
// the range of zlib's uInt length.
func CRC32(crc uint64, p []byte) uint64 {
	return uint64(C.crc32(C.uLong(crc), (*C.Bytef)(unsafe.Pointer(&p[0])), C.uInt(len(p))))
}
