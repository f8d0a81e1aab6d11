package gen

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/decouple-go/decouple/trampoline"
)

// TestStackLimitMatchesTrampoline guards the stack slot limit the
// generator checks against the size of trampoline.Args.Stack.
func TestStackLimitMatchesTrampoline(t *testing.T) {
	var args trampoline.Args
	if maxStack != trampoline.MaxStackArgs {
		t.Errorf("maxStack = %d, want trampoline.MaxStackArgs = %d", maxStack, trampoline.MaxStackArgs)
	}
	if maxStack != len(args.Stack) {
		t.Errorf("maxStack = %d, want len(trampoline.Args.Stack) = %d", maxStack, len(args.Stack))
	}
	if intRegisters != len(args.Ints) || floatRegisters != len(args.Floats) {
		t.Errorf("intRegisters, floatRegisters = %d, %d; want len(Args.Ints), len(Args.Floats) = %d, %d",
			intRegisters, floatRegisters, len(args.Ints), len(args.Floats))
	}
}

// tempModule creates a module outside this repository that requires this
// module through a replace directive, so that generated code can be built
// and tested as a user would. It returns the module's directory.
func tempModule(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a module with the go command; skipped in -short mode")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	mainMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	// The requirements of this module, copied, let the go command resolve
	// every dependency from the module cache without a network.
	mod := strings.Replace(string(mainMod), "module github.com/decouple-go/decouple", "module example.com/gentest", 1)
	mod += "\nrequire github.com/decouple-go/decouple v0.0.0\n\nreplace github.com/decouple-go/decouple => " + root + "\n"

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// goCommand runs the go command in dir and fails the test with its output
// if it fails.
func goCommand(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, &out)
	}
	return out.String()
}

// runGenerated generates the package for args into a temporary module,
// copies the named files from testdata next to it, vets it and runs its
// tests, and returns the output of go test -v.
func runGenerated(t *testing.T, args Args, testFiles ...string) string {
	t.Helper()
	src, err := Generate(args)
	if err != nil {
		t.Fatalf("Generate(%+v): %v", args, err)
	}
	dir := tempModule(t)
	pkgDir := filepath.Join(dir, args.PackageName())
	if err := os.Mkdir(pkgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkgDir, args.FileName()), src, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range testFiles {
		test, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pkgDir, name), test, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goCommand(t, dir, "vet", "./...")
	return goCommand(t, dir, "test", "-count=1", "-v", "./...")
}

// TestGeneratedMappingRuns runs testdata/mapping_run_test.go against the
// package generated from mapping.h: every integer width, floats in
// registers and on the stack, narrow integers on the stack, pointers,
// callbacks and a library that lacks the wrapped functions, all through a
// gate in ModeProtect. TestGeneratedIFuncRuns covers m_ifunc on its own.
func TestGeneratedMappingRuns(t *testing.T) {
	args := Args{Lib: buildMapping(t), Header: "testdata/mapping.h", Package: "mapping", Exclude: "^m_ifunc$"}
	out := runGenerated(t, args, "mapping_run_test.go")
	for _, name := range []string{"TestIntegers", "TestFloats", "TestNarrowStackArgs", "TestPointers", "TestCallbacks", "TestOpenMissingFunction"} {
		if !strings.Contains(out, "--- PASS: "+name) {
			t.Errorf("generated package test %s did not pass:\n%s", name, out)
		}
	}
}

// TestGeneratedIFuncRuns calls the indirect function m_ifunc through the
// generated package. Registering it makes the loader call its resolver.
func TestGeneratedIFuncRuns(t *testing.T) {
	args := Args{Lib: buildMapping(t), Header: "testdata/mapping.h", Package: "mapping", Include: "^m_ifunc$"}
	out := runGenerated(t, args, "mapping_ifunc_test.go")
	if !strings.Contains(out, "--- PASS: TestIFunc") {
		t.Errorf("TestIFunc did not pass:\n%s", out)
	}
}

// TestGeneratedZlibBuilds generates the zlib package afresh, from whatever
// zlib the system has, and checks that it builds and passes go vet outside
// this repository.
func TestGeneratedZlibBuilds(t *testing.T) {
	requireZlib(t)
	requireCC(t)
	src, err := Generate(Args{Lib: zlibPath, Header: zlibHeader, Package: "zlib"})
	if err != nil {
		t.Fatal(err)
	}
	dir := tempModule(t)
	pkgDir := filepath.Join(dir, "zlib")
	if err := os.Mkdir(pkgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkgDir, "zlib_gen.go"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	goCommand(t, dir, "vet", "./...")
}
