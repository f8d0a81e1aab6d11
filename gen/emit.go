package gen

import (
	"bytes"
	_ "embed"
	"fmt"
	"go/format"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"modernc.org/cc/v4"
)

// Lines of the generated file that InputHashes reads.
const (
	libraryHashPrefix = "// Library SHA-256: "
	headerHashPrefix  = "// Header SHA-256: "
)

// Limits of the call interface of trampoline.Func.
const (
	maxCallN       = 9  // CallN takes at most 9 integer arguments
	intRegisters   = 6  // trampoline.Args.Ints: rdi, rsi, rdx, rcx, r8, r9
	floatRegisters = 8  // trampoline.Args.Floats: xmm0 to xmm7
	maxStack       = 16 // trampoline.MaxStackArgs, the length of trampoline.Args.Stack
)

//go:embed wrapper.go.tmpl
var wrapperTemplate string

var tmpl = template.Must(template.New("wrapper.go.tmpl").Parse(wrapperTemplate))

// file is the data the template renders.
type file struct {
	Command      string
	Package      string
	LibPath      string
	LibSHA256    string
	Header       string
	HeaderBase   string
	HeaderSHA256 string
	// DefaultPath is the library file found at generation time. It is a
	// path rather than the soname because trampoline.Open opens the file
	// it is given and does not search library directories.
	DefaultPath string
	// LibName names the library in documentation: its soname, else the
	// base name of the file.
	LibName string
	Funcs   []*wrapper
	Skipped []skipped

	// Which imports and helpers the methods use.
	UsesMath, UsesPointers, UsesBoolArg, UsesResultPointer bool
}

// skipped is a function that is not wrapped, with the reason.
type skipped struct {
	Name, Reason string
}

// wrapper is one generated method.
type wrapper struct {
	CName     string
	GoName    string
	Field     string // the *trampoline.Func field of Lib
	Prototype string
	Version   string // symbol version, "" if unversioned
	Params    []param
	Result    goType
	// Signature and Body are the Go parameter list with result type, and
	// the statements of the method, one per line.
	Signature string
	Body      []string
}

type param struct {
	Name string
	Type goType
}

// selectFuncs decides for each declared function whether it is wrapped and
// fills f.Funcs and f.Skipped, both sorted by C name.
func (f *file) selectFuncs(funcs []*cFunc, lib *Library, include, exclude *regexp.Regexp) {
	slices.SortFunc(funcs, func(a, b *cFunc) int { return strings.Compare(a.Name, b.Name) })
	libName := lib.Soname
	if libName == "" {
		libName = lib.Path
	}
	goNames := make(map[string]bool)
	for n := range reservedMethods {
		goNames[n] = true
	}
	for _, cf := range funcs {
		versions := lib.Funcs[cf.Name]
		if !cf.InHeader && len(versions) == 0 {
			continue
		}
		skip := func(format string, args ...any) {
			f.Skipped = append(f.Skipped, skipped{Name: cf.Name, Reason: fmt.Sprintf(format, args...)})
		}
		if cf.Static {
			skip("static, so it has internal linkage")
			continue
		}
		if include != nil && !include.MatchString(cf.Name) {
			skip("does not match -include %s", include)
			continue
		}
		if exclude != nil && exclude.MatchString(cf.Name) {
			skip("matches -exclude %s", exclude)
			continue
		}
		sym, ok := lib.Exported(cf.Name)
		if !ok {
			if len(versions) == 0 {
				skip("not exported by %s", libName)
			} else {
				var names []string
				for _, v := range versions {
					names = append(names, v.Name+"@"+v.Version)
				}
				skip("exported by %s only as the non-default version %s", libName, strings.Join(names, ", "))
			}
			continue
		}
		w, err := newWrapper(cf)
		if err != nil {
			skip("%v", err)
			continue
		}
		w.Version = sym.Version
		w.GoName = uniqueName(exportedName(cf.Name), goNames)
		w.Field = "fn" + w.GoName
		f.Funcs = append(f.Funcs, w)
	}
	for _, w := range f.Funcs {
		f.generateBody(w)
	}
}

