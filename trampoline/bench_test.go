package trampoline

import (
	"fmt"
	"hash/crc32"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"
	"golang.org/x/sys/unix"

	"github.com/decouple-go/decouple/internal/testlibs"
)

// These benchmarks cover the routes that need no cgo. bench/cgo, a module
// of its own, runs the same workloads with a cgo route added, so that the
// ratios to cgo come from one run. docs/benchmarks-gate.md records them.

// benchWorkload is one C function and the arguments every benchmark
// iteration passes to it.
type benchWorkload struct {
	lib, symbol string
	args        []uintptr // one or three integer or pointer arguments
	want        uintptr   // the result, checked once before timing
	bytes       int64     // bytes processed per call, for b.SetBytes
	keep        []byte    // the buffer args point into
}

func labsWorkload(lib string) benchWorkload {
	return benchWorkload{lib: lib, symbol: "tl_labs", args: []uintptr{int64Arg(-5)}, want: 5}
}

// crc32Workload returns the zlib call crc32(0, buf, size) over size bytes.
func crc32Workload(lib string, size int) benchWorkload {
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(i * 31)
	}
	return benchWorkload{lib: lib, symbol: "crc32",
		args:  []uintptr{0, uintptr(unsafe.Pointer(&buf[0])), uintptr(size)},
		want:  uintptr(crc32.ChecksumIEEE(buf)),
		bytes: int64(size), keep: buf}
}

// sizeName returns 64B, 4KiB or 1MiB for the benchmark names.
func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// gateRoutes are the gate configurations each workload runs under.
var gateRoutes = []struct {
	name string
	opts Options
}{
	{"gate-open", Options{Mode: ModeOpen}},
	{"gate-protect", Options{Mode: ModeProtect}},
	{"gate-protect-linger1ms", Options{Mode: ModeProtect, Linger: time.Millisecond}},
	{"gate-unmap", Options{Mode: ModeUnmap}},
	{"gate-keys", Options{Mode: ModeKeys}},
}

func BenchmarkCall(b *testing.B) {
	trivial := testlibs.Path(b, "libtrivial.so")
	zlib := testlibs.SystemLibrary(b, "libz.so.1", "zlib1g")
	workloads := []struct {
		name string
		w    benchWorkload
	}{{"tl_labs", labsWorkload(trivial)}}
	for _, size := range []int{64, 4 << 10, 1 << 20} {
		workloads = append(workloads, struct {
			name string
			w    benchWorkload
		}{"crc32-" + sizeName(size), crc32Workload(zlib, size)})
	}

	for _, wl := range workloads {
		b.Run(wl.name, func(b *testing.B) {
			b.Run("purego-SyscallN", func(b *testing.B) { benchSyscallN(b, wl.w) })
			b.Run("purego-RegisterFunc", func(b *testing.B) { benchRegisterFunc(b, wl.w) })
			for _, r := range gateRoutes {
				b.Run(r.name, func(b *testing.B) { benchGate(b, wl.w, r.opts) })
			}
		})
	}
}

// benchSink keeps the compiler from dropping calls whose result is unused.
var benchSink uintptr

// dlsym opens lib with the system dynamic loader and returns symbol.
func dlsym(b *testing.B, lib, symbol string) uintptr {
	b.Helper()
	h, err := purego.Dlopen(lib, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		b.Fatalf("dlopen %s: %v", lib, err)
	}
	fn, err := purego.Dlsym(h, symbol)
	if err != nil {
		b.Fatalf("dlsym %s in %s: %v", symbol, lib, err)
	}
	return fn
}

func checkResult(b *testing.B, w benchWorkload, got uintptr) {
	b.Helper()
	if got != w.want {
		b.Fatalf("%s returned %#x, want %#x", w.symbol, got, w.want)
	}
	b.SetBytes(w.bytes)
	b.ReportAllocs()
}

