package loader_test

// Tests of the C libraries in testdata/libs loaded by the own loader: the
// ELF features each one exercises, and the features the own loader rejects.

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/decouple-go/decouple/internal/ccall"
	"github.com/decouple-go/decouple/internal/testlibs"
	"github.com/decouple-go/decouple/loader"
)

func TestRelrStringTable(t *testing.T) {
	im := openOwn(t, testlibs.Path(t, "librelr.so"))
	if !im.Spec.Features.RELR {
		// The Makefile notes that GNU ld before 2.38 ignores
		// -z pack-relative-relocs.
		t.Log("librelr.so has no DT_RELR (linker older than GNU ld 2.38?); checking the plain RELATIVE relocations instead")
	}
	name := lookup(t, im, "rr_name")
	count := lookup(t, im, "rr_count")

	if got := ccall.Call0(count, 0); got != 64 {
		t.Fatalf("rr_count() = %d, want 64", got)
	}
	for i := range 64 {
		p := ccall.Call1(name, 0, uintptr(i))
		if !im.Contains(p) {
			t.Fatalf("rr_name(%d) = %#x, want a pointer into the image %#x+%#x", i, p, im.Base, im.Span)
		}
		if got, want := goString(p), fmt.Sprintf("rr%02d", i); got != want {
			t.Errorf("rr_name(%d) = %q, want %q", i, got, want)
		}
	}
	for _, i := range []int32{-1, 64} {
		if p := ccall.Call1(name, 0, uintptr(uint32(i))); p != 0 {
			t.Errorf("rr_name(%d) = %#x, want NULL", i, p)
		}
	}
}

func TestIfuncResolved(t *testing.T) {
	im := openOwn(t, testlibs.Path(t, "libifunc.so"))
	if !im.Spec.Features.IFUNC {
		t.Errorf("Features.IFUNC = false for libifunc.so, want true")
	}
	value := lookup(t, im, "if_value")
	table := lookup(t, im, "if_call_table")
	resolverCalls := lookup(t, im, "if_resolver_calls")

	if got := int64(ccall.Call0(value, 0)); got != 42 {
		t.Errorf("if_value() = %d, want 42", got)
	}
	for _, c := range []struct {
		i    int32
		want int64
	}{{0, 42}, {1, 7}, {2, -1}, {-1, -1}} {
		if got := int64(ccall.Call1(table, 0, uintptr(uint32(c.i)))); got != c.want {
			t.Errorf("if_call_table(%d) = %d, want %d", c.i, got, c.want)
		}
	}
	if got := int32(ccall.Call0(resolverCalls, 0)); got < 1 {
		t.Errorf("if_resolver_calls() = %d, want at least 1", got)
	}
}

func TestNeedsmHypot(t *testing.T) {
	im := openOwn(t, testlibs.Path(t, "libneedsm.so"))
	if !slices.ContainsFunc(im.Deps, func(d loader.Dependency) bool { return d.Name == "libm.so.6" }) {
		t.Errorf("Deps = %v, want an entry for libm.so.6", im.Deps)
	}
	hypot := lookup(t, im, "nm_hypot")

	for _, c := range []struct{ x, y, want float64 }{{3, 4, 5}, {5, 12, 13}, {0, 0, 0}, {-8, 15, 17}} {
		var a ccall.Args
		a.Floats[0] = math.Float64bits(c.x)
		a.Floats[1] = math.Float64bits(c.y)
		r := ccall.CallArgs(hypot, 0, &a)
		if got := math.Float64frombits(r.X0); got != c.want {
			t.Errorf("nm_hypot(%v, %v) = %v, want %v", c.x, c.y, got, c.want)
		}
	}
}

