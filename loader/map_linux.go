package loader

import (
	"debug/elf"
	"errors"
	"fmt"
	"math/rand/v2"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Bounds of the random placement: above the first TiB, which the Go heap
// and the program's own mappings favour, and below 64 TiB, well inside the
// 128 TiB user address space of 4-level paging.
const (
	placementLow   = 1 << 40
	placementHigh  = 1 << 46
	placementTries = 64
)

// reserve maps span bytes of inaccessible address space at a random
// address aligned to align, refusing to replace any existing mapping.
func reserve(span, align uint64) (unsafe.Pointer, error) {
	const flags = unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_NORESERVE | unix.MAP_FIXED_NOREPLACE
	for range placementTries {
		hint := placementLow + rand.Uint64N((placementHigh-placementLow-span)/align)*align
		p, err := unix.MmapPtr(-1, 0, *(*unsafe.Pointer)(unsafe.Pointer(&hint)), uintptr(span), unix.PROT_NONE, flags)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reserve %d bytes of address space: %w", span, err)
		}
		if uintptr(p) != uintptr(hint) {
			// A kernel older than 4.17 treats MAP_FIXED_NOREPLACE as a hint.
			unix.MunmapPtr(p, uintptr(span))
			continue
		}
		return p, nil
	}
	return nil, fmt.Errorf("reserve %d bytes of address space: no free range found in %d random tries", span, placementTries)
}

func protFlags(f elf.ProgFlag) int {
	prot := 0
	if f&elf.PF_R != 0 {
		prot |= unix.PROT_READ
	}
	if f&elf.PF_W != 0 {
		prot |= unix.PROT_WRITE
	}
	if f&elf.PF_X != 0 {
		prot |= unix.PROT_EXEC
	}
	return prot
}

// mapSegments maps every PT_LOAD segment over the reservation. Code and
// read-only data are private file mappings, so their pages are shared with
// the page cache. Writable segments are private file mappings too, whose
// pages turn into anonymous memory only where relocations or the library
// write; with DataInMemfd they are copied into a memfd instead.
func (im *Image) mapSegments(opts *Options) error {
	spec := im.Spec
	fd := int(im.file.Fd())
	first := alignDown(spec.Segments[0].Vaddr, pageSize)

	var memfdSize int64
	if opts.DataInMemfd {
		for _, seg := range spec.Segments {
			if seg.Writable() || seg.Memsz > seg.Filesz {
				memfdSize += int64(alignUp(seg.Vaddr+seg.Memsz, pageSize) - alignDown(seg.Vaddr, pageSize))
			}
		}
		if memfdSize > 0 {
			mfd, err := unix.MemfdCreate("decouple-data", unix.MFD_CLOEXEC)
			if err != nil {
				return fmt.Errorf("create memfd for writable segments: %w", err)
			}
			im.memfd = mfd
			if err := unix.Ftruncate(mfd, memfdSize); err != nil {
				return fmt.Errorf("size memfd to %d bytes: %w", memfdSize, err)
			}
		}
	}

	var memfdOff int64
	for i, seg := range spec.Segments {
		pageStart := alignDown(seg.Vaddr, pageSize)
		fileEnd := alignUp(seg.Vaddr+seg.Filesz, pageSize)
		memEnd := alignUp(seg.Vaddr+seg.Memsz, pageSize)
		addr := unsafe.Add(im.base, pageStart-first)
		prot := protFlags(seg.Flags)

		if im.memfd >= 0 && (seg.Writable() || seg.Memsz > seg.Filesz) {
			size := memEnd - pageStart
			head := seg.Vaddr - pageStart
			buf := make([]byte, head+seg.Filesz)
			if _, err := im.file.ReadAt(buf[head:], int64(seg.Offset)); err != nil {
				return fmt.Errorf("segment %d: read %d bytes at file offset %#x: %w", i, seg.Filesz, seg.Offset, err)
			}
			if _, err := unix.Pwrite(im.memfd, buf, memfdOff); err != nil {
				return fmt.Errorf("segment %d: copy into memfd: %w", i, err)
			}
			if _, err := unix.MmapPtr(im.memfd, memfdOff, addr, uintptr(size), prot, unix.MAP_SHARED|unix.MAP_FIXED); err != nil {
				return fmt.Errorf("segment %d: map %#x bytes from memfd: %w", i, size, err)
			}
			im.addRegion(Region{Addr: uintptr(addr), Size: uintptr(size), Prot: prot, fd: im.memfd, offset: memfdOff, shared: true})
			memfdOff += int64(size)
			continue
		}

		if fileEnd > pageStart && seg.Filesz > 0 {
			size := fileEnd - pageStart
			off := int64(alignDown(seg.Offset, pageSize))
			if _, err := unix.MmapPtr(fd, off, addr, uintptr(size), prot, unix.MAP_PRIVATE|unix.MAP_FIXED); err != nil {
				return fmt.Errorf("segment %d: map %#x bytes at file offset %#x: %w", i, size, off, err)
			}
			im.addRegion(Region{Addr: uintptr(addr), Size: uintptr(size), Prot: prot, fd: fd, offset: off})
		} else {
			fileEnd = pageStart
		}
		if seg.Memsz > seg.Filesz {
			if err := im.zeroFill(seg, prot, first, fileEnd, memEnd); err != nil {
				return fmt.Errorf("segment %d: %w", i, err)
			}
		}
	}
	return nil
}

