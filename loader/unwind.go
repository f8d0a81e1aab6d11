package loader

import (
	"fmt"
	"sync"

	"github.com/ebitengine/purego"

	"github.com/decouple-go/decouple/internal/ccall"
)

// The unwinder of libgcc finds the unwind tables of objects the system
// loader mapped through dl_iterate_phdr, which never lists an image of the
// own loader. A C++ image therefore registers its .eh_frame with
// __register_frame, so that exceptions thrown and caught inside it unwind.
var unwinder struct {
	once       sync.Once
	err        error
	register   uintptr
	deregister uintptr
}

func unwinderFuncs() error {
	unwinder.once.Do(func() {
		h, err := purego.Dlopen("libgcc_s.so.1", purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			unwinder.err = fmt.Errorf("open the unwinder libgcc_s.so.1: %w", err)
			return
		}
		if unwinder.register, err = purego.Dlsym(h, "__register_frame"); err != nil {
			unwinder.err = err
			return
		}
		unwinder.deregister, unwinder.err = purego.Dlsym(h, "__deregister_frame")
	})
	return unwinder.err
}

// registerFrames registers the image's unwind tables with the unwinder.
func (im *Image) registerFrames() error {
	if im.Spec.EHFrame == 0 || !im.Spec.Features.CXX {
		return nil
	}
	if err := unwinderFuncs(); err != nil {
		return err
	}
	im.ehFrame = im.addr(im.Spec.EHFrame)
	ccall.Call1(unwinder.register, 0, im.ehFrame)
	return nil
}

// deregisterFrames undoes registerFrames; it runs after the finalisers and
// before the pages go away, so the unwinder never reads unmapped tables.
func (im *Image) deregisterFrames() {
	if im.ehFrame != 0 {
		ccall.Call1(unwinder.deregister, 0, im.ehFrame)
		im.ehFrame = 0
	}
}
