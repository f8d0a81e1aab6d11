package cgobench

import (
	"fmt"
	"hash/crc32"
	"testing"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"
	"golang.org/x/sys/unix"

	"github.com/decouple-go/decouple/internal/ccall"
	"github.com/decouple-go/decouple/internal/testlibs"
	"github.com/decouple-go/decouple/trampoline"
)

// The workloads and routes mirror trampoline/bench_test.go, which runs the
// routes without cgo for `make bench`. This file adds the cgo route, so
// every figure of one run shares a process and a machine state.

// workload is one C function and the arguments every benchmark iteration
// passes to it.
type workload struct {
	name        string
	lib, symbol string
	args        []uintptr // one or three integer or pointer arguments
	buf         []byte    // the buffer args point into (crc32), or nil
	want        uintptr   // the result, checked once before timing
}

func workloads(tb testing.TB) []workload {
	trivial := testlibs.Path(tb, "libtrivial.so")
	zlib := testlibs.SystemLibrary(tb, "libz.so.1", "zlib1g")
	ws := []workload{{name: "tl_labs", lib: trivial, symbol: "tl_labs", args: []uintptr{uintptr(^uint64(4))}, want: 5}}
	for _, size := range []int{64, 4 << 10, 1 << 20} {
		buf := make([]byte, size)
		for i := range buf {
			buf[i] = byte(i * 31)
		}
		ws = append(ws, workload{
			name: "crc32-" + sizeName(size), lib: zlib, symbol: "crc32",
			args: []uintptr{0, uintptr(unsafe.Pointer(&buf[0])), uintptr(size)},
			buf:  buf, want: uintptr(crc32.ChecksumIEEE(buf)),
		})
	}
	return ws
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
	opts trampoline.Options
}{
	{"gate-open", trampoline.Options{Mode: trampoline.ModeOpen}},
	{"gate-protect", trampoline.Options{Mode: trampoline.ModeProtect}},
	{"gate-protect-linger1ms", trampoline.Options{Mode: trampoline.ModeProtect, Linger: time.Millisecond}},
	{"gate-unmap", trampoline.Options{Mode: trampoline.ModeUnmap}},
	{"gate-keys", trampoline.Options{Mode: trampoline.ModeKeys}},
}

func BenchmarkCall(b *testing.B) {
	for _, w := range workloads(b) {
		b.Run(w.name, func(b *testing.B) {
			b.Run("cgo", func(b *testing.B) { benchCgo(b, w) })
			b.Run("stub", func(b *testing.B) { benchStub(b, w) })
			b.Run("purego-SyscallN", func(b *testing.B) { benchSyscallN(b, w) })
			b.Run("purego-RegisterFunc", func(b *testing.B) { benchRegisterFunc(b, w) })
			for _, r := range gateRoutes {
				b.Run(r.name, func(b *testing.B) { benchGate(b, w, r.opts) })
			}
		})
	}
}

// sink keeps the compiler from dropping calls whose result is unused.
var sink uintptr

func start(b *testing.B, w workload, got uintptr) {
	b.Helper()
	if got != w.want {
		b.Fatalf("%s returned %#x, want %#x", w.symbol, got, w.want)
	}
	b.SetBytes(int64(len(w.buf)))
	b.ReportAllocs()
}

func benchCgo(b *testing.B, w workload) {
	switch w.symbol {
	case "tl_labs":
		fn, err := Lookup(w.lib, w.symbol)
		if err != nil {
			b.Fatal(err)
		}
		x := int64(w.args[0])
		start(b, w, uintptr(CallLong(fn, x)))
		for b.Loop() {
			sink = uintptr(CallLong(fn, x))
		}
	case "crc32":
		start(b, w, uintptr(CRC32(0, w.buf)))
		for b.Loop() {
			sink = uintptr(CRC32(0, w.buf))
		}
	default:
		b.Fatalf("no cgo route for %s", w.symbol)
	}
}

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

func benchSyscallN(b *testing.B, w workload) {
	fn := dlsym(b, w.lib, w.symbol)
	a := w.args
	r, _, _ := purego.SyscallN(fn, a...)
	start(b, w, r)
	for b.Loop() {
		sink, _, _ = purego.SyscallN(fn, a...)
	}
}

