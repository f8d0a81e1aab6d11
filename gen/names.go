package gen

import (
	"go/token"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// reservedMethods are the names the generated Lib type declares itself, so
// no wrapper method may take them.
var reservedMethods = map[string]bool{"Gate": true, "Close": true}

// reservedLocals are the identifiers a generated method body refers to,
// besides its parameters: the receiver, its locals, the imported packages,
// the helpers of the generated file and Go's predeclared identifiers. A
// parameter with one of these names is renamed.
var reservedLocals = map[string]bool{
	// Receiver and locals.
	"l": true, "args": true, "rax": true, "res": true,
	// Imported packages.
	"errors": true, "fmt": true, "math": true, "runtime": true, "trampoline": true, "unsafe": true,
	// Helpers declared in the generated file.
	"pointerArg": true, "boolArg": true, "resultPointer": true, "escapeSink": true, "alwaysFalse": true,
	"Lib": true, "Open": true, "DefaultPath": true,
	// Predeclared identifiers.
	"any": true, "append": true, "bool": true, "byte": true, "cap": true, "clear": true, "close": true,
	"comparable": true, "complex": true, "complex128": true, "complex64": true, "copy": true,
	"delete": true, "error": true, "false": true, "float32": true, "float64": true, "imag": true,
	"int": true, "int16": true, "int32": true, "int64": true, "int8": true, "iota": true, "len": true,
	"make": true, "max": true, "min": true, "new": true, "nil": true, "panic": true, "print": true,
	"println": true, "real": true, "recover": true, "rune": true, "string": true, "true": true,
	"uint": true, "uint16": true, "uint32": true, "uint64": true, "uint8": true, "uintptr": true,
}

// sanitizeIdent replaces every rune that may not appear in a Go identifier
// with '_' and prefixes a leading digit with '_'.
func sanitizeIdent(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '_' || unicode.IsLetter(r):
			b.WriteRune(r)
		case unicode.IsDigit(r):
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

// exportedName returns the Go name of the C function name: name with its
// first letter upper-cased, so deflateInit2_ becomes DeflateInit2_. A name
// that does not start with a letter that has an upper case form gets the
// prefix X, so _foo becomes X_foo.
func exportedName(name string) string {
	s := sanitizeIdent(name)
	r, size := utf8.DecodeRuneInString(s)
	if up := unicode.ToUpper(r); unicode.IsUpper(up) {
		return string(up) + s[size:]
	}
	return "X" + s
}

// uniqueName returns name, or name followed by as many underscores as make
// it absent from usedNames, and records the result in usedNames.
func uniqueName(name string, usedNames map[string]bool) string {
	for usedNames[name] {
		name += "_"
	}
	usedNames[name] = true
	return name
}

// paramNames returns Go names for C parameters: the C name made a valid
// identifier where there is one, else a0, a1, ... by position, renamed
// with trailing underscores where it is a Go keyword, one of
// reservedLocals or the name of an earlier parameter.
func paramNames(cnames []string) []string {
	usedNames := make(map[string]bool)
	for n := range reservedLocals {
		usedNames[n] = true
	}
	names := make([]string, len(cnames))
	for i, c := range cnames {
		n := "a" + strconv.Itoa(i)
		if c != "" {
			n = sanitizeIdent(c)
		}
		if token.IsKeyword(n) || n == "_" {
			n += "_"
		}
		names[i] = uniqueName(n, usedNames)
	}
	return names
}

// isPackageName reports whether s can name the generated package.
func isPackageName(s string) bool {
	return token.IsIdentifier(s) && s != "_" && s != "main"
}
