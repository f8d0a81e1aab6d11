package gen

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"modernc.org/cc/v4"
	"modernc.org/token"
)

// cFunc is a function declaration read from the header.
type cFunc struct {
	Name string
	// Prototype is the declaration as written, macros expanded, without
	// storage class and attributes, for example "int deflate(z_streamp
	// strm, int flush)".
	Prototype string
	Pos       token.Position
	// InHeader reports whether the function is declared in the header file
	// itself and not only in a file it includes.
	InHeader bool
	// Static reports whether the function has internal linkage, as a
	// static inline helper defined in the header has.
	Static bool
	Type   *cc.FunctionType
}

// parseHeader preprocesses, parses and type-checks header with the host C
// compiler's predefined macros and include paths, and returns the functions
// declared in it and in the files it includes, in declaration order, each
// name once. includeDirs are searched first, as with cc -I.
func parseHeader(header string, includeDirs []string) ([]*cFunc, error) {
	// The C front end's own error for a missing file ends in a position
	// inside its source, so check the file here.
	if _, err := os.Stat(header); err != nil {
		return nil, fmt.Errorf("parse header %s: %w; pass the library's C header with -header", header, err)
	}
	cfg, err := cc.NewConfig(runtime.GOOS, runtime.GOARCH)
	if err != nil {
		return nil, fmt.Errorf("parse header %s: configure C front end: %w", header, err)
	}
	// Function bodies in the header, such as static inline helpers, are not
	// needed, so they are not type-checked.
	cfg.Header = true
	if len(includeDirs) > 0 {
		// The "" entry, the directory of the including file, stays first
		// for #include "file", as in cc.
		quoted := []string{""}
		quoted = append(quoted, includeDirs...)
		for _, dir := range cfg.IncludePaths {
			if dir != "" {
				quoted = append(quoted, dir)
			}
		}
		cfg.IncludePaths = quoted
		cfg.SysIncludePaths = append(append([]string(nil), includeDirs...), cfg.SysIncludePaths...)
	}

	ast, err := cc.Translate(cfg, []cc.Source{
		{Name: "<predefined>", Value: cfg.Predefined},
		{Name: "<builtin>", Value: cc.Builtin},
		{Name: header},
	})
	if err != nil {
		return nil, fmt.Errorf("parse header %s: %w", header, err)
	}

	headerPath := absPath(header)
	var funcs []*cFunc
	byName := make(map[string]*cFunc)
	add := func(specs *cc.DeclarationSpecifiers, d *cc.Declarator) {
		ft, ok := d.Type().(*cc.FunctionType)
		if !ok || d.IsTypename() {
			return
		}
		pos := d.Position()
		inHeader := absPath(pos.Filename) == headerPath
		if f := byName[d.Name()]; f != nil {
			f.InHeader = f.InHeader || inHeader
			return
		}
		f := &cFunc{
			Name:      d.Name(),
			Prototype: prototype(specs, d),
			Pos:       pos,
			InHeader:  inHeader,
			Static:    d.Linkage() == cc.Internal,
			Type:      ft,
		}
		byName[f.Name] = f
		funcs = append(funcs, f)
	}
	for tu := ast.TranslationUnit; tu != nil; tu = tu.TranslationUnit {
		ed := tu.ExternalDeclaration
		if ed == nil {
			continue
		}
		switch ed.Case {
		case cc.ExternalDeclarationDecl:
			decl := ed.Declaration
			for l := decl.InitDeclaratorList; l != nil; l = l.InitDeclaratorList {
				if l.InitDeclarator != nil && l.InitDeclarator.Declarator != nil {
					add(decl.DeclarationSpecifiers, l.InitDeclarator.Declarator)
				}
			}
		case cc.ExternalDeclarationFuncDef:
			def := ed.FunctionDefinition
			add(def.DeclarationSpecifiers, def.Declarator)
		}
	}
	return funcs, nil
}

// prototype renders the declaration of d as written in the source, after
// macro expansion, leaving out storage class specifiers and attributes.
func prototype(specs *cc.DeclarationSpecifiers, d *cc.Declarator) string {
	var nodes []cc.Node
	for s := specs; s != nil; s = s.DeclarationSpecifiers {
		switch s.Case {
		case cc.DeclarationSpecifiersTypeSpec:
			nodes = append(nodes, s.TypeSpecifier)
		case cc.DeclarationSpecifiersTypeQual:
			nodes = append(nodes, s.TypeQualifier)
		}
	}
	nodes = append(nodes, d)
	src := strings.Join(strings.Fields(cc.NodeSource(nodes...)), " ")
	// A macro expanded inside the parameter list, like bool to _Bool,
	// leaves a space after '(' or before ')' and ','.
	src = strings.NewReplacer("( ", "(", " )", ")", " ,", ",").Replace(src)
	return src + ";"
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}
