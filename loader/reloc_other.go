//go:build !amd64

package loader

import "runtime"

// relocate is implemented for x86-64 only; Parse rejects other machines,
// so this is reached only if that check changes.
func (im *Image) relocate() error {
	return notSupported(im.Spec.Path, "relocation on "+runtime.GOARCH, "the own loader applies x86-64 relocations only")
}
