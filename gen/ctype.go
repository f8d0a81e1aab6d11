package gen

import (
	"fmt"

	"modernc.org/cc/v4"
)

// class is the kind of register or stack slot in which the System V AMD64
// calling convention passes a value.
type class int

const (
	classVoid    class = iota // no value: a void result
	classInt                  // integer register or 8-byte stack slot
	classFloat                // SSE register or 8-byte stack slot
	classPointer              // like classInt, but the Go side keeps the pointee alive
)

// goType is the Go type a C parameter or result maps to.
type goType struct {
	// Name is the type as written in the generated code, "" for void.
	Name  string
	Class class
	// Size is the size of the C type in bytes.
	Size int64
	// Signed reports whether an integer type is signed.
	Signed bool
}

var (
	goVoid     = goType{Class: classVoid}
	goPointer  = goType{Name: "unsafe.Pointer", Class: classPointer, Size: 8}
	goFuncPtr  = goType{Name: "uintptr", Class: classInt, Size: 8}
	goBool     = goType{Name: "bool", Class: classInt, Size: 1}
	goFloat32  = goType{Name: "float32", Class: classFloat, Size: 4}
	goFloat64  = goType{Name: "float64", Class: classFloat, Size: 8}
	goIntTypes = map[int64][2]string{1: {"uint8", "int8"}, 2: {"uint16", "int16"}, 4: {"uint32", "int32"}, 8: {"uint64", "int64"}}
)

// mapType returns the Go type of the C type t, or an error that explains
// why t cannot be passed. result is true for a function result, where void is
// allowed.
//
// Typedefs are resolved to the kind they name. Every data pointer becomes
// unsafe.Pointer, char pointers included, and every function pointer
// becomes uintptr, so a value from trampoline.NewCallback can be passed.
// An enum becomes the Go integer type of its underlying C type. Arrays and
// functions as parameters are adjusted to pointers as C does.
func mapType(t cc.Type, result bool) (goType, error) {
	if t == nil {
		return goType{}, fmt.Errorf("unknown type")
	}
	if t.VectorSize() > 0 {
		return goType{}, fmt.Errorf("vector type %s", t)
	}
	switch k := t.Kind(); k {
	case cc.Void:
		if result {
			return goVoid, nil
		}
		return goType{}, fmt.Errorf("void parameter")
	case cc.Bool:
		return goBool, nil
	case cc.Char, cc.SChar, cc.UChar, cc.Short, cc.UShort, cc.Int, cc.UInt,
		cc.Long, cc.ULong, cc.LongLong, cc.ULongLong:
		return integerType(t)
	case cc.Enum:
		et, ok := t.(*cc.EnumType)
		if !ok {
			return goType{}, fmt.Errorf("enum type %s without an underlying type", t)
		}
		return integerType(et.UnderlyingType())
	case cc.Float, cc.Float32:
		return goFloat32, nil
	case cc.Double, cc.Float64, cc.Float32x:
		return goFloat64, nil
	case cc.Ptr:
		pt, ok := t.(*cc.PointerType)
		if ok && pt.Elem() != nil && pt.Elem().Kind() == cc.Function {
			return goFuncPtr, nil
		}
		return goPointer, nil
	case cc.Array:
		if result {
			return goType{}, fmt.Errorf("array result %s", t)
		}
		return goPointer, nil
	case cc.Function:
		if result {
			return goType{}, fmt.Errorf("function result %s", t)
		}
		return goFuncPtr, nil
	case cc.Struct, cc.Union:
		return goType{}, fmt.Errorf("%s passed by value", typeName(t))
	case cc.LongDouble, cc.Float64x:
		return goType{}, fmt.Errorf("%s (x87 80-bit floating point)", t)
	case cc.Int128, cc.UInt128:
		return goType{}, fmt.Errorf("%s (128-bit integer)", t)
	case cc.Float16, cc.BFloat16, cc.Float128, cc.Float128x,
		cc.Decimal32, cc.Decimal64, cc.Decimal128:
		return goType{}, fmt.Errorf("%s (floating point type without a Go equivalent)", t)
	case cc.ComplexChar, cc.ComplexDouble, cc.ComplexFloat, cc.ComplexFloat16,
		cc.ComplexInt, cc.ComplexLong, cc.ComplexLongDouble, cc.ComplexLongLong,
		cc.ComplexShort, cc.ComplexUInt, cc.ComplexUShort:
		return goType{}, fmt.Errorf("complex type %s", t)
	default:
		return goType{}, fmt.Errorf("unsupported type %s (kind %s)", t, k)
	}
}

// typeName returns a short C spelling of t for messages: its typedef name,
// or "struct tag" and "union tag" for a tagged struct or union.
func typeName(t cc.Type) string {
	if d := t.Typedef(); d != nil {
		return d.Name()
	}
	var keyword string
	var tag cc.Token
	switch x := t.(type) {
	case *cc.StructType:
		keyword, tag = "struct", x.Tag()
	case *cc.UnionType:
		keyword, tag = "union", x.Tag()
	}
	if name := tag.SrcStr(); keyword != "" && name != "" {
		return keyword + " " + name
	}
	return t.String()
}

// integerType maps a C integer type to the Go integer type of the same size
// and signedness. Plain char is signed on x86-64, so it becomes int8.
func integerType(t cc.Type) (goType, error) {
	names, ok := goIntTypes[t.Size()]
	if !ok {
		return goType{}, fmt.Errorf("integer type %s of size %d", t, t.Size())
	}
	signed := cc.IsSignedInteger(t)
	name := names[0]
	if signed {
		name = names[1]
	}
	return goType{Name: name, Class: classInt, Size: t.Size(), Signed: signed}, nil
}