func benchSyscallN(b *testing.B, w benchWorkload) {
	fn := dlsym(b, w.lib, w.symbol)
	a := w.args
	r, _, _ := purego.SyscallN(fn, a...)
	checkResult(b, w, r)
	for b.Loop() {
		benchSink, _, _ = purego.SyscallN(fn, a...)
	}
}

func benchRegisterFunc(b *testing.B, w benchWorkload) {
	fn := dlsym(b, w.lib, w.symbol)
	a := w.args
	switch len(a) {
	case 1:
		var f func(uintptr) uintptr
		purego.RegisterFunc(&f, fn)
		checkResult(b, w, f(a[0]))
		for b.Loop() {
			benchSink = f(a[0])
		}
	case 3:
		var f func(uintptr, uintptr, uintptr) uintptr
		purego.RegisterFunc(&f, fn)
		checkResult(b, w, f(a[0], a[1], a[2]))
		for b.Loop() {
			benchSink = f(a[0], a[1], a[2])
		}
	default:
		b.Fatalf("no RegisterFunc signature for %d arguments", len(a))
	}
}

func benchGate(b *testing.B, w benchWorkload, opts Options) {
	if opts.Mode == ModeKeys {
		if ok, why := KeysSupported(); !ok {
			b.Skipf("mode keys needs memory protection keys: %s", why)
		}
	}
	g, err := Open(w.lib, &opts)
	if err != nil {
		b.Fatalf("Open(%s) in mode %v: %v", w.lib, opts.Mode, err)
	}
	defer g.Close()
	f, err := g.Func(w.symbol)
	if err != nil {
		b.Fatal(err)
	}
	a := w.args
	switch len(a) {
	case 1:
		checkResult(b, w, f.Call1(a[0]))
		for b.Loop() {
			benchSink = f.Call1(a[0])
		}
	case 3:
		checkResult(b, w, f.Call3(a[0], a[1], a[2]))
		for b.Loop() {
			benchSink = f.Call3(a[0], a[1], a[2])
		}
	default:
		b.Fatalf("no gate call for %d arguments", len(a))
	}
	if s := g.Stats(); s.Calls > 0 {
		b.ReportMetric(float64(s.Windows)/float64(s.Calls), "windows/call")
	}
}

// BenchmarkProtectParallel calls tl_labs in ModeProtect from 1 to 8
// goroutines at once. ns/op is wall time per call over all goroutines;
// windows/call falls below 1 when calls overlap and share a window.
func BenchmarkProtectParallel(b *testing.B) {
	g, fs := openTrivial(b, &Options{Mode: ModeProtect})
	for _, n := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("goroutines-%d", n), func(b *testing.B) {
			b.ReportAllocs()
			before := g.Stats()
			var wg sync.WaitGroup
			b.ResetTimer()
			for i := range n {
				calls := b.N / n
				if i < b.N%n {
					calls++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range calls {
						fs.labs.Call1(1)
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			calls, windows, _ := statsDelta(g, before)
			if calls > 0 {
				b.ReportMetric(float64(windows)/float64(calls), "windows/call")
			}
		})
	}
}

// BenchmarkMprotectRoundTrip times one mprotect to PROT_NONE and one back
// to read-write on a single anonymous page. A protect window makes each of
// these system calls at least once, so the figure explains the cost of
// ModeProtect on the machine that ran the benchmarks.
func BenchmarkMprotectRoundTrip(b *testing.B) {
	page, err := unix.Mmap(-1, 0, unix.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		b.Fatalf("mmap one page: %v", err)
	}
	defer unix.Munmap(page)
	page[0] = 1 // fault the page in, as a loaded library's pages are
	b.ReportAllocs()
	for b.Loop() {
		if err := unix.Mprotect(page, unix.PROT_NONE); err != nil {
			b.Fatal(err)
		}
		if err := unix.Mprotect(page, unix.PROT_READ|unix.PROT_WRITE); err != nil {
			b.Fatal(err)
		}
	}
}
