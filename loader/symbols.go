package loader

import (
	"debug/elf"
	"encoding/hex"
)

// symbolCount finds the number of dynamic symbols from DT_HASH or
// DT_GNU_HASH, since the dynamic section does not store it directly.
func (p *parser) symbolCount() (uint64, error) {
	if addr, ok := p.dynVal(elf.DT_HASH); ok {
		off, err := p.fileOffset(addr, 8, "DT_HASH")
		if err != nil {
			return 0, err
		}
		return uint64(p.u32(off + 4)), nil
	}

	// DT_GNU_HASH: the highest symbol index in any bucket, then its chain
	// up to the entry whose low bit marks the end.
	addr, ok := p.dynVal(elf.DT_GNU_HASH)
	if !ok {
		return 0, p.errf(-1, "neither DT_HASH nor DT_GNU_HASH is present, so the symbol count is unknown")
	}
	off, err := p.fileOffset(addr, 16, "DT_GNU_HASH")
	if err != nil {
		return 0, err
	}

	nbuckets := uint64(p.u32(off))
	symoffset := uint64(p.u32(off + 4))
	bloomSize := uint64(p.u32(off + 8))
	if nbuckets > maxSymbols || bloomSize > maxSymbols {
		return 0, p.errf(int64(off), "DT_GNU_HASH has %d buckets and %d bloom words, beyond the limit of %d", nbuckets, bloomSize, maxSymbols)
	}
	buckets := off + 16 + bloomSize*8
	if !p.inFile(buckets, nbuckets*4) {
		return 0, p.errf(int64(off), "DT_GNU_HASH buckets extend past the end of the file")
	}

	var maxIndex uint64
	for i := uint64(0); i < nbuckets; i++ {
		if b := uint64(p.u32(buckets + i*4)); b > maxIndex {
			maxIndex = b
		}
	}
	if maxIndex < symoffset {
		return symoffset, nil
	}
	chains := buckets + nbuckets*4
	for i := maxIndex; ; i++ {
		if i-maxIndex > maxSymbols {
			return 0, p.errf(int64(off), "DT_GNU_HASH chain does not terminate")
		}
		c := chains + (i-symoffset)*4
		if !p.inFile(c, 4) {
			return 0, p.errf(int64(c), "DT_GNU_HASH chain runs past the end of the file")
		}
		if p.u32(c)&1 != 0 {
			return i + 1, nil
		}
	}
}

func (p *parser) parseSymbols() error {
	s := p.spec
	symtab, ok := p.dynVal(elf.DT_SYMTAB)
	if !ok {
		return p.errf(-1, "no DT_SYMTAB in the dynamic section")
	}
	if ent, ok := p.dynVal(elf.DT_SYMENT); ok && ent != 24 {
		return p.errf(-1, "DT_SYMENT is %d, want 24", ent)
	}
	n, err := p.symbolCount()
	if err != nil {
		return err
	}
	if n > maxSymbols {
		return p.errf(-1, "%d dynamic symbols, more than the limit of %d", n, maxSymbols)
	}
	off, err := p.fileOffset(symtab, n*24, "DT_SYMTAB")
	if err != nil {
		return err
	}

	s.Symbols = make([]Symbol, n)
	for i := uint64(0); i < n; i++ {
		e := off + i*24
		info := p.data[e+4]
		shndx := elf.SectionIndex(p.u16(e + 6))
		name, err := p.str(uint64(p.u32(e)), "symbol")
		if err != nil {
			return err
		}
		sym := Symbol{
			Name:    name,
			Value:   p.u64(e + 8),
			Size:    p.u64(e + 16),
			Type:    elf.ST_TYPE(info),
			Bind:    elf.ST_BIND(info),
			Defined: shndx != elf.SHN_UNDEF,
			Abs:     shndx == elf.SHN_ABS,
		}
		if sym.Defined && sym.Type != elf.STT_TLS && shndx != elf.SHN_ABS {
			if _, ok := p.inImage(sym.Value, 0); !ok {
				return p.errf(int64(e), "symbol %q at address %#x lies outside every PT_LOAD segment", name, sym.Value)
			}
		}
		s.Symbols[i] = sym
		if sym.Type == elf.STT_GNU_IFUNC && sym.Defined {
			s.Features.IFUNC = true
		}
	}
	return p.parseVersions(n)
}

// versionTable maps version indexes (at most 0x7fff) to versions. A slice
// is used because every symbol looks its version up.
type versionTable struct {
	entries []symVersion
	defined []bool
}

