package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
	"unsafe"

	"github.com/decouple-go/decouple/internal/ccall"
	"github.com/decouple-go/decouple/loader"
)

const inspectUsage = `Usage: libswap inspect LIB [--load] [--call SYMBOL] [--backend auto|own|system] [--json]

Prints what the loader sees in LIB: SONAME, build ID, needed libraries,
exported functions and objects, relocation counts by type, the features
it uses, and which backend the auto backend would choose and why. With
--load it loads LIB and prints the placement and load time; with --call
it also calls SYMBOL, a function of type const char *(void), and prints
the string it returns.
`

// inspectReport is the --json output of inspect.
type inspectReport struct {
	Path        string         `json:"path"`
	Soname      string         `json:"soname"`
	BuildID     string         `json:"build_id"`
	SHA256      string         `json:"sha256"`
	Size        int64          `json:"size"`
	Needed      []string       `json:"needed"`
	Functions   []string       `json:"functions"`
	Objects     []string       `json:"objects"`
	Relocations map[string]int `json:"relocations"`
	Features    []string       `json:"features"`
	AutoBackend string         `json:"auto_backend"`
	AutoReason  string         `json:"auto_reason,omitempty"`
	Load        *loadReport    `json:"load,omitempty"`
}

type loadReport struct {
	Backend      string       `json:"backend"`
	Fallback     string       `json:"fallback,omitempty"`
	Start        string       `json:"start"`
	End          string       `json:"end"`
	LoadTimeNS   int64        `json:"load_time_ns"`
	Dependencies []depReport  `json:"dependencies"`
	Call         *callReport  `json:"call,omitempty"`
	Regions      []regionInfo `json:"regions"`
}

type depReport struct {
	Name string `json:"name"`
	How  string `json:"how"`
}

type regionInfo struct {
	Start string `json:"start"`
	Size  uint64 `json:"size"`
	Prot  string `json:"prot"`
}

type callReport struct {
	Symbol string `json:"symbol"`
	Result string `json:"result"`
	Null   bool   `json:"null,omitempty"` // the function returned NULL
}

func runInspect(_ context.Context, stdout, stderr io.Writer, args []string) error {
	fs := newFlagSet("inspect")
	load := fs.Bool("load", false, "load the library and print its placement and load time")
	call := fs.String("call", "", "after loading, call this `SYMBOL` of type const char *(void) and print its result (implies --load)")
	backendName := fs.String("backend", "auto", "loader `backend` for --load: auto, own or system")
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	positional, err := parseArgs(fs, inspectUsage, stdout, stderr, args)
	if err != nil {
		return err
	}
	if len(positional) != 1 {
		return errUsagef(stderr, fs, inspectUsage, "inspect: expected exactly one LIB argument, got %d", len(positional))
	}
	backend, err := loader.ParseBackend(*backendName)
	if err != nil {
		return errUsagef(stderr, fs, inspectUsage, "inspect: %v", err)
	}

	spec, err := loader.Parse(positional[0])
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	rep := describe(spec)
	if *load || *call != "" {
		lr, err := loadAndCall(spec, backend, *call)
		if err != nil {
			return fmt.Errorf("inspect: %w", err)
		}
		rep.Load = lr
	}

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printInspect(stdout, rep)
	return nil
}

func describe(spec *loader.Spec) *inspectReport {
	rep := &inspectReport{
		Path: spec.Path, Soname: spec.Soname, BuildID: spec.BuildID, SHA256: spec.SHA256(), Size: spec.Size,
		Needed: append([]string{}, spec.Needed...), Relocations: map[string]int{},
		Functions: []string{}, Objects: []string{},
	}
	for _, e := range spec.Exports() {
		name := e.Name
		if e.Version != "" {
			sep := "@"
			if e.Default {
				sep = "@@"
			}
			name += sep + e.Version
		}
		if e.Kind == loader.ExportFunc {
			rep.Functions = append(rep.Functions, name)
		} else {
			rep.Objects = append(rep.Objects, name)
		}
	}
	for t, n := range spec.RelocCounts {
		rep.Relocations[t.String()] = n
	}
	rep.Features = featureNames(spec.Features)
	if err := spec.Loadable(); err != nil {
		rep.AutoBackend, rep.AutoReason = "none", err.Error()
		return rep
	}
	b, reason := spec.ChooseBackend()
	rep.AutoBackend, rep.AutoReason = b.String(), reason
	return rep
}

func featureNames(f loader.Features) []string {
	names := []string{}
	for _, c := range []struct {
		on   bool
		name string
	}{
		{f.TLS, "TLS"}, {f.StaticTLS, "initial-exec TLS"}, {f.IFUNC, "IFUNC"}, {f.RELR, "RELR"},
		{f.CXX, "C++"}, {f.EHFrame, "unwind tables"}, {f.Constructor, "constructors"},
		{f.NoDelete, "NODELETE"}, {f.TextRel, "text relocations"}, {f.ExecStack, "executable stack"},
		{f.CopyReloc, "copy relocations"}, {f.Executable, "executable"},
	} {
		if c.on {
			names = append(names, c.name)
		}
	}
	return names
}

