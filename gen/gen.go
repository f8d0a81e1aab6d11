// Package gen generates a typed Go package that calls the functions of a C
// shared library through a [trampoline.Gate].
//
// Generate reads the library's dynamic symbol table with debug/elf and
// parses the C header with modernc.org/cc/v4, configured from the host C
// compiler. Every function declared in the header, or in a file it
// includes, that the library exports under its plain name becomes a method
// of the generated Lib type. The package documentation of the generated
// file lists, with the reason, every function that is not wrapped although
// the header file itself declares it or the library defines it. The
// reasons are: it is not exported under its plain name, it is static, a
// filter left it out, or its signature cannot be passed through the gate
// (a struct or union by value, variadic, long double, no prototype, more
// than 16 stack arguments). Functions that only an included file declares
// and the library does not define are ignored silently, because system
// headers declare hundreds of them.
//
// The generated code follows the System V AMD64 calling convention and is
// built only on linux/amd64.
//
// [trampoline.Gate]: https://pkg.go.dev/github.com/decouple-go/decouple/trampoline#Gate
package gen

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

var (
	// ErrLibraryNotFound means the library file does not exist or, for a
	// bare file name, is in none of LibraryDirs.
	ErrLibraryNotFound = errors.New("library not found")
	// ErrFormat means the library is not a valid ELF shared object.
	ErrFormat = errors.New("invalid ELF shared object")
	// ErrUnsupported means the library is valid but not an x86-64 ELF64
	// shared object, the only kind the generated code can call.
	ErrUnsupported = errors.New("unsupported shared object")
	// ErrNoFunctions means no function is left to wrap.
	ErrNoFunctions = errors.New("no function to wrap")
)

// Args configures Generate. Each field corresponds to a libwrapgen flag.
type Args struct {
	// Lib is the shared library: a path, or a file name such as libz.so.1
	// that FindLibrary searches for in LibraryDirs (flag -lib).
	Lib string
	// Header is the C header that declares the library's functions (flag
	// -header).
	Header string
	// Package is the name of the generated Go package (flag -pkg). If it is
	// empty, the base name of Header without its extension is used, made a
	// valid identifier.
	Package string
	// Include, if not empty, is a regular expression that a C function name
	// must match to be wrapped (flag -include).
	Include string
	// Exclude, if not empty, is a regular expression; C functions whose name
	// matches it are not wrapped (flag -exclude).
	Exclude string
	// IncludeDirs are searched for #include files before the host C
	// compiler's directories (flag -I, repeatable).
	IncludeDirs []string
}

// PackageName returns a.Package, or the name derived from a.Header if
// a.Package is empty.
func (a Args) PackageName() string {
	if a.Package != "" {
		return a.Package
	}
	base := filepath.Base(a.Header)
	base = strings.TrimSuffix(base, filepath.Ext(base))
	return strings.ToLower(sanitizeIdent(base))
}

// FileName returns the name libwrapgen gives the generated file:
// the package name followed by _gen.go.
func (a Args) FileName() string {
	return a.PackageName() + "_gen.go"
}

// Command returns the libwrapgen command line that reproduces the output
// of Generate for a, with arguments quoted for a POSIX shell where needed.
// The output directory is left out because it does not change the output.
func (a Args) Command() string {
	words := []string{"libwrapgen", "-lib", a.Lib, "-header", a.Header, "-pkg", a.PackageName()}
	for _, dir := range a.IncludeDirs {
		words = append(words, "-I", dir)
	}
	if a.Include != "" {
		words = append(words, "-include", a.Include)
	}
	if a.Exclude != "" {
		words = append(words, "-exclude", a.Exclude)
	}
	for i, w := range words {
		words[i] = shellQuote(w)
	}
	return strings.Join(words, " ")
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./+=:,@%-]+$`)

func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Generate returns the gofmt-formatted source of a Go package that wraps
// the functions of a.Lib declared in a.Header. The output depends only on
// args and the contents of the input files, so generating twice from the
// same inputs gives the same bytes.
func Generate(args Args) ([]byte, error) {
	if args.Header == "" {
		return nil, errors.New("generate: missing header: set -header to the C header that declares the functions")
	}
	pkg := args.PackageName()
	if !isPackageName(pkg) {
		return nil, fmt.Errorf("generate: invalid package name %q: want a Go identifier other than _ and main", pkg)
	}
	include, err := compileFilter("include", args.Include)
	if err != nil {
		return nil, err
	}
	exclude, err := compileFilter("exclude", args.Exclude)
	if err != nil {
		return nil, err
	}

	libPath, err := FindLibrary(args.Lib)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	lib, err := ReadLibrary(libPath)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	funcs, err := parseHeader(args.Header, args.IncludeDirs)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}

	f := &file{
		Command:     args.Command(),
		Package:     pkg,
		LibPath:     libPath,
		Header:      args.Header,
		HeaderBase:  filepath.Base(args.Header),
		DefaultPath: libPath,
		LibName:     lib.Soname,
	}
	if f.LibName == "" {
		f.LibName = filepath.Base(libPath)
	}
	if f.LibSHA256, err = fileSHA256(libPath); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	if f.HeaderSHA256, err = fileSHA256(args.Header); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	f.selectFuncs(funcs, lib, include, exclude)
	if len(f.Funcs) == 0 {
		return nil, fmt.Errorf("generate: %w: none of the %d functions in %s and its includes is exported by %s and expressible (skipped: %d)",
			ErrNoFunctions, len(funcs), args.Header, libPath, len(f.Skipped))
	}
	return f.render()
}

func compileFilter(flag, expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("generate: invalid -%s regular expression: %w", flag, err)
	}
	return re, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// InputHashes returns the SHA-256 digests, in hex, that the generated
// source src records for its library and header, and false if src records
// none. A test can compare them with the files now on disk to tell a
// changed input from a changed generator.
func InputHashes(src []byte) (lib, header string, ok bool) {
	for line := range bytes.Lines(src) {
		if v, found := strings.CutPrefix(string(line), libraryHashPrefix); found {
			lib, _, _ = strings.Cut(strings.TrimSpace(v), " ")
		}
		if v, found := strings.CutPrefix(string(line), headerHashPrefix); found {
			header, _, _ = strings.Cut(strings.TrimSpace(v), " ")
		}
	}
	return lib, header, lib != "" && header != ""
}
