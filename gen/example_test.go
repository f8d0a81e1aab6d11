package gen

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const exampleDir = "../examples/zlib"

// TestZlibExampleFresh regenerates examples/zlib from the system zlib and
// fails if the committed file differs. If the system's libz or zlib.h is not
// the one the committed file was generated from, a difference would not
// point at the generator, so the test skips.
func TestZlibExampleFresh(t *testing.T) {
	requireZlib(t)
	requireCC(t)
	committedPath := filepath.Join(exampleDir, "zlib_gen.go")
	committed, err := os.ReadFile(committedPath)
	if err != nil {
		t.Fatalf("read committed example: %v", err)
	}
	libHash, headerHash, ok := InputHashes(committed)
	if !ok {
		t.Fatalf("%s records no input hashes", committedPath)
	}
	if h, err := fileSHA256(zlibPath); err != nil || h != libHash {
		t.Skipf("%s (SHA-256 %s, %v) is not the library %s was generated from (%s)", zlibPath, h, err, committedPath, libHash)
	}
	if h, err := fileSHA256(zlibHeader); err != nil || h != headerHash {
		t.Skipf("%s (SHA-256 %s, %v) is not the header %s was generated from (%s)", zlibHeader, h, err, committedPath, headerHash)
	}

	args := exampleArgs(t)
	got, err := Generate(args)
	if err != nil {
		t.Fatalf("Generate(%+v): %v", args, err)
	}
	if !bytes.Equal(got, committed) {
		t.Errorf("%s is stale: regenerate it with go generate ./examples/zlib", committedPath)
	}
}

// exampleArgs returns the arguments of the go:generate line in
// examples/zlib/generate.go.
func exampleArgs(t *testing.T) Args {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(exampleDir, "generate.go"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^//go:generate go run \.\./\.\./cmd/libwrapgen (.*) -o \.$`).FindSubmatch(src)
	if m == nil {
		t.Fatalf("generate.go has no go:generate line running ../../cmd/libwrapgen with -o .")
	}
	want := Args{Lib: zlibPath, Header: zlibHeader, Package: "zlib"}
	if got := "libwrapgen " + string(m[1]); got != want.Command() {
		t.Fatalf("go:generate runs %q, want %q", got, want.Command())
	}
	return want
}

func TestZlibExampleSkipsOnlyVariadic(t *testing.T) {
	committed, err := os.ReadFile(filepath.Join(exampleDir, "zlib_gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	var skipped []string
	for _, m := range regexp.MustCompile(`(?m)^//   - (.*)$`).FindAllSubmatch(committed, -1) {
		skipped = append(skipped, string(m[1]))
	}
	// gzprintf is zlib's only variadic function, and every other function
	// zlib.h declares is exported with an expressible signature.
	if want := []string{"gzprintf: variadic"}; strings.Join(skipped, "\n") != strings.Join(want, "\n") {
		t.Errorf("skipped functions = %q, want %q", skipped, want)
	}
}
