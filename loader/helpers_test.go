package loader_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/decouple-go/decouple/loader"
)

// ownLoader selects the own loader without the fallback to dlopen, so a
// test of the own loader cannot pass by loading the library the system way.
func ownLoader() *loader.Options {
	return &loader.Options{Backend: loader.BackendOwn}
}

// openOwn loads path with the own loader and closes the image when the
// test ends.
func openOwn(tb testing.TB, path string) *loader.Image {
	tb.Helper()
	im, err := loader.Open(path, ownLoader())
	if err != nil {
		tb.Fatalf("Open(%s) with the own loader: %v", path, err)
	}
	if im.Backend != loader.BackendOwn {
		tb.Fatalf("Open(%s): Backend = %v, want %v", path, im.Backend, loader.BackendOwn)
	}
	tb.Cleanup(func() {
		if err := im.Close(); err != nil {
			tb.Errorf("Close(%s): %v", path, err)
		}
	})
	return im
}

// lookup returns the address of an exported symbol or fails the test.
func lookup(tb testing.TB, im *loader.Image, name string) uintptr {
	tb.Helper()
	addr, err := im.Lookup(name)
	if err != nil {
		tb.Fatalf("Lookup(%q): %v", name, err)
	}
	if !im.Contains(addr) {
		tb.Fatalf("Lookup(%q) = %#x, outside the image %#x+%#x", name, addr, im.Base, im.Span)
	}
	return addr
}

// Memory that C reads or writes during a call must not move. A goroutine's
// stack moves when it grows, and that can happen in the prologue of a
// ccall function after the caller has turned an address into a uintptr.
// The compiler places small buffers and variables whose address is taken
// on the stack, so the helpers below return heap memory only: a noinline
// function cannot return a pointer into its own frame. Callers still keep
// the memory alive with runtime.KeepAlive until the call returns.

// cBytes returns n zeroed heap bytes for C to use, with a valid address
// even when n is 0.
//
//go:noinline
func cBytes(n int) []byte {
	return make([]byte, n, n+1)
}

// cString returns s as a NUL-terminated byte slice on the heap.
//
//go:noinline
func cString(s string) []byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b
}

// cValue returns a heap copy of v for C to read or write through a pointer.
//
//go:noinline
func cValue[T any](v T) *T {
	p := new(T)
	*p = v
	return p
}

// addr returns the address of the first byte of b, which is valid even for
// an empty slice from cBytes.
func addr(b []byte) uintptr {
	return uintptr(unsafe.Pointer(unsafe.SliceData(b[:cap(b)])))
}

// ptr converts a C address held in a uintptr to a pointer. It converts
// through memory because go vet's unsafeptr check flags a direct
// conversion. The memory belongs to C, so the garbage collector never
// moves it.
func ptr(addr uintptr) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&addr))
}

// goString copies the NUL-terminated C string at addr. It returns "" for a
// NULL pointer.
func goString(addr uintptr) string {
	if addr == 0 {
		return ""
	}
	const maxLen = 1 << 20
	p := ptr(addr)
	n := 0
	for n < maxLen && *(*byte)(unsafe.Add(p, n)) != 0 {
		n++
	}
	return string(unsafe.Slice((*byte)(p), n))
}

// mapping is one line of /proc/self/maps.
type mapping struct {
	start, end uintptr
	perms      string
	path       string
}

func (m mapping) String() string {
	return fmt.Sprintf("%#x-%#x %s %s", m.start, m.end, m.perms, m.path)
}

// readMaps parses /proc/self/maps.
func readMaps(tb testing.TB) []mapping {
	tb.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		tb.Fatalf("read memory map: %v", err)
	}
	defer f.Close()

	var out []mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m, err := parseMapsLine(sc.Text())
		if err != nil {
			tb.Fatalf("/proc/self/maps: %v", err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("read /proc/self/maps: %v", err)
	}
	return out
}

// parseMapsLine parses "start-end perms offset dev inode [path]", the
// format of /proc/self/maps and of the header lines of /proc/self/smaps.
func parseMapsLine(line string) (mapping, error) {
	fields := strings.Fields(line)
	if len(fields) < 5 {
		return mapping{}, fmt.Errorf("invalid line %q: want at least 5 fields", line)
	}
	lo, hi, ok := strings.Cut(fields[0], "-")
	if !ok {
		return mapping{}, fmt.Errorf("invalid address range %q", fields[0])
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	if err := errors.Join(err1, err2); err != nil {
		return mapping{}, fmt.Errorf("invalid address range %q: %w", fields[0], err)
	}
	m := mapping{start: uintptr(start), end: uintptr(end), perms: fields[1]}
	if len(fields) > 5 {
		m.path = strings.Join(fields[5:], " ")
	}
	return m, nil
}

// mappingsIn returns the mappings that overlap [lo, hi).
func mappingsIn(maps []mapping, lo, hi uintptr) []mapping {
	var out []mapping
	for _, m := range maps {
		if m.start < hi && m.end > lo {
			out = append(out, m)
		}
	}
	return out
}

// openFDs counts the entries of /proc/self/fd.
func openFDs(tb testing.TB) int {
	tb.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Fatalf("list open file descriptors: %v", err)
	}
	return len(entries)
}