// zeroFill clears the bytes between a segment's file part and its memory
// size: the tail of the last file page, and whole anonymous pages after it.
func (im *Image) zeroFill(seg Segment, prot int, first, fileEnd, memEnd uint64) error {
	bssStart := seg.Vaddr + seg.Filesz
	if tail := fileEnd - bssStart; seg.Filesz > 0 && tail > 0 && tail < pageSize {
		page := unsafe.Add(im.base, alignDown(bssStart, pageSize)-first)
		if prot&unix.PROT_WRITE == 0 {
			if err := mprotect(uintptr(page), pageSize, prot|unix.PROT_WRITE); err != nil {
				return fmt.Errorf("make the last file page writable to clear it: %w", err)
			}
		}
		clear(unsafe.Slice((*byte)(unsafe.Add(im.base, bssStart-first)), tail))
		if prot&unix.PROT_WRITE == 0 {
			if err := mprotect(uintptr(page), pageSize, prot); err != nil {
				return err
			}
		}
	}
	if memEnd > fileEnd {
		addr := unsafe.Add(im.base, fileEnd-first)
		size := memEnd - fileEnd
		if _, err := unix.MmapPtr(-1, 0, addr, uintptr(size), prot, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED); err != nil {
			return fmt.Errorf("map %#x bytes of zero pages: %w", size, err)
		}
		im.addRegion(Region{Addr: uintptr(addr), Size: uintptr(size), Prot: prot, fd: -1})
	}
	return nil
}

// addRegion appends r, trimming the previous region where a segment starts
// on the page where the last one ended (the later mapping replaced it).
func (im *Image) addRegion(r Region) {
	if n := len(im.regions); n > 0 {
		prev := &im.regions[n-1]
		if end := prev.Addr + prev.Size; end > r.Addr {
			prev.Size = r.Addr - prev.Addr
			if prev.Size == 0 {
				im.regions = im.regions[:n-1]
			}
		}
	}
	im.regions = append(im.regions, r)
}

// applyRelro makes the PT_GNU_RELRO range read-only after relocation, and
// splits the regions so that a gate restores that protection on entry.
func (im *Image) applyRelro() error {
	start, end := im.Spec.Relro[0], im.Spec.Relro[1]
	if end <= start {
		return nil
	}
	first := alignDown(im.Spec.Segments[0].Vaddr, pageSize)
	lo := im.Base + uintptr(start-first)
	hi := im.Base + uintptr(end-first)
	if err := mprotect(lo, hi-lo, unix.PROT_READ); err != nil {
		return fmt.Errorf("apply PT_GNU_RELRO at %#x+%#x: %w", lo, hi-lo, err)
	}
	im.markReadOnly(lo, hi)
	return nil
}

// markReadOnly splits the regions so that the pages in [lo, hi) are
// recorded as PROT_READ (the PT_GNU_RELRO range), keeping each piece's
// file or memfd offset.
func (im *Image) markReadOnly(lo, hi uintptr) {
	var out []Region
	for _, r := range im.regions {
		rEnd := r.Addr + r.Size
		if rEnd <= lo || r.Addr >= hi {
			out = append(out, r)
			continue
		}
		piece := func(start, end uintptr, prot int) Region {
			p := r
			p.Addr, p.Size, p.Prot = start, end-start, prot
			if r.fd >= 0 {
				p.offset = r.offset + int64(start-r.Addr)
			}
			return p
		}
		if r.Addr < lo {
			out = append(out, piece(r.Addr, lo, r.Prot))
		}
		out = append(out, piece(max(r.Addr, lo), min(rEnd, hi), unix.PROT_READ))
		if rEnd > hi {
			out = append(out, piece(hi, rEnd, r.Prot))
		}
	}
	im.regions = out
}

func mprotect(addr, size uintptr, prot int) error {
	_, _, e := unix.Syscall(unix.SYS_MPROTECT, addr, size, uintptr(prot))
	if e != 0 {
		return e
	}
	return nil
}

