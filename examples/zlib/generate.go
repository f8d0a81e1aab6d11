package zlib

// The wrapper in zlib_gen.go is generated from the Debian and Ubuntu zlib
// (package zlib1g-dev). TestZlibExampleFresh in package gen fails when it
// is out of date with the generator.
//go:generate go run ../../cmd/libwrapgen -lib /usr/lib/x86_64-linux-gnu/libz.so.1 -header /usr/include/zlib.h -pkg zlib -o .
