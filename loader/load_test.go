package loader

import (
	"bytes"
	"compress/zlib"
	"io"
	"testing"
	"unsafe"

	"github.com/decouple-go/decouple/internal/ccall"
	"github.com/decouple-go/decouple/internal/testlibs"
)

func TestLoadZlibCompress(t *testing.T) {
	path := testlibs.SystemLibrary(t, "libz.so.1", "zlib1g")
	im, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	defer im.Close()

	compressBound, err := im.Lookup("compressBound")
	if err != nil {
		t.Fatal(err)
	}
	compress, err := im.Lookup("compress")
	if err != nil {
		t.Fatal(err)
	}
	src := bytes.Repeat([]byte("decouple zlib "), 1000)
	bound := ccall.Call1(compressBound, 0, uintptr(len(src)))
	dst := make([]byte, bound)
	dstLen := uint64(len(dst))
	rc := ccall.Call4(compress, 0, uintptr(unsafe.Pointer(&dst[0])), uintptr(unsafe.Pointer(&dstLen)), uintptr(unsafe.Pointer(&src[0])), uintptr(len(src)))
	if int32(rc) != 0 {
		t.Fatalf("compress returned %d, want Z_OK (0)", int32(rc))
	}
	r, err := zlib.NewReader(bytes.NewReader(dst[:dstLen]))
	if err != nil {
		t.Fatalf("compress/zlib cannot read the output: %v", err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !bytes.Equal(got, src) {
		t.Fatalf("round trip gave %d bytes, want the %d input bytes", len(got), len(src))
	}
}
