module github.com/decouple-go/decouple/bench/cgo

go 1.26.8

require (
	github.com/decouple-go/decouple v0.0.0-00010101000000-000000000000
	github.com/ebitengine/purego v0.11.3
	golang.org/x/sys v0.50.0
)

// The benchmarks measure the gate of this working tree.
replace github.com/decouple-go/decouple => ../..
