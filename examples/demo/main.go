//go:build linux && amd64

// Command demo runs decouple's main job end to end. It compresses a real
// file through the system zlib, loaded by the own loader behind a gate in
// protect mode. Then it hot-swaps a versioned test library with libswap
// while goroutines keep calling it.
//
// `make demo` builds the tools and test libraries and runs it.
package main

import (
	"bytes"
	"compress/zlib"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/decouple-go/decouple/hotswap"
	"github.com/decouple-go/decouple/trampoline"

	czlib "github.com/decouple-go/decouple/examples/zlib"
)

func main() {
	if err := run(os.Stdout, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	input := fs.String("input", "", "file to compress (default: the first of a few large files the system ships)")
	libswap := fs.String("libswap", "bin/libswap", "path of the libswap command")
	v1 := fs.String("v1", "testdata/libs/build/v1/libversioned.so.1", "first build of the versioned test library")
	v2 := fs.String("v2", "testdata/libs/build/v2/libversioned.so.1", "second build of the versioned test library")
	workers := fs.Int("workers", 4, "goroutines calling the versioned library during the swap")
	if err := fs.Parse(args); err != nil {
		return err
	}

	if err := compressDemo(out, *input); err != nil {
		return fmt.Errorf("zlib part: %w", err)
	}
	fmt.Fprintln(out)
	if err := swapDemo(out, *libswap, *v1, *v2, *workers); err != nil {
		return fmt.Errorf("swap part: %w", err)
	}
	return nil
}

// bigSystemFile returns the first file of at least 2 MiB from a list of
// files a Debian system ships.
func bigSystemFile() (string, error) {
	candidates := []string{
		"/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
		"/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
		"/usr/lib/x86_64-linux-gnu/libc.so.6",
		"/usr/bin/perl",
	}
	if goroot := runtime.GOROOT(); goroot != "" {
		candidates = append(candidates, filepath.Join(goroot, "bin", "go"))
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && st.Size() >= 2<<20 {
			return c, nil
		}
	}
	return "", fmt.Errorf("no file of 2 MiB or more found among %v; pass -input", candidates)
}

// zStream mirrors zlib's z_stream on amd64 (112 bytes).
type zStream struct {
	nextIn   uintptr
	availIn  uint32
	_        uint32
	totalIn  uint64
	nextOut  uintptr
	availOut uint32
	_        uint32
	totalOut uint64
	msg      uintptr
	state    uintptr
	zalloc   uintptr
	zfree    uintptr
	opaque   uintptr
	dataType int32
	_        uint32
	adler    uint64
	reserved uint64
}

const (
	zNoFlush     = 0
	zFinish      = 4
	zOK          = 0
	zStreamEnd   = 1
	zBestDefault = -1
	chunk        = 64 << 10
)

func compressDemo(out io.Writer, input string) error {
	if input == "" {
		var err error
		if input, err = bigSystemFile(); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(input)
	if err != nil {
		return err
	}

	lib, err := czlib.Open("", &trampoline.Options{Mode: trampoline.ModeProtect})
	if err != nil {
		return err
	}
	defer lib.Close()
	g := lib.Gate()
	info := g.Image()
	fmt.Fprintf(out, "== zlib through the own loader, mode %v ==\n", g.Mode())
	fmt.Fprintf(out, "library   %s (soname %s, build id %.12s)\n", info.Path, info.Soname, info.BuildID)
	fmt.Fprintf(out, "placed at %#x-%#x (%d KiB), loaded in %v\n", info.Start, info.End, (info.End-info.Start)>>10, info.LoadTime.Round(time.Microsecond))
	fmt.Fprintf(out, "version   %s\n", g.GoString(uintptr(lib.ZlibVersion())))

	// Stream the file through deflate in 64 KiB chunks, so the run makes
	// many calls and the gate opens many windows.
	// deflateInit_ checks the caller's header version against the
	// library's and the struct size; pass the library's own version.
	var zs zStream
	rc := lib.DeflateInit_(unsafe.Pointer(&zs), zBestDefault, lib.ZlibVersion(), int32(unsafe.Sizeof(zs)))
	if rc != zOK {
		return fmt.Errorf("deflateInit_ returned %d", rc)
	}
	var compressed bytes.Buffer
	buf := make([]byte, chunk)
	start := time.Now()
	for off := 0; ; {
		end := min(off+chunk, len(data))
		flush := int32(zNoFlush)
		if end == len(data) {
			flush = zFinish
		}
		zs.nextIn = uintptr(unsafe.Pointer(unsafe.SliceData(data[off:])))
		zs.availIn = uint32(end - off)
		for {
			zs.nextOut = uintptr(unsafe.Pointer(&buf[0]))
			zs.availOut = uint32(len(buf))
			rc = lib.Deflate(unsafe.Pointer(&zs), flush)
			compressed.Write(buf[:len(buf)-int(zs.availOut)])
			if zs.availOut != 0 || rc == zStreamEnd {
				break
			}
		}
		off = end
		if flush == zFinish {
			break
		}
	}
	elapsed := time.Since(start)
	lib.DeflateEnd(unsafe.Pointer(&zs))
	runtime.KeepAlive(data)
	if rc != zStreamEnd {
		return fmt.Errorf("deflate ended with %d, want Z_STREAM_END (1)", rc)
	}

	outSize := compressed.Len()
	r, err := zlib.NewReader(&compressed)
	if err != nil {
		return fmt.Errorf("compress/zlib rejects the output: %w", err)
	}
	decoded, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("compress/zlib cannot decode the output: %w", err)
	}
	if !bytes.Equal(decoded, data) {
		return fmt.Errorf("compress/zlib decoded %d bytes that differ from the %d input bytes", len(decoded), len(data))
	}

	s := g.Stats()
	fmt.Fprintf(out, "input     %s, %d bytes\n", input, len(data))
	fmt.Fprintf(out, "output    %d bytes (%.1f%%) in %v; compress/zlib decodes it to the same bytes\n",
		outSize, 100*float64(outSize)/float64(len(data)), elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "gate      %d calls, %d windows, %d mprotect calls\n", s.Calls, s.Windows, s.Mprotects)
	fmt.Fprintf(out, "exposure  library accessible %v of %v (%.2f%% of the run)\n",
		s.Accessible.Round(time.Microsecond), s.Wall.Round(time.Microsecond), 100*s.Exposure)
	return nil
}

func swapDemo(out io.Writer, libswap, v1, v2 string, workers int) error {
	dir, err := os.MkdirTemp("", "decouple-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "libversioned.so.1")
	if err := copyFile(v1, path); err != nil {
		return err
	}
	sockets := filepath.Join(dir, "sockets")

	g, err := trampoline.Open(path, &trampoline.Options{Mode: trampoline.ModeProtect})
	if err != nil {
		return err
	}
	defer g.Close()
	versionFn, err := g.Func("vl_version")
	if err != nil {
		return err
	}
	version := func() string {
		var v string
		g.Hold(func() { v = g.GoString(versionFn.Call0()) })
		return v
	}

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := hotswap.New(hotswap.Options{SocketDir: sockets, Logger: logger})
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Watch(path, g); err != nil {
		return err
	}
	if err := m.SetVersionFunc(path, version); err != nil {
		return err
	}

	fmt.Fprintf(out, "== hot swap of %s under load, mode %v ==\n", filepath.Base(path), g.Mode())
	var (
		stop     atomic.Bool
		calls    atomic.Int64
		failed   atomic.Int64
		mu       sync.Mutex
		answered = map[string]int64{}
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[string]int64{}
			for !stop.Load() {
				v, err := safeCall(version)
				calls.Add(1)
				if err != nil || (v != "1.0.0" && v != "2.0.0") {
					failed.Add(1)
					continue
				}
				local[v]++
			}
			mu.Lock()
			for k, n := range local {
				answered[k] += n
			}
			mu.Unlock()
		}()
	}

	before := version()
	fmt.Fprintf(out, "%d goroutines calling vl_version; it answers %s\n", workers, before)
	time.Sleep(300 * time.Millisecond)

	fmt.Fprintf(out, "$ libswap push %s --to %s\n", v2, path)
	cmd := exec.Command(libswap, "push", v2, "--to", path, "--socket-dir", sockets, "--timeout", "30s")
	cmd.Stdout, cmd.Stderr = out, out
	pushErr := cmd.Run()

	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	after := version()

	s := g.Stats()
	fmt.Fprintf(out, "calls made %d, calls failed %d\n", calls.Load(), failed.Load())
	fmt.Fprintf(out, "answers    1.0.0: %d, 2.0.0: %d\n", answered["1.0.0"], answered["2.0.0"])
	fmt.Fprintf(out, "version    before %s, after %s (swaps %d)\n", before, after, s.Swaps)
	if pushErr != nil {
		return fmt.Errorf("libswap push: %w", pushErr)
	}
	if failed.Load() != 0 {
		return fmt.Errorf("%d calls failed during the swap", failed.Load())
	}
	if after != "2.0.0" {
		return fmt.Errorf("version after the push is %q, want 2.0.0", after)
	}
	return nil
}

// safeCall turns a panic of a call into an error, so that a failed call is
// counted rather than ending the demo.
func safeCall(fn func() string) (v string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("call panicked: %v", r)
		}
	}()
	return fn(), nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return errors.New(src + " is empty")
	}
	return os.WriteFile(dst, data, 0o644)
}