func (t *versionTable) set(idx uint16, v symVersion) {
	for int(idx) >= len(t.entries) {
		t.entries = append(t.entries, symVersion{})
		t.defined = append(t.defined, false)
	}
	t.entries[idx], t.defined[idx] = v, true
}

func (t *versionTable) get(idx uint16) (symVersion, bool) {
	if int(idx) >= len(t.entries) || !t.defined[idx] {
		return symVersion{}, false
	}
	return t.entries[idx], true
}

type symVersion struct {
	name    string
	library string
	hidden  bool
}

// parseVersions reads DT_VERSYM, DT_VERDEF and DT_VERNEED and returns the
// version of each of the n symbols, or nil when the library has none.
func (p *parser) parseVersions(n uint64) error {
	versym, ok := p.dynVal(elf.DT_VERSYM)
	if !ok {
		return nil
	}
	off, err := p.fileOffset(versym, n*2, "DT_VERSYM")
	if err != nil {
		return err
	}

	// Version indexes 0 and 1 mean local and global (unversioned).
	names := &versionTable{}
	if addr, ok := p.dynVal(elf.DT_VERDEF); ok {
		count, _ := p.dynVal(elf.DT_VERDEFNUM)
		if err := p.parseVerdef(addr, count, names); err != nil {
			return err
		}
	}
	if addr, ok := p.dynVal(elf.DT_VERNEED); ok {
		count, _ := p.dynVal(elf.DT_VERNEEDNUM)
		if err := p.parseVerneed(addr, count, names); err != nil {
			return err
		}
	}

	syms := p.spec.Symbols
	for i := uint64(0); i < n; i++ {
		raw := p.u16(off + i*2)
		idx := raw & 0x7fff
		if idx <= 1 {
			continue
		}
		v, ok := names.get(idx)
		if !ok {
			return p.errf(int64(off+i*2), "symbol %d has version index %d, which no VERDEF or VERNEED entry defines", i, idx)
		}
		syms[i].Version, syms[i].Library, syms[i].Hidden = v.name, v.library, raw&0x8000 != 0
	}
	return nil
}

func (p *parser) parseVerdef(addr, count uint64, names *versionTable) error {
	if count > maxSymbols {
		return p.errf(-1, "DT_VERDEFNUM %d out of range", count)
	}
	off, err := p.fileOffset(addr, 20, "DT_VERDEF")
	if err != nil {
		return err
	}
	for i := uint64(0); i < count; i++ {
		if !p.inFile(off, 20) {
			return p.errf(int64(off), "VERDEF entry %d extends past the end of the file", i)
		}
		flags := p.u16(off + 2)
		ndx := p.u16(off + 4)
		aux := uint64(p.u32(off + 12))
		next := uint64(p.u32(off + 16))
		if !p.inFile(off+aux, 8) {
			return p.errf(int64(off), "VERDEF entry %d auxiliary record at +%#x extends past the end of the file", i, aux)
		}
		name, err := p.str(uint64(p.u32(off+aux)), "version definition")
		if err != nil {
			return err
		}
		if flags&1 == 0 { // VER_FLG_BASE names the file itself
			names.set(ndx&0x7fff, symVersion{name: name})
		}
		if next == 0 {
			break
		}
		off += next
	}
	return nil
}

func (p *parser) parseVerneed(addr, count uint64, names *versionTable) error {
	if count > maxSymbols {
		return p.errf(-1, "DT_VERNEEDNUM %d out of range", count)
	}
	off, err := p.fileOffset(addr, 16, "DT_VERNEED")
	if err != nil {
		return err
	}
	for i := uint64(0); i < count; i++ {
		if !p.inFile(off, 16) {
			return p.errf(int64(off), "VERNEED entry %d extends past the end of the file", i)
		}
		cnt := uint64(p.u16(off + 2))
		file, err := p.str(uint64(p.u32(off+4)), "VERNEED file")
		if err != nil {
			return err
		}
		aux := off + uint64(p.u32(off+8))
		for j := uint64(0); j < cnt; j++ {
			if !p.inFile(aux, 16) {
				return p.errf(int64(aux), "VERNEED auxiliary record %d of %s extends past the end of the file", j, file)
			}
			other := p.u16(aux + 6)
			name, err := p.str(uint64(p.u32(aux+8)), "version requirement")
			if err != nil {
				return err
			}
			names.set(other&0x7fff, symVersion{name: name, library: file})
			next := uint64(p.u32(aux + 12))
			if next == 0 {
				break
			}
			aux += next
		}
		next := uint64(p.u32(off + 12))
		if next == 0 {
			break
		}
		off += next
	}
	return nil
}