// benchStub calls through the gate's native stub without a gate, which
// separates the cost of the runtime.cgocall route from the gate's own.
func benchStub(b *testing.B, w workload) {
	fn := dlsym(b, w.lib, w.symbol)
	a := w.args
	switch len(a) {
	case 1:
		start(b, w, ccall.Call1(fn, 0, a[0]))
		for b.Loop() {
			sink = ccall.Call1(fn, 0, a[0])
		}
	case 3:
		start(b, w, ccall.Call3(fn, 0, a[0], a[1], a[2]))
		for b.Loop() {
			sink = ccall.Call3(fn, 0, a[0], a[1], a[2])
		}
	default:
		b.Fatalf("no stub call for %d arguments", len(a))
	}
}

// BenchmarkCallParallel calls tl_labs from every P at once (b.RunParallel),
// through cgo and through an open gate, whose call counts must not make
// the goroutines contend for one cache line.
func BenchmarkCallParallel(b *testing.B) {
	w := workloads(b)[0]
	x := w.args[0]
	b.Run("cgo", func(b *testing.B) {
		fn, err := Lookup(w.lib, w.symbol)
		if err != nil {
			b.Fatal(err)
		}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if CallLong(fn, int64(x)) != int64(w.want) {
					panic("tl_labs through cgo returned a wrong result")
				}
			}
		})
	})
	b.Run("gate-open", func(b *testing.B) {
		g, err := trampoline.Open(w.lib, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer g.Close()
		f, err := g.Func(w.symbol)
		if err != nil {
			b.Fatal(err)
		}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if f.Call1(x) != w.want {
					panic("tl_labs through the gate returned a wrong result")
				}
			}
		})
	})
}

func benchRegisterFunc(b *testing.B, w workload) {
	fn := dlsym(b, w.lib, w.symbol)
	a := w.args
	switch len(a) {
	case 1:
		var f func(uintptr) uintptr
		purego.RegisterFunc(&f, fn)
		start(b, w, f(a[0]))
		for b.Loop() {
			sink = f(a[0])
		}
	case 3:
		var f func(uintptr, uintptr, uintptr) uintptr
		purego.RegisterFunc(&f, fn)
		start(b, w, f(a[0], a[1], a[2]))
		for b.Loop() {
			sink = f(a[0], a[1], a[2])
		}
	default:
		b.Fatalf("no RegisterFunc signature for %d arguments", len(a))
	}
}

func benchGate(b *testing.B, w workload, opts trampoline.Options) {
	if opts.Mode == trampoline.ModeKeys {
		if ok, why := trampoline.KeysSupported(); !ok {
			b.Skipf("mode keys needs memory protection keys: %s", why)
		}
	}
	g, err := trampoline.Open(w.lib, &opts)
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
		start(b, w, f.Call1(a[0]))
		for b.Loop() {
			sink = f.Call1(a[0])
		}
	case 3:
		start(b, w, f.Call3(a[0], a[1], a[2]))
		for b.Loop() {
			sink = f.Call3(a[0], a[1], a[2])
		}
	default:
		b.Fatalf("no gate call for %d arguments", len(a))
	}
	if s := g.Stats(); s.Calls > 0 {
		b.ReportMetric(float64(s.Windows)/float64(s.Calls), "windows/call")
	}
}

// TestRoutesAgree checks that every route the benchmarks time returns the
// expected result, so that `go test` without -bench covers this module.
func TestRoutesAgree(t *testing.T) {
	for _, w := range workloads(t) {
		fn, err := Lookup(w.lib, w.symbol)
		if err != nil {
			t.Fatal(err)
		}
		var viaCgo uintptr
		if w.symbol == "crc32" {
			viaCgo = uintptr(CRC32(0, w.buf))
		} else {
			viaCgo = uintptr(CallLong(fn, int64(w.args[0])))
		}
		viaPurego, _, _ := purego.SyscallN(uintptr(fn), w.args...)

		g, err := trampoline.Open(w.lib, &trampoline.Options{Mode: trampoline.ModeProtect})
		if err != nil {
			t.Fatalf("Open(%s): %v", w.lib, err)
		}
		f, err := g.Func(w.symbol)
		if err != nil {
			t.Fatal(err)
		}
		var viaGate uintptr
		if len(w.args) == 1 {
			viaGate = f.Call1(w.args[0])
		} else {
			viaGate = f.Call3(w.args[0], w.args[1], w.args[2])
		}
		if err := g.Close(); err != nil {
			t.Errorf("Close(%s): %v", w.lib, err)
		}

		for _, r := range []struct {
			route string
			got   uintptr
		}{{"cgo", viaCgo}, {"purego.SyscallN", viaPurego}, {"gate in mode protect", viaGate}} {
			if r.got != w.want {
				t.Errorf("%s through %s = %#x, want %#x", w.name, r.route, r.got, w.want)
			}
		}
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
