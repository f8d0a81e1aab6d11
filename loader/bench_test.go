package loader_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ebitengine/purego"

	"github.com/decouple-go/decouple/internal/testlibs"
	"github.com/decouple-go/decouple/loader"
)

// benchCopies numbers the library copies of BenchmarkLoad across all its
// runs, so that no path repeats within the process.
var benchCopies atomic.Int64

// BenchmarkLoad compares a load and unload with the own loader against the
// system's dlopen and dlclose. libcrypto is DF_1_NODELETE, so dlclose keeps
// it mapped and a second dlopen of the same file would only take a
// reference. Each iteration therefore loads a fresh copy under a new name,
// written outside the timer, for both backends alike.
//
// NOTE: the dlopen copies of libcrypto are never unmapped, so each
// iteration keeps its relocated data (about 400 KiB) and its deleted file
// on disk (about 5 MiB) until the benchmark process exits.
func BenchmarkLoad(b *testing.B) {
	libs := []struct{ soname, pkg string }{
		{"libcrypto.so.3", "libssl3"},
		{"libsqlite3.so.0", "libsqlite3-0"},
	}
	for _, lib := range libs {
		b.Run(lib.soname, func(b *testing.B) {
			path := testlibs.SystemLibrary(b, lib.soname, lib.pkg)
			content, err := os.ReadFile(path)
			if err != nil {
				b.Fatal(err)
			}
			b.Run("own", func(b *testing.B) {
				benchmarkLoadCopies(b, lib.soname, content, func(path string) error {
					im, err := loader.Open(path, ownLoader())
					if err != nil {
						return err
					}
					return im.Close()
				})
			})
			b.Run("dlopen", func(b *testing.B) {
				benchmarkLoadCopies(b, lib.soname, content, func(path string) error {
					h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
					if err != nil {
						return err
					}
					return purego.Dlclose(h)
				})
			})
		})
	}
}

// benchmarkLoadCopies times load on a new copy of content in each
// iteration. Writing and removing the copy are not timed.
func benchmarkLoadCopies(b *testing.B, soname string, content []byte, load func(path string) error) {
	dir := b.TempDir()
	prefix, suffix, _ := strings.Cut(soname, ".so")
	b.StopTimer()
	for range b.N {
		path := filepath.Join(dir, fmt.Sprintf("%s-%d.so%s", prefix, benchCopies.Add(1), suffix))
		if err := os.WriteFile(path, content, 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		err := load(path)
		b.StopTimer()
		if err != nil {
			b.Fatalf("load %s: %v", path, err)
		}
		if err := os.Remove(path); err != nil {
			b.Fatal(err)
		}
	}
}
