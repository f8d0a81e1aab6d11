package trampoline

import (
	"fmt"

	"github.com/decouple-go/decouple/internal/ccall"
)

// Func is a function of the library, called through its gate. A Func stays
// valid across swaps: each call goes to the image that is current when the
// call enters the gate.
type Func struct {
	gate  *Gate
	index int
	name  string
}

// Func registers the exported function name and returns a handle to call
// it. Every image the gate swaps to must export it too, or the swap is
// rejected.
func (g *Gate) Func(name string) (*Func, error) {
	i, err := g.register(name, false)
	if err != nil {
		return nil, fmt.Errorf("function %s: %w", name, err)
	}
	return &Func{gate: g, index: i, name: name}, nil
}

// Name returns the symbol name.
func (f *Func) Name() string { return f.name }

// Args holds the arguments of a call with floating-point arguments or
// results, laid out as the System V AMD64 ABI passes them.
type Args = ccall.Args

// Result holds the registers a function returns values in: R0 (RAX),
// R1 (RDX), X0 and X1 (raw bits of XMM0 and XMM1).
type Result = ccall.Result

// MaxStackArgs is the largest number of stack words Args can carry.
const MaxStackArgs = ccall.MaxStackArgs

// CallArgs calls the function with the arguments in a.
func (f *Func) CallArgs(a *Args) Result {
	im := f.gate.enter()
	defer im.w.exit()
	return ccall.CallArgs((*im.addrs.Load())[f.index], im.pkru, a)
}

// Var is an exported data object of the library.
type Var struct {
	gate  *Gate
	index int
	name  string
}

// Var registers the exported object name. Its address changes on every
// swap, and its memory is accessible only inside a call window, so read
// it with Do.
func (g *Gate) Var(name string) (*Var, error) {
	i, err := g.register(name, true)
	if err != nil {
		return nil, fmt.Errorf("object %s: %w", name, err)
	}
	return &Var{gate: g, index: i, name: name}, nil
}

// Do opens a call window on the current image and calls fn with the
// object's address in that image. fn must not keep the address. In
// ModeKeys Go code cannot read the library's pages even inside a window,
// because only the native call stub enables the key, so Do returns an
// error there.
func (v *Var) Do(fn func(addr uintptr)) error {
	if v.gate.mode == ModeKeys {
		return fmt.Errorf("object %s: Go code cannot access library memory in mode keys; call an accessor function of the library", v.name)
	}
	im := v.gate.enter()
	defer im.w.exit()
	fn((*im.addrs.Load())[v.index])
	return nil
}