func (p *parser) parseRelocations() error {
	s := p.spec
	s.RelocCounts = make(map[elf.R_X86_64]int)

	// Size the slice once: RELA and JMPREL records map one to one, and a
	// RELR word stands for at least one relocation. The sizes are clamped
	// to the file size, since the tables must lie in the file; parseRela
	// and parseRelr reject sizes that do not fit.
	size := uint64(len(p.data))
	rela, _ := p.dynVal(elf.DT_RELASZ)
	plt, _ := p.dynVal(elf.DT_PLTRELSZ)
	relr, _ := p.dynVal(dtRELRSZ)
	if n := min(rela, size)/24 + min(plt, size)/24 + min(relr, size)/8; n <= maxRelocations {
		s.Relocs = make([]Reloc, 0, n)
	}
	if err := p.parseRela(elf.DT_RELA, elf.DT_RELASZ); err != nil {
		return err
	}
	if err := p.parseRelr(); err != nil {
		return err
	}
	if err := p.parseRela(elf.DT_JMPREL, elf.DT_PLTRELSZ); err != nil {
		return err
	}
	for t, n := range p.relocCounts {
		if n > 0 {
			s.RelocCounts[elf.R_X86_64(t)] = n
		}
	}
	for t, n := range p.otherCounts {
		s.RelocCounts[t] = n
	}
	return nil
}

// countReloc counts a relocation by type; an array covers the defined
// x86-64 types, which is much cheaper than a map update per record.
func (p *parser) countReloc(t elf.R_X86_64) {
	if t >= 0 && int(t) < len(p.relocCounts) {
		p.relocCounts[t]++
		return
	}
	if p.otherCounts == nil {
		p.otherCounts = make(map[elf.R_X86_64]int)
	}
	p.otherCounts[t]++
}

func (p *parser) parseRela(tag, sizeTag elf.DynTag) error {
	s := p.spec
	addr, ok := p.dynVal(tag)
	if !ok {
		return nil
	}
	size, _ := p.dynVal(sizeTag)
	if size%24 != 0 {
		return p.errf(-1, "%v size %d is not a multiple of the 24-byte record", sizeTag, size)
	}
	if size/24 > maxRelocations {
		return p.errf(-1, "%v holds %d relocations, more than the limit of %d", tag, size/24, maxRelocations)
	}
	off, err := p.fileOffset(addr, size, tag.String())
	if err != nil {
		return err
	}
	for i := uint64(0); i < size/24; i++ {
		e := off + i*24
		info := p.u64(e + 8)
		r := Reloc{Offset: p.u64(e), Type: elf.R_X86_64(info & 0xffffffff), Sym: uint32(info >> 32), Addend: int64(p.u64(e + 16))}
		if err := p.checkReloc(r, int64(e)); err != nil {
			return err
		}
		s.Relocs = append(s.Relocs, r)
		p.countReloc(r.Type)
	}
	return nil
}

// parseRelr expands DT_RELR packed relative relocations: an even word is
// an address to relocate, an odd word a bitmap of the 63 words that follow
// the last address.
func (p *parser) parseRelr() error {
	s := p.spec
	addr, ok := p.dynVal(dtRELR)
	if !ok {
		return nil
	}
	s.Features.RELR = true

	size, _ := p.dynVal(dtRELRSZ)
	if ent, ok := p.dynVal(dtRELRENT); ok && ent != 8 {
		return p.errf(-1, "DT_RELRENT is %d, want 8", ent)
	}
	if size%8 != 0 || size/8 > maxRelocations {
		return p.errf(-1, "DT_RELRSZ %d is not a multiple of 8 or exceeds the limit", size)
	}
	off, err := p.fileOffset(addr, size, "DT_RELR")
	if err != nil {
		return err
	}

	var where uint64
	started := false
	for i := uint64(0); i < size/8; i++ {
		w := p.u64(off + i*8)
		if w&1 == 0 {
			where = w
			started = true
			if err := p.addRelr(where, int64(off+i*8)); err != nil {
				return err
			}
			where += 8
			continue
		}
		if !started {
			return p.errf(int64(off+i*8), "DT_RELR starts with a bitmap word before any address")
		}
		bits := w >> 1
		for j := uint64(0); bits != 0; j, bits = j+1, bits>>1 {
			if bits&1 != 0 {
				if err := p.addRelr(where+j*8, int64(off+i*8)); err != nil {
					return err
				}
			}
		}
		where += 63 * 8
	}
	return nil
}