// newWrapper maps the signature of cf, or returns an error saying why it
// cannot be called through a trampoline.Func.
func newWrapper(cf *cFunc) (*wrapper, error) {
	ft := cf.Type
	if ft.IsVariadic() {
		return nil, fmt.Errorf("variadic")
	}
	cparams := ft.Parameters()
	if len(cparams) == 0 && ft.MaxArgs() < 0 {
		return nil, fmt.Errorf("declared without a prototype, so its parameters are unknown")
	}
	if len(cparams) == 1 && cparams[0].Type().Kind() == cc.Void && cparams[0].Name() == "" {
		cparams = nil // f(void)
	}

	w := &wrapper{CName: cf.Name, Prototype: cf.Prototype}
	result, err := mapType(ft.Result(), true)
	if err != nil {
		return nil, fmt.Errorf("result: %w", err)
	}
	w.Result = result

	cnames := make([]string, len(cparams))
	for i, p := range cparams {
		cnames[i] = p.Name()
	}
	names := paramNames(cnames)
	for i, p := range cparams {
		t, err := mapType(p.Type(), false)
		if err != nil {
			label := "parameter " + strconv.Itoa(i+1)
			if cnames[i] != "" {
				label += " (" + cnames[i] + ")"
			}
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		w.Params = append(w.Params, param{Name: names[i], Type: t})
	}
	if n := stackSlots(w.Params); n > maxStack {
		return nil, fmt.Errorf("needs %d stack argument slots, more than the %d of trampoline.Args", n, maxStack)
	}
	return w, nil
}

// stackSlots returns how many 8-byte stack slots the System V AMD64
// convention uses for params: integers past the sixth and floating point
// values past the eighth.
func stackSlots(params []param) int {
	ints, floats := 0, 0
	for _, p := range params {
		if p.Type.Class == classFloat {
			floats++
		} else {
			ints++
		}
	}
	return max(ints-intRegisters, 0) + max(floats-floatRegisters, 0)
}

// usesCallN reports whether w can use Func.CallN: at most 9 arguments, all
// in integer registers or integer stack slots, and no floating point
// result.
func (w *wrapper) usesCallN() bool {
	if len(w.Params) > maxCallN || w.Result.Class == classFloat {
		return false
	}
	for _, p := range w.Params {
		if p.Type.Class == classFloat {
			return false
		}
	}
	return true
}

// generateBody fills w.Signature and w.Body and records in f which helpers
// the body uses.
func (f *file) generateBody(w *wrapper) {
	var sig strings.Builder
	sig.WriteByte('(')
	for i, p := range w.Params {
		if i > 0 {
			sig.WriteString(", ")
		}
		sig.WriteString(p.Name + " " + p.Type.Name)
	}
	sig.WriteByte(')')
	if w.Result.Class != classVoid {
		sig.WriteString(" " + w.Result.Name)
	}
	w.Signature = sig.String()

	var body []string
	var call string
	if w.usesCallN() {
		args := make([]string, len(w.Params))
		for i, p := range w.Params {
			args[i] = f.intArg(p)
		}
		call = fmt.Sprintf("l.%s.Call%d(%s)", w.Field, len(w.Params), strings.Join(args, ", "))
		if w.Result.Class != classVoid {
			call = "rax := " + call
		}
	} else {
		body = append(body, "var args trampoline.Args")
		ints, floats, stack := 0, 0, 0
		for _, p := range w.Params {
			switch {
			case p.Type.Class == classFloat && floats < floatRegisters:
				body = append(body, fmt.Sprintf("args.Floats[%d] = %s", floats, f.floatArg(p, false)))
				floats++
			case p.Type.Class == classFloat:
				body = append(body, fmt.Sprintf("args.Stack[%d] = %s", stack, f.floatArg(p, true)))
				stack++
			case ints < intRegisters:
				body = append(body, fmt.Sprintf("args.Ints[%d] = %s", ints, f.intArg(p)))
				ints++
			default:
				body = append(body, fmt.Sprintf("args.Stack[%d] = %s", stack, f.intArg(p)))
				stack++
			}
		}
		if stack > 0 {
			body = append(body, fmt.Sprintf("args.NStack = %d", stack))
		}
		call = fmt.Sprintf("l.%s.CallArgs(&args)", w.Field)
		if w.Result.Class != classVoid {
			call = "res := " + call
		}
	}
	body = append(body, call)

	for _, p := range w.Params {
		if p.Type.Class == classPointer {
			body = append(body, "runtime.KeepAlive("+p.Name+")")
		}
	}
	if w.Result.Class != classVoid {
		rax, xmm0 := "rax", ""
		if !w.usesCallN() {
			rax, xmm0 = "res.R0", "res.X0"
		}
		body = append(body, "return "+f.resultExpr(w.Result, rax, xmm0))
	}
	w.Body = body
}

// intArg returns the expression that passes p in an integer register or
// stack slot. Converting a signed Go integer to uintptr sign-extends it, so
// a narrow signed argument arrives sign-extended to 64 bits and an unsigned
// one zero-extended, as compilers for x86-64 expect.
func (f *file) intArg(p param) string {
	switch {
	case p.Type.Class == classPointer:
		f.UsesPointers = true
		return "pointerArg(" + p.Name + ")"
	case p.Type.Name == "bool":
		f.UsesBoolArg = true
		return "boolArg(" + p.Name + ")"
	case p.Type.Name == "uintptr":
		return p.Name
	default:
		return "uintptr(" + p.Name + ")"
	}
}

// floatArg returns the expression that passes p in an SSE register
// (trampoline.Args.Floats, uint64) or a stack slot (uintptr). A float32
// travels in the low 32 bits.
func (f *file) floatArg(p param, stack bool) string {
	f.UsesMath = true
	bits := "math.Float64bits(" + p.Name + ")"
	if p.Type.Size == 4 {
		bits = "math.Float32bits(" + p.Name + ")"
		if !stack {
			return "uint64(" + bits + ")"
		}
	}
	if stack {
		return "uintptr(" + bits + ")"
	}
	return bits
}

// resultExpr converts the result register, the expression rax for RAX or
// xmm0 for the raw bits of XMM0, to t, truncating an integer to its
// declared size. A _Bool result is the low byte of RAX.
func (f *file) resultExpr(t goType, rax, xmm0 string) string {
	switch {
	case t.Class == classFloat && t.Size == 4:
		f.UsesMath = true
		return "math.Float32frombits(uint32(" + xmm0 + "))"
	case t.Class == classFloat:
		f.UsesMath = true
		return "math.Float64frombits(" + xmm0 + ")"
	case t.Class == classPointer:
		f.UsesResultPointer = true
		return "resultPointer(" + rax + ")"
	case t.Name == "bool":
		return rax + "&0xff != 0"
	case t.Name == "uintptr":
		return rax
	default:
		return t.Name + "(" + rax + ")"
	}
}

// UsesUnsafe reports whether the generated file imports unsafe.
func (f *file) UsesUnsafe() bool { return f.UsesPointers || f.UsesResultPointer }

// render executes the template and formats the result. A template that
// produces code gofmt rejects is a bug in the generator, so the error
// includes the unformatted source.
func (f *file) render() ([]byte, error) {
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, f); err != nil {
		return nil, fmt.Errorf("generate: execute template: %w", err)
	}
	out, err := format.Source(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("generate: generated code does not format: %w\n%s", err, buf.Bytes())
	}
	return out, nil
}