// trivialCallbacks are the C function pointers passed to libtrivial,
// created once per process because purego never frees a callback.
var trivialCallbacks = sync.OnceValues(func() (double, compare uintptr) {
	double = purego.NewCallback(func(x int64) int64 { return 2 * x })
	compare = purego.NewCallback(func(a, b unsafe.Pointer) int32 {
		x, y := *(*int64)(a), *(*int64)(b)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	return double, compare
})

func TestTrivialCalls(t *testing.T) {
	im := openOwn(t, testlibs.Path(t, "libtrivial.so"))

	if got := ccall.Call0(lookup(t, im, "tl_ctor_ran"), 0); got != 1 {
		t.Errorf("tl_ctor_ran() = %d, want 1: the constructor did not run", got)
	}
	neg42 := int64(-42)
	if got := int64(ccall.Call1(lookup(t, im, "tl_labs"), 0, uintptr(neg42))); got != 42 {
		t.Errorf("tl_labs(-42) = %d, want 42", got)
	}
	if got := ccall.Call9(lookup(t, im, "tl_sum9"), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9); got != 45 {
		t.Errorf("tl_sum9(1..9) = %d, want 45", got)
	}
	if got := goString(ccall.Call0(lookup(t, im, "tl_hello"), 0)); got != "hello from libtrivial" {
		t.Errorf("tl_hello() = %q, want %q", got, "hello from libtrivial")
	}

	counter := lookup(t, im, "tl_counter")
	if got := *(*int64)(ptr(counter)); got != 0 {
		t.Errorf("tl_counter = %d at load time, want 0", got)
	}
	bump := lookup(t, im, "tl_bump")
	for want := int64(1); want <= 3; want++ {
		if got := int64(ccall.Call0(bump, 0)); got != want {
			t.Errorf("tl_bump() = %d, want %d", got, want)
		}
	}
	if got := *(*int64)(ptr(counter)); got != 3 {
		t.Errorf("tl_counter = %d after three tl_bump calls, want 3", got)
	}

	double, compare := trivialCallbacks()
	if got := ccall.Call2(lookup(t, im, "tl_apply"), 0, double, 21); got != 42 {
		t.Errorf("tl_apply(double, 21) = %d, want 42", got)
	}
	values := []int64{5, -3, 9, 0, 12, -7, 1}
	v := cValue([7]int64(values))
	ccall.Call3(lookup(t, im, "tl_sort"), 0, uintptr(unsafe.Pointer(v)), uintptr(len(v)), compare)
	runtime.KeepAlive(v)
	slices.Sort(values)
	if !slices.Equal(v[:], values) {
		t.Errorf("tl_sort with a Go comparator gave %v, want %v", v[:], values)
	}
}

// childEnv marks a test binary started by runChild; its value names the
// test that should run its child part.
const childEnv = "DECOUPLE_LOADER_TEST_CHILD"

// inChild reports whether this process is the child that runChild started
// for the named test.
func inChild(name string) bool { return os.Getenv(childEnv) == name }

// runChild runs the named test in a new process of the test binary, with
// the extra environment variables, and returns its combined output and
// error. Tests that must set the environment before the C library reads it,
// or that may crash the process, run their work there.
func runChild(t *testing.T, name string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), append(env, childEnv+"="+name)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestTrivialDestructor checks that Close runs the library's destructor.
// The destructor reads DECOUPLE_TEST_DTOR_FILE with getenv, which reads the
// C library's copy of the environment. A Go program built without cgo
// never updates that copy after startup, so the variable is set for a
// child process.
func TestTrivialDestructor(t *testing.T) {
	if inChild(t.Name()) {
		im, err := loader.Open(os.Getenv("DECOUPLE_TEST_LIB"), ownLoader())
		if err != nil {
			t.Fatal(err)
		}
		dtorFile := os.Getenv("DECOUPLE_TEST_DTOR_FILE")
		if _, err := os.Stat(dtorFile); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s exists before Close (stat error %v), want it created by the destructor", dtorFile, err)
		}
		if err := im.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		return
	}

	dtorFile := filepath.Join(t.TempDir(), "dtor.log")
	out, err := runChild(t, t.Name(),
		"DECOUPLE_TEST_LIB="+testlibs.Path(t, "libtrivial.so"),
		"DECOUPLE_TEST_DTOR_FILE="+dtorFile)
	if err != nil {
		t.Fatalf("child process: %v\n%s", err, out)
	}
	got, err := os.ReadFile(dtorFile)
	if err != nil {
		t.Fatalf("read the destructor's file: %v (child output:\n%s)", err, out)
	}
	if string(got) != "trivial destructor\n" {
		t.Errorf("destructor file contains %q, want exactly one line %q", got, "trivial destructor\n")
	}
}

func TestOwnLoaderRejects(t *testing.T) {
	tests := []struct {
		lib     string
		feature *regexp.Regexp // matched against NotSupportedError.Feature
	}{
		{"libtextrel.so", regexp.MustCompile(`text relocation`)},
		{"libexecstack.so", regexp.MustCompile(`executable stack`)},
		{"libtlsie.so", regexp.MustCompile(`initial-exec TLS`)},
		{"libtlsgd.so", regexp.MustCompile(`thread-local storage|TLS`)},
		{"libtlsdesc.so", regexp.MustCompile(`thread-local storage|TLS`)},
	}
	for _, tt := range tests {
		t.Run(tt.lib, func(t *testing.T) {
			path := testlibs.Path(t, tt.lib)
			im, err := loader.Open(path, ownLoader())
			if err == nil {
				im.Close()
				t.Fatalf("Open(%s) with the own loader succeeded, want an error matching ErrNotSupported", tt.lib)
			}
			checkNotSupported(t, err, path, tt.feature)

			spec, err := loader.Parse(path)
			if err != nil {
				t.Fatalf("Parse(%s): %v, want success: the file is valid", tt.lib, err)
			}
			checkNotSupported(t, spec.CheckOwnLoader(), path, tt.feature)
		})
	}
}

func checkNotSupported(t *testing.T, err error, path string, feature *regexp.Regexp) {
	t.Helper()
	if !errors.Is(err, loader.ErrNotSupported) {
		t.Fatalf("error %v, want one matching ErrNotSupported", err)
	}
	var nse *loader.NotSupportedError
	if !errors.As(err, &nse) {
		t.Fatalf("error %v is not a *NotSupportedError", err)
	}
	if !feature.MatchString(nse.Feature) {
		t.Errorf("Feature = %q, want a match for %q", nse.Feature, feature)
	}
	msg := err.Error()
	if !strings.Contains(msg, path) {
		t.Errorf("message %q does not name the file %s", msg, path)
	}
	if !strings.Contains(msg, nse.Feature) {
		t.Errorf("message %q does not name the feature %q", msg, nse.Feature)
	}
}

// TestCXXLoadsOrRejects accepts either outcome for a C++ library: a clear
// rejection, or a load after which an exception thrown and caught inside
// the library works. The work runs in a child process, because a broken
// unwinder aborts the process from std::terminate.
func TestCXXLoadsOrRejects(t *testing.T) {
	if inChild(t.Name()) {
		path := os.Getenv("DECOUPLE_TEST_LIB")
		im, err := loader.Open(path, ownLoader())
		if err != nil {
			if !errors.Is(err, loader.ErrNotSupported) {
				t.Fatalf("Open(%s): error %v, want one matching ErrNotSupported", path, err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("message %q does not name the file %s", err, path)
			}
			t.Logf("rejected: %v", err)
			return
		}
		throwCatch, err := im.Lookup("cx_throw_catch")
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int32{1, 41} {
			if got := int32(ccall.Call1(throwCatch, 0, uintptr(n))); got != n+1 {
				t.Errorf("cx_throw_catch(%d) = %d, want %d", n, got, n+1)
			}
		}
		if err := im.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		t.Log("loaded and caught the exception")
		return
	}

	out, err := runChild(t, t.Name(), "DECOUPLE_TEST_LIB="+testlibs.Path(t, "libcxx.so"))
	if err != nil {
		t.Fatalf("child process loading libcxx.so failed: %v\n%s", err, out)
	}
	// The child logs one of two outcomes; neither means it ran no test.
	outcome := regexp.MustCompile(`\S+\.go:\d+: ((rejected|loaded and caught).*)`).FindStringSubmatch(out)
	if outcome == nil {
		t.Fatalf("child process reported no outcome, want \"rejected: ...\" or \"loaded and caught ...\":\n%s", out)
	}
	t.Log(outcome[1])
}