func (p *parser) addRelr(where uint64, fileOff int64) error {
	r := Reloc{Offset: where, Type: elf.R_X86_64_RELATIVE, Packed: true}
	if err := p.checkReloc(r, fileOff); err != nil {
		return err
	}
	if len(p.spec.Relocs) >= maxRelocations {
		return p.errf(fileOff, "more than %d relocations", maxRelocations)
	}
	p.spec.Relocs = append(p.spec.Relocs, r)
	p.countReloc(r.Type)
	return nil
}

func (p *parser) checkReloc(r Reloc, fileOff int64) error {
	s := p.spec
	if uint64(r.Sym) >= uint64(len(s.Symbols)) {
		return p.errf(fileOff, "%v relocation at %#x names symbol %d, but the table has %d", r.Type, r.Offset, r.Sym, len(s.Symbols))
	}
	if r.Type == elf.R_X86_64_NONE {
		return nil
	}
	seg, ok := p.inImage(r.Offset, 8)
	if !ok {
		return p.errf(fileOff, "%v relocation target %#x lies outside the image", r.Type, r.Offset)
	}
	if !seg.Writable() {
		s.Features.TextRel = true
	}
	switch r.Type {
	case elf.R_X86_64_IRELATIVE:
		s.Features.IFUNC = true
	case elf.R_X86_64_COPY:
		s.Features.CopyReloc = true
	}
	return nil
}

func (p *parser) parseInitFini() error {
	s := p.spec
	s.Init, _ = p.dynVal(elf.DT_INIT)
	s.Fini, _ = p.dynVal(elf.DT_FINI)
	var err error
	if s.InitArray, err = p.array(elf.DT_INIT_ARRAY, elf.DT_INIT_ARRAYSZ); err != nil {
		return err
	}
	if s.FiniArray, err = p.array(elf.DT_FINI_ARRAY, elf.DT_FINI_ARRAYSZ); err != nil {
		return err
	}
	for _, a := range []uint64{s.Init, s.Fini} {
		if a != 0 {
			if seg, ok := p.inImage(a, 1); !ok || seg.Flags&elf.PF_X == 0 {
				return p.errf(-1, "DT_INIT or DT_FINI address %#x is not in an executable segment", a)
			}
		}
	}
	s.Features.Constructor = s.Init != 0 || len(s.InitArray) > 0
	return nil
}

func (p *parser) array(tag, sizeTag elf.DynTag) ([]uint64, error) {
	addr, ok := p.dynVal(tag)
	if !ok {
		return nil, nil
	}
	size, _ := p.dynVal(sizeTag)
	if size%8 != 0 || size/8 > maxRelocations {
		return nil, p.errf(-1, "%v size %d is not a multiple of 8 or exceeds the limit", sizeTag, size)
	}
	if _, ok := p.inImage(addr, size); !ok {
		return nil, p.errf(-1, "%v at %#x size %d lies outside the image", tag, addr, size)
	}
	out := make([]uint64, size/8)
	for i := range out {
		out[i] = addr + uint64(i)*8
	}
	return out, nil
}

// parseBuildID finds the NT_GNU_BUILD_ID note in the PT_NOTE segments.
// A missing or malformed note leaves BuildID empty; it is informational.
func (p *parser) parseBuildID() {
	phoff := p.u64(32)
	phnum := uint64(p.u16(56))
	for i := uint64(0); i < phnum; i++ {
		ph := phoff + i*56
		if elf.ProgType(p.u32(ph)) != elf.PT_NOTE {
			continue
		}
		off, size := p.u64(ph+8), p.u64(ph+32)
		if !p.inFile(off, size) {
			continue
		}
		for end := off + size; off+12 <= end; {
			namesz, descsz, typ := uint64(p.u32(off)), uint64(p.u32(off+4)), p.u32(off+8)
			name := off + 12
			desc := name + alignUp(namesz, 4)
			next := desc + alignUp(descsz, 4)
			if namesz > size || descsz > size || next > end {
				break
			}
			if typ == 3 && namesz == 4 && string(p.data[name:name+3]) == "GNU" {
				p.spec.BuildID = hex.EncodeToString(p.data[desc : desc+descsz])
				return
			}
			off = next
		}
	}
}

func (p *parser) detectCXX() {
	s := p.spec
	for _, n := range s.Needed {
		if len(n) >= 11 && n[:11] == "libstdc++.s" || len(n) >= 9 && n[:9] == "libc++.so" {
			s.Features.CXX = true
		}
	}
	for _, sym := range s.Symbols {
		switch sym.Name {
		case "__gxx_personality_v0", "__cxa_throw", "__cxa_begin_catch":
			s.Features.CXX = true
		}
	}
}
