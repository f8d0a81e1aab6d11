package trampoline

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"hash/adler32"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/decouple-go/decouple/internal/testlibs"
)

type zlibFuncs struct {
	compressBound, compress, uncompress, crc32, adler32 *Func
}

func openZlib(t *testing.T, opts *Options) (*Gate, zlibFuncs) {
	t.Helper()
	path := testlibs.SystemLibrary(t, "libz.so.1", "zlib1g")
	g, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { g.Close() })
	var z zlibFuncs
	for name, dst := range map[string]**Func{"compressBound": &z.compressBound, "compress": &z.compress,
		"uncompress": &z.uncompress, "crc32": &z.crc32, "adler32": &z.adler32} {
		if *dst, err = g.Func(name); err != nil {
			t.Fatal(err)
		}
	}
	return g, z
}

func ptr(b []byte) uintptr {
	if len(b) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&b[0]))
}

func (z zlibFuncs) roundTrip(t testing.TB, src []byte) {
	bound := z.compressBound.Call1(uintptr(len(src)))
	dst := make([]byte, bound)
	dstLen := uint64(len(dst))
	in := src
	if len(in) == 0 {
		in = []byte{0}
	}
	if rc := int32(z.compress.Call4(ptr(dst), uintptr(unsafe.Pointer(&dstLen)), ptr(in), uintptr(len(src)))); rc != 0 {
		t.Fatalf("compress(%d bytes) returned %d, want Z_OK", len(src), rc)
	}
	r, err := zlib.NewReader(bytes.NewReader(dst[:dstLen]))
	if err != nil {
		t.Fatalf("compress/zlib rejects the output of compress(%d bytes): %v", len(src), err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, src) {
		t.Fatalf("compress/zlib decoded %d bytes (err %v), want the %d input bytes", len(got), err, len(src))
	}

	back := make([]byte, len(src)+1)
	backLen := uint64(len(src))
	if rc := int32(z.uncompress.Call4(ptr(back), uintptr(unsafe.Pointer(&backLen)), ptr(dst), uintptr(dstLen))); rc != 0 {
		t.Fatalf("uncompress returned %d, want Z_OK", rc)
	}
	if !bytes.Equal(back[:backLen], src) {
		t.Fatalf("uncompress gave %d bytes, want the %d input bytes", backLen, len(src))
	}
	runtime.KeepAlive(dst)
	runtime.KeepAlive(back)
}

func TestZlibRoundTrip(t *testing.T) {
	for _, mode := range []Mode{ModeOpen, ModeProtect, ModeUnmap} {
		t.Run(mode.String(), func(t *testing.T) {
			_, z := openZlib(t, &Options{Mode: mode})
			rng := rand.New(rand.NewPCG(1, 2))
			for _, size := range []int{0, 1, 64 << 10, 10 << 20} {
				src := make([]byte, size)
				for i := range src {
					src[i] = byte(rng.IntN(16)) // compressible but not trivial
				}
				z.roundTrip(t, src)
			}
		})
	}
}

func TestZlibChecksums(t *testing.T) {
	_, z := openZlib(t, &Options{Mode: ModeProtect})
	data := []byte(strings.Repeat("checksums through a gate ", 4000))
	if got, want := uint32(z.crc32.Call3(0, ptr(data), uintptr(len(data)))), crc32.ChecksumIEEE(data); got != want {
		t.Errorf("crc32 = %#x, want %#x (hash/crc32)", got, want)
	}
	if got, want := uint32(z.adler32.Call3(1, ptr(data), uintptr(len(data)))), adler32.Checksum(data); got != want {
		t.Errorf("adler32 = %#x, want %#x (hash/adler32)", got, want)
	}
}

func TestProtectStats(t *testing.T) {
	g, z := openZlib(t, &Options{Mode: ModeProtect})
	before := g.Stats()
	for range 10 {
		z.crc32.Call3(0, 0, 0)
	}
	s := g.Stats()
	if got := s.Calls - before.Calls; got != 10 {
		t.Errorf("Calls grew by %d, want 10", got)
	}
	if got := s.Windows - before.Windows; got != 10 {
		t.Errorf("Windows grew by %d, want 10 (one per outermost call)", got)
	}
	if s.Exposure <= 0 || s.Exposure >= 1 {
		t.Errorf("Exposure = %v, want strictly between 0 and 1", s.Exposure)
	}
}

// The child re-executes the test binary to read the library's first code
// byte between calls; in protect and unmap modes that must kill it with
// SIGSEGV.
const childEnv = "DECOUPLE_TRAMPOLINE_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(childReadCode(mode))
	}
	os.Exit(m.Run())
}