// Map maps the region again at its address from the file or memfd it was
// loaded from, with its protection. It fails for anonymous regions and
// for private writable ones, whose contents would be lost.
func (r Region) Map() (uintptr, error) {
	if !r.Remappable() {
		return 0, fmt.Errorf("region %#x+%#x cannot be mapped again: it contains private data that only exists in memory; load with DataInMemfd", r.Addr, r.Size)
	}
	flags := unix.MAP_PRIVATE | unix.MAP_FIXED
	if r.shared {
		flags = unix.MAP_SHARED | unix.MAP_FIXED
	}
	addr := r.Addr
	p, err := unix.MmapPtr(r.fd, r.offset, *(*unsafe.Pointer)(unsafe.Pointer(&addr)), r.Size, r.Prot, flags)
	if err != nil {
		return 0, fmt.Errorf("map region %#x+%#x: %w", r.Addr, r.Size, err)
	}
	return uintptr(p), nil
}

// Unmap replaces every page of the image with inaccessible, unbacked
// address space, which keeps the range reserved so that no other mapping
// can take it. Regions come back with Map; only remappable ones survive.
func (im *Image) Unmap() error {
	const flags = unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_NORESERVE | unix.MAP_FIXED
	if _, err := unix.MmapPtr(-1, 0, im.base, im.Span, unix.PROT_NONE, flags); err != nil {
		return fmt.Errorf("unmap image %#x+%#x: %w", im.Base, im.Span, err)
	}
	for _, d := range im.Deps {
		if d.Image != nil {
			if err := d.Image.Unmap(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Protect sets the protection of every region to prot, or to the region's
// own protection when prot is negative, tagging the pages with a memory
// protection key when pkey is not negative.
func (im *Image) Protect(prot, pkey int) error {
	for _, r := range im.regions {
		p := prot
		if p < 0 {
			p = r.Prot
		}
		var e unix.Errno
		if pkey >= 0 {
			_, _, e = unix.Syscall6(unix.SYS_PKEY_MPROTECT, r.Addr, r.Size, uintptr(p), uintptr(pkey), 0, 0)
		} else {
			_, _, e = unix.Syscall(unix.SYS_MPROTECT, r.Addr, r.Size, uintptr(p))
		}
		if e != 0 {
			return fmt.Errorf("protect region %#x+%#x: %w", r.Addr, r.Size, e)
		}
	}
	for _, d := range im.Deps {
		if d.Image != nil {
			if err := d.Image.Protect(prot, pkey); err != nil {
				return err
			}
		}
	}
	return nil
}

// Seal makes the image inaccessible between calls and returns the number
// of mprotect calls it made. An own-loader image is one reserved range, so
// one call covers it. A system-loaded image is protected region by region,
// because the system loader may leave holes between segments, and the
// pages the system loader and new threads read stay readable (see
// markKeepReadable).
func (im *Image) Seal() (int, error) {
	if im.Backend != BackendSystem {
		if err := mprotect(im.Base, im.Span, unix.PROT_NONE); err != nil {
			return 0, fmt.Errorf("protect image %#x+%#x: %w", im.Base, im.Span, err)
		}
		n := 1
		for _, d := range im.Deps {
			if d.Image != nil {
				k, err := d.Image.Seal()
				n += k
				if err != nil {
					return n, err
				}
			}
		}
		return n, nil
	}
	// The pages kept readable are never made inaccessible, not even for a
	// moment: another thread may be creating a thread or loading a
	// library at the same time and read them.
	n := 0
	for _, r := range im.regions {
		for _, piece := range subtractRanges(r.Addr, r.Addr+r.Size, im.keepReadable) {
			if err := mprotect(piece[0], piece[1]-piece[0], unix.PROT_NONE); err != nil {
				return n, fmt.Errorf("protect region %#x+%#x: %w", piece[0], piece[1]-piece[0], err)
			}
			n++
		}
	}
	for _, k := range im.keepReadable {
		if err := mprotect(k[0], k[1]-k[0], unix.PROT_READ); err != nil {
			return n, fmt.Errorf("keep %#x+%#x readable for the system loader: %w", k[0], k[1]-k[0], err)
		}
		n++
	}
	return n, nil
}

// subtractRanges returns the parts of [lo, hi) outside the sorted,
// disjoint ranges in cut.
func subtractRanges(lo, hi uintptr, cut [][2]uintptr) [][2]uintptr {
	var out [][2]uintptr
	for _, c := range cut {
		if c[1] <= lo || c[0] >= hi {
			continue
		}
		if c[0] > lo {
			out = append(out, [2]uintptr{lo, c[0]})
		}
		lo = max(lo, c[1])
	}
	if lo < hi {
		out = append(out, [2]uintptr{lo, hi})
	}
	return out
}
