package loader

import (
	"errors"
	"testing"

	"github.com/decouple-go/decouple/internal/ccall"
	"github.com/decouple-go/decouple/internal/testlibs"
)

func TestAutoFallsBackForTLS(t *testing.T) {
	for _, name := range []string{"libtlsgd.so", "libtlsdesc.so", "libtlsie.so"} {
		t.Run(name, func(t *testing.T) {
			path := testlibs.Path(t, name)
			if _, err := Open(path, &Options{Backend: BackendOwn}); !errors.Is(err, ErrNotSupported) {
				t.Fatalf("own loader: error %v, want one matching ErrNotSupported", err)
			}
			im, err := Open(path, nil)
			if err != nil {
				t.Fatalf("auto backend: %v", err)
			}
			defer im.Close()
			if im.Backend != BackendSystem || im.Fallback == "" {
				t.Fatalf("Backend = %v, Fallback = %q; want system with a reason", im.Backend, im.Fallback)
			}
			next, err := im.Lookup("tg_next")
			if err != nil {
				t.Fatal(err)
			}
			a, b := ccall.Call0(next, 0), ccall.Call0(next, 0)
			if b != a+1 {
				t.Errorf("tg_next() returned %d then %d, want consecutive values", a, b)
			}
		})
	}
}
