// Command libwrapgen generates a typed Go package that calls the functions
// of a C shared library through a trampoline gate.
//
// Usage:
//
//	libwrapgen -lib libz.so.1 -header /usr/include/zlib.h -pkg zlib -o ./zlib
//
// It writes DIR/PKG_gen.go, with one method for every function the header
// declares and the library exports. The functions the header declares but
// the generated package does not wrap are listed, with the reason, in the
// package documentation of that file. See package
// github.com/decouple-go/decouple/gen for the type mapping.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/decouple-go/decouple/gen"
)

// errUsage means the command line was invalid and the flag package has
// already printed why.
var errUsage = errors.New("invalid command line")

func main() {
	err := run(os.Stdout, os.Stderr, os.Args[1:])
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "libwrapgen:", err)
		os.Exit(1)
	}
}

// run parses args, generates the package and writes it to the directory
// named by -o, or to stdout if -o is "-".
func run(stdout, stderr io.Writer, args []string) error {
	var a gen.Args
	var outDir string
	fs := flag.NewFlagSet("libwrapgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&a.Lib, "lib", "", "shared `library` to wrap: a path, or a file name such as libz.so.1 searched for in the multiarch library directories")
	fs.StringVar(&a.Header, "header", "", "C `header` that declares the library's functions, such as /usr/include/zlib.h")
	fs.StringVar(&a.Package, "pkg", "", "`name` of the generated Go package (default: the header's base name without extension)")
	fs.StringVar(&outDir, "o", ".", "`directory` to write PKG_gen.go to, created if missing; - writes the source to stdout")
	fs.StringVar(&a.Include, "include", "", "wrap only the C functions whose name matches this `regexp`")
	fs.StringVar(&a.Exclude, "exclude", "", "do not wrap the C functions whose name matches this `regexp`")
	fs.Func("I", "`directory` searched for #include files before the C compiler's own (repeatable)", func(dir string) error {
		a.IncludeDirs = append(a.IncludeDirs, dir)
		return nil
	})
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: libwrapgen -lib LIB -header HEADER [-pkg NAME] [-o DIR] [-include REGEXP] [-exclude REGEXP] [-I DIR]...\n\n")
		fmt.Fprintf(stderr, "libwrapgen generates a Go package that calls the functions of a C shared library through a trampoline gate.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "libwrapgen: unexpected argument %q; all inputs are given by flags\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	if a.Lib == "" || a.Header == "" {
		fmt.Fprintln(stderr, "libwrapgen: missing -lib or -header; both are required")
		fs.Usage()
		return errUsage
	}

	src, err := gen.Generate(a)
	if err != nil {
		return err
	}
	if outDir == "-" {
		_, err := stdout.Write(src)
		return err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	path := filepath.Join(outDir, a.FileName())
	if err := os.WriteFile(path, src, 0o644); err != nil {
		return fmt.Errorf("write generated package: %w", err)
	}
	return nil
}