func childReadCode(modeName string) int {
	mode, err := ParseMode(modeName)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	g, err := Open(os.Getenv("DECOUPLE_LIB"), &Options{Mode: mode})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	f, err := g.Func("crc32")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	f.Call3(0, 0, 0)
	info := g.Image()
	fmt.Printf("range %#x %#x\n", info.Start, info.End)
	// Read the code through an unsafe pointer, outside any call.
	addr := (*f.gate.cur.Load().addrs.Load())[f.index]
	b := *(*byte)(unsafe.Add(nil, addr))
	fmt.Printf("read %#x\n", b)
	return 0
}

func TestReadBetweenCalls(t *testing.T) {
	lib := testlibs.SystemLibrary(t, "libz.so.1", "zlib1g")
	for _, tc := range []struct {
		mode  Mode
		fault bool
	}{{ModeOpen, false}, {ModeProtect, true}, {ModeUnmap, true}} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+tc.mode.String(), "DECOUPLE_LIB="+lib)
			out, err := cmd.CombinedOutput()
			var start, end, fault uintptr
			if _, err := fmt.Sscanf(string(out), "range %v %v\n", &start, &end); err != nil {
				t.Fatalf("child in mode %v printed no range: %q", tc.mode, out)
			}
			if !tc.fault {
				if err != nil || !strings.Contains(string(out), "\nread ") {
					t.Fatalf("child in mode %v: err %v, output %q; want a successful read", tc.mode, err, out)
				}
				return
			}
			// The Go runtime turns the SIGSEGV into a fatal error that
			// names the signal and the faulting address.
			if err == nil {
				t.Fatalf("child in mode %v read the code between calls: %q; want SIGSEGV", tc.mode, out)
			}
			if !strings.Contains(string(out), "signal SIGSEGV") {
				t.Fatalf("child in mode %v failed with %v but not with SIGSEGV: %q", tc.mode, err, out)
			}
			i := strings.Index(string(out), "unexpected fault address ")
			if i < 0 {
				t.Fatalf("child in mode %v: no fault address in %q", tc.mode, out)
			}
			if _, err := fmt.Sscanf(string(out[i:]), "unexpected fault address %v", &fault); err != nil {
				t.Fatalf("child in mode %v: parse fault address: %v", tc.mode, err)
			}
			if fault < start || fault >= end {
				t.Fatalf("fault address %#x lies outside the library's range %#x-%#x", fault, start, end)
			}
		})
	}
}

func TestConcurrentProtect(t *testing.T) {
	for _, mode := range []Mode{ModeProtect, ModeUnmap} {
		t.Run(mode.String(), func(t *testing.T) {
			g, z := openZlib(t, &Options{Mode: mode})
			data := bytes.Repeat([]byte("concurrent"), 100)
			want := crc32.ChecksumIEEE(data)
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 2000 {
						if got := uint32(z.crc32.Call3(0, ptr(data), uintptr(len(data)))); got != want {
							errs <- fmt.Errorf("crc32 = %#x, want %#x", got, want)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if s := g.Stats(); s.Calls != 16000 || s.InFlight != 0 {
				t.Errorf("Calls = %d, InFlight = %d; want 16000 and 0", s.Calls, s.InFlight)
			}
		})
	}
}
