package loader

import (
	"debug/elf"
	"fmt"
	"unsafe"

	"github.com/decouple-go/decouple/internal/ccall"
)

// relocate applies every relocation record. Symbols the library defines
// bind to its own definitions (as with -Bsymbolic), so one image never
// reaches into another copy of itself. Imports bind through resolveImport.
func (im *Image) relocate() error {
	spec := im.Spec
	first := alignDown(spec.Segments[0].Vaddr, pageSize)
	// resolved caches symbol addresses by index; done marks valid entries,
	// since 0 is a valid address for an undefined weak symbol.
	resolved := make([]uintptr, len(spec.Symbols))
	done := make([]bool, len(spec.Symbols))

	symbolAddr := func(idx uint32) (uintptr, error) {
		if done[idx] {
			return resolved[idx], nil
		}
		sym := spec.Symbols[idx]
		var addr uintptr
		var err error
		switch {
		case !sym.Defined:
			addr, err = im.resolveImport(sym)
		case sym.Abs:
			addr = uintptr(sym.Value)
		case sym.Type == elf.STT_GNU_IFUNC:
			addr = ccall.Call0(im.addr(sym.Value), 0)
		default:
			addr = im.addr(sym.Value)
		}
		if err != nil {
			return 0, err
		}
		resolved[idx], done[idx] = addr, true
		return addr, nil
	}

	var irelative []Reloc
	for i, r := range spec.Relocs {
		slot := (*uint64)(unsafe.Add(im.base, r.Offset-first))
		switch r.Type {
		case elf.R_X86_64_NONE:
		case elf.R_X86_64_RELATIVE:
			if r.Packed {
				*slot += uint64(im.Base) - first
			} else {
				*slot = uint64(im.Base) - first + uint64(r.Addend)
			}
		case elf.R_X86_64_64:
			s, err := symbolAddr(r.Sym)
			if err != nil {
				return fmt.Errorf("relocation %d at %#x: %w", i, r.Offset, err)
			}
			*slot = uint64(s) + uint64(r.Addend)
		case elf.R_X86_64_GLOB_DAT, elf.R_X86_64_JMP_SLOT:
			s, err := symbolAddr(r.Sym)
			if err != nil {
				return fmt.Errorf("relocation %d at %#x: %w", i, r.Offset, err)
			}
			*slot = uint64(s)
		case elf.R_X86_64_IRELATIVE:
			// Resolvers may read data that other relocations fill in,
			// so they run after everything else is in place.
			irelative = append(irelative, r)
		default:
			return notSupported(spec.Path, fmt.Sprintf("relocation type %v", r.Type), fmt.Sprintf("relocation %d at %#x", i, r.Offset))
		}
	}
	for _, r := range irelative {
		slot := (*uint64)(unsafe.Add(im.base, r.Offset-first))
		resolver := im.addr(uint64(r.Addend))
		*slot = uint64(ccall.Call0(resolver, 0))
	}
	return nil
}