func loadAndCall(spec *loader.Spec, backend loader.Backend, symbol string) (*loadReport, error) {
	im, err := loader.Load(spec, &loader.Options{Backend: backend})
	if err != nil {
		return nil, err
	}
	defer im.Close()
	lr := &loadReport{
		Backend: im.Backend.String(), Fallback: im.Fallback,
		Start: fmt.Sprintf("%#x", im.Base), End: fmt.Sprintf("%#x", im.Base+im.Span),
		LoadTimeNS: int64(im.LoadTime), Dependencies: []depReport{}, Regions: []regionInfo{},
	}
	for _, d := range im.Deps {
		lr.Dependencies = append(lr.Dependencies, depReport{Name: d.Name, How: d.How})
	}
	for _, r := range im.Regions() {
		lr.Regions = append(lr.Regions, regionInfo{Start: fmt.Sprintf("%#x", r.Addr), Size: uint64(r.Size), Prot: protString(r.Prot)})
	}
	if symbol != "" {
		if !exportsFunction(spec, symbol) {
			return nil, fmt.Errorf("%s does not export a function named %s; --call takes an exported function of type const char *(void)", spec.Path, symbol)
		}
		addr, err := im.Lookup(symbol)
		if err != nil {
			return nil, err
		}
		p := ccall.Call0(addr, 0)
		if p == 0 {
			lr.Call = &callReport{Symbol: symbol, Null: true}
			return lr, nil
		}
		str, err := cString(p)
		if err != nil {
			return nil, fmt.Errorf("call %s: %w; --call expects a function of type const char *(void)", symbol, err)
		}
		lr.Call = &callReport{Symbol: symbol, Result: str}
	}
	return lr, nil
}

func exportsFunction(spec *loader.Spec, name string) bool {
	for _, e := range spec.Exports() {
		if e.Name == name && e.Kind == loader.ExportFunc {
			return true
		}
	}
	return false
}

// cString copies a NUL-terminated string of at most 4096 bytes from C
// memory, reading only inside the readable mapping that holds p, so that
// a function returning something other than a string cannot crash the
// command. The image is loaded without a gate, so it is accessible.
func cString(p uintptr) (string, error) {
	end, err := readableEnd(p)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for i := uintptr(0); i < 4096 && p+i < end; i++ {
		c := *(*byte)(unsafe.Add(unsafe.Pointer(nil), p+i))
		if c == 0 {
			break
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

// readableEnd returns the end of the readable mapping in /proc/self/maps
// that contains p.
func readableEnd(p uintptr) (uintptr, error) {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(maps), "\n") {
		var lo, hi uintptr
		var perms string
		if _, err := fmt.Sscanf(line, "%x-%x %s", &lo, &hi, &perms); err != nil {
			continue
		}
		if p >= lo && p < hi {
			if perms[0] != 'r' {
				return 0, fmt.Errorf("the result %#x points into unreadable memory", p)
			}
			return hi, nil
		}
	}
	return 0, fmt.Errorf("the result %#x is not a mapped address", p)
}

func protString(prot int) string {
	s := []byte("---")
	if prot&1 != 0 {
		s[0] = 'r'
	}
	if prot&2 != 0 {
		s[1] = 'w'
	}
	if prot&4 != 0 {
		s[2] = 'x'
	}
	return string(s)
}

func printInspect(w io.Writer, r *inspectReport) {
	fmt.Fprintf(w, "file         %s (%d bytes)\n", r.Path, r.Size)
	fmt.Fprintf(w, "soname       %s\n", orNone(r.Soname))
	fmt.Fprintf(w, "build id     %s\n", orNone(r.BuildID))
	fmt.Fprintf(w, "sha256       %s\n", r.SHA256)
	fmt.Fprintf(w, "needed       %s\n", orNone(strings.Join(r.Needed, ", ")))
	fmt.Fprintf(w, "features     %s\n", orNone(strings.Join(r.Features, ", ")))
	if r.AutoBackend == "none" {
		fmt.Fprintf(w, "auto choice  neither loader: %s\n", r.AutoReason)
	} else if r.AutoReason != "" {
		fmt.Fprintf(w, "auto choice  %s loader: %s\n", r.AutoBackend, r.AutoReason)
	} else {
		fmt.Fprintf(w, "auto choice  %s loader\n", r.AutoBackend)
	}

	types := make([]string, 0, len(r.Relocations))
	for t := range r.Relocations {
		types = append(types, t)
	}
	sort.Strings(types)
	fmt.Fprintf(w, "relocations\n")
	for _, t := range types {
		fmt.Fprintf(w, "  %-22s %d\n", t, r.Relocations[t])
	}
	fmt.Fprintf(w, "functions    %d\n", len(r.Functions))
	for _, f := range r.Functions {
		fmt.Fprintf(w, "  %s\n", f)
	}
	fmt.Fprintf(w, "objects      %d\n", len(r.Objects))
	for _, o := range r.Objects {
		fmt.Fprintf(w, "  %s\n", o)
	}

	if l := r.Load; l != nil {
		fmt.Fprintf(w, "loaded by    %s loader", l.Backend)
		if l.Fallback != "" {
			fmt.Fprintf(w, " (fallback: %s)", l.Fallback)
		}
		fmt.Fprintf(w, "\nplacement    %s-%s\n", l.Start, l.End)
		fmt.Fprintf(w, "load time    %v\n", time.Duration(l.LoadTimeNS))
		for _, rg := range l.Regions {
			fmt.Fprintf(w, "  region %s %7d bytes %s\n", rg.Start, rg.Size, rg.Prot)
		}
		for _, d := range l.Dependencies {
			fmt.Fprintf(w, "  dependency %s: %s\n", d.Name, d.How)
		}
		switch {
		case l.Call != nil && l.Call.Null:
			fmt.Fprintf(w, "%s()      NULL (no string; --call expects a function of type const char *(void))\n", l.Call.Symbol)
		case l.Call != nil:
			fmt.Fprintf(w, "%s()      %q\n", l.Call.Symbol, l.Call.Result)
		}
	}
}
