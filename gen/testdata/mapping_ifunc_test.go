//go:build linux && amd64

// This file tests m_ifunc, an STT_GNU_IFUNC symbol, in the package
// generated from mapping.h. TestGeneratedIFuncRuns in package gen copies it
// next to the generated file in a temporary module and runs it.

package mapping

import (
	"testing"

	"github.com/decouple-go/decouple/trampoline"
)

func TestIFunc(t *testing.T) {
	for _, mode := range []trampoline.Mode{trampoline.ModeOpen, trampoline.ModeProtect} {
		t.Run(mode.String(), func(t *testing.T) {
			l, err := Open("", &trampoline.Options{Mode: mode})
			if err != nil {
				t.Fatalf("Open(%q, %v): %v", DefaultPath, mode, err)
			}
			defer l.Close()
			if got := l.M_ifunc(5); got != 15 {
				t.Errorf("m_ifunc(5) = %d, want 15", got)
			}
		})
	}
}
