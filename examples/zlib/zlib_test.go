//go:build linux && amd64

package zlib

import (
	"bytes"
	"compress/zlib"
	"hash/adler32"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"regexp"
	"testing"
	"unsafe"

	"github.com/decouple-go/decouple/trampoline"
)

// Return codes from zlib.h.
const (
	zOK        = 0
	zBufError  = -5
	zDataError = -3
)

// openProtected opens the library this package was generated from with a
// gate that makes it inaccessible between calls.
func openProtected(t *testing.T) *Lib {
	t.Helper()
	if _, err := os.Stat(DefaultPath); err != nil {
		t.Skipf("zlib is not installed: %v", err)
	}
	l, err := Open("", &trampoline.Options{Mode: trampoline.ModeProtect})
	if err != nil {
		t.Fatalf("Open(%q, ModeProtect): %v", DefaultPath, err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// testInput returns n bytes that are half text, which compresses well, and
// half random, which does not.
func testInput(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	b := bytes.Repeat([]byte("decouple calls zlib through a gate. "), n/72+1)[:n/2]
	for len(b) < n {
		b = append(b, byte(rng.Uint32()))
	}
	return b
}

// ptr returns a pointer to the first byte of b, or nil if b is empty.
func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func TestCompressRoundTrip(t *testing.T) {
	l := openProtected(t)
	for _, n := range []int{1, 100, 64 << 10, 1 << 20} {
		input := testInput(n)

		bound := l.CompressBound(uint64(len(input)))
		if bound < uint64(len(input)) {
			t.Fatalf("CompressBound(%d) = %d, want at least %d", len(input), bound, len(input))
		}
		compressed := make([]byte, bound)
		destLen := uint64(len(compressed))
		if rc := l.Compress(ptr(compressed), unsafe.Pointer(&destLen), ptr(input), uint64(len(input))); rc != zOK {
			t.Fatalf("Compress(%d bytes) = %d, want Z_OK", n, rc)
		}
		compressed = compressed[:destLen]

		// Go's compress/zlib reads what the C library wrote.
		r, err := zlib.NewReader(bytes.NewReader(compressed))
		if err != nil {
			t.Fatalf("compress/zlib rejects Compress output of %d bytes: %v", n, err)
		}
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("compress/zlib fails on Compress output of %d bytes: %v", n, err)
		}
		if !bytes.Equal(got, input) {
			t.Fatalf("compress/zlib decoded %d bytes differing from the %d input bytes", len(got), n)
		}

		// The C library reads what Go's compress/zlib wrote.
		var buf bytes.Buffer
		w := zlib.NewWriter(&buf)
		if _, err := w.Write(input); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		out := make([]byte, len(input))
		outLen := uint64(len(out))
		if rc := l.Uncompress(ptr(out), unsafe.Pointer(&outLen), ptr(buf.Bytes()), uint64(buf.Len())); rc != zOK {
			t.Fatalf("Uncompress(%d bytes from compress/zlib) = %d, want Z_OK", buf.Len(), rc)
		}
		if outLen != uint64(len(input)) || !bytes.Equal(out, input) {
			t.Fatalf("Uncompress produced %d bytes differing from the %d input bytes", outLen, n)
		}
	}

	st := l.Gate().Stats()
	if st.Mode != trampoline.ModeProtect {
		t.Errorf("gate mode = %v, want %v", st.Mode, trampoline.ModeProtect)
	}
	if st.Calls < 12 {
		t.Errorf("gate counted %d calls, want at least the 12 this test made", st.Calls)
	}
	if st.Mprotects == 0 {
		t.Errorf("gate made no mprotect calls in ModeProtect")
	}
}

// TestUncompressErrors checks that negative int results keep their sign.
func TestUncompressErrors(t *testing.T) {
	l := openProtected(t)
	input := testInput(10000)
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(input)
	w.Close()

	small := make([]byte, 100)
	smallLen := uint64(len(small))
	if rc := l.Uncompress(ptr(small), unsafe.Pointer(&smallLen), ptr(buf.Bytes()), uint64(buf.Len())); rc != zBufError {
		t.Errorf("Uncompress into %d bytes = %d, want Z_BUF_ERROR (%d)", len(small), rc, zBufError)
	}

	corrupt := bytes.Clone(buf.Bytes())
	corrupt[0] = 0xff // invalid compression method in the zlib header
	out := make([]byte, len(input))
	outLen := uint64(len(out))
	if rc := l.Uncompress(ptr(out), unsafe.Pointer(&outLen), ptr(corrupt), uint64(len(corrupt))); rc != zDataError {
		t.Errorf("Uncompress of a corrupt header = %d, want Z_DATA_ERROR (%d)", rc, zDataError)
	}
}

func TestChecksums(t *testing.T) {
	l := openProtected(t)
	for _, n := range []int{0, 1, 3, 100, 5552, 1 << 20} {
		data := testInput(n)

		// With a NULL buffer both functions return their initial value.
		crc := l.Crc32(l.Crc32(0, nil, 0), ptr(data), uint32(len(data)))
		if want := uint64(crc32.ChecksumIEEE(data)); crc != want {
			t.Errorf("crc32 of %d bytes = %#x, want %#x from hash/crc32", n, crc, want)
		}
		if crcZ := l.Crc32_z(0, ptr(data), uint64(len(data))); crcZ != crc {
			t.Errorf("crc32_z of %d bytes = %#x, want %#x as crc32", n, crcZ, crc)
		}

		adler := l.Adler32(l.Adler32(0, nil, 0), ptr(data), uint32(len(data)))
		if want := uint64(adler32.Checksum(data)); adler != want {
			t.Errorf("adler32 of %d bytes = %#x, want %#x from hash/adler32", n, adler, want)
		}
	}
}

// TestZlibVersion reads the string zlibVersion returns, which lies in the
// library's read-only data and so is accessible only inside a call window.
func TestZlibVersion(t *testing.T) {
	l := openProtected(t)
	header, err := os.ReadFile("/usr/include/zlib.h")
	if err != nil {
		t.Skipf("zlib.h is not installed: %v", err)
	}
	m := regexp.MustCompile(`(?m)^#define ZLIB_VERSION "([^"]+)"`).FindSubmatch(header)
	if m == nil {
		t.Fatalf("zlib.h defines no ZLIB_VERSION")
	}
	var version string
	l.Gate().Hold(func() {
		version = l.Gate().GoString(uintptr(l.ZlibVersion()))
	})
	if version != string(m[1]) {
		t.Errorf("zlibVersion() = %q, want %q from zlib.h", version, m[1])
	}
}
