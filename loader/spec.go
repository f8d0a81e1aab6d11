package loader

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Limits that keep a hostile file from making the parser allocate or loop
// without bound. Real libraries stay far below each of them.
const (
	maxFileSize    = 1 << 30 // bytes read from one file
	maxImageSpan   = 1 << 32 // bytes of address space one image may reserve
	maxProgHeaders = 1024
	maxDynEntries  = 1 << 16
	maxSymbols     = 1 << 22
	maxRelocations = 1 << 21
)

// Dynamic tags that debug/elf does not name.
const (
	dtRELRSZ  elf.DynTag = 35
	dtRELR    elf.DynTag = 36
	dtRELRENT elf.DynTag = 37
)

const pageSize = 4096

// Segment is one PT_LOAD program header.
type Segment struct {
	Vaddr  uint64 // virtual address relative to the image base
	Memsz  uint64
	Offset uint64 // file offset of the first byte
	Filesz uint64
	Align  uint64
	Flags  elf.ProgFlag
}

// Writable reports whether the segment is mapped writable.
func (s Segment) Writable() bool { return s.Flags&elf.PF_W != 0 }

// Symbol is one entry of the dynamic symbol table.
type Symbol struct {
	Name    string
	Value   uint64 // address relative to the image base; 0 for imports
	Size    uint64
	Type    elf.SymType
	Bind    elf.SymBind
	Defined bool   // st_shndx != SHN_UNDEF
	Version string // version name from VERSYM, "" when unversioned
	Hidden  bool   // a non-default version (name@VER rather than name@@VER)
	Library string // for imports: the file VERNEED names for Version
	Abs     bool   // st_shndx is SHN_ABS: a constant, such as the symbol ld emits for each version definition
}

// Reloc is one relocation record, from RELA, JMPREL or expanded RELR.
type Reloc struct {
	Offset uint64 // address relative to the image base
	Addend int64
	Type   elf.R_X86_64
	Sym    uint32 // index into Spec.Symbols; 0 for none
	Packed bool   // from DT_RELR: the addend is the word stored at Offset
}

// Features lists properties of a library that decide how it can be loaded.
type Features struct {
	TLS         bool // has a PT_TLS segment
	StaticTLS   bool // DF_STATIC_TLS: uses the initial-exec TLS model
	IFUNC       bool // STT_GNU_IFUNC symbols or IRELATIVE relocations
	RELR        bool // packed relative relocations (DT_RELR)
	CXX         bool // links the C++ runtime or its exception personality
	TextRel     bool // relocations against read-only segments
	ExecStack   bool // PT_GNU_STACK requests an executable stack
	CopyReloc   bool // R_X86_64_COPY relocations
	NoDelete    bool // DF_1_NODELETE: the library expects never to be unloaded
	EHFrame     bool // has PT_GNU_EH_FRAME unwind tables
	Executable  bool // has PT_INTERP: a position-independent executable
	Constructor bool // DT_INIT or DT_INIT_ARRAY present
}

// Spec is the parsed and validated content of an ELF shared object.
// It depends only on the file, never on the running process.
type Spec struct {
	Path    string
	Soname  string
	BuildID string // hex of the NT_GNU_BUILD_ID note, "" when absent
	sha256  string // hex digest of the whole file, computed on first use
	Size    int64
	Needed  []string

	Segments []Segment
	Span     uint64      // bytes from the lowest to the highest page of the PT_LOAD segments
	Relro    [2]uint64   // PT_GNU_RELRO pages: start rounded down, end rounded down; equal when absent
	TLS      *elf.Prog64 // PT_TLS program header, nil when absent
	Features Features

	Symbols []Symbol
	Relocs  []Reloc // RELA, RELR and JMPREL records in that order
	// RelocCounts counts relocation records by type.
	RelocCounts map[elf.R_X86_64]int

	// EHFrame is the address of the .eh_frame unwind tables, found
	// through PT_GNU_EH_FRAME; 0 when absent.
	EHFrame uint64

	Init      uint64   // DT_INIT, 0 when absent
	InitArray []uint64 // addresses of the DT_INIT_ARRAY slots
	Fini      uint64   // DT_FINI
	FiniArray []uint64 // addresses of the DT_FINI_ARRAY slots

	// sysReads are the address ranges the system loader reads in every
	// later dlopen of any library, if it loaded this one: the ELF and
	// program headers, the dynamic section and its string table.
	sysReads [][2]uint64

	data        []byte   // the file's bytes, mapped by Parse
	file        *os.File // the parsed file, open until Close; nil from ParseBytes
	mapping     *specMapping
	shaOnce     sync.Once
	exportsOnce sync.Once
	exports     map[string][]int // symbol indexes by name, built on first lookup
}

// Parse reads the shared object at path and validates it as a library the
// loaders can map: an x86-64, little-endian ELF64 file of type ET_DYN.
// It maps nothing and runs nothing. Errors match ErrFormat for malformed
// files; features the own loader rejects are recorded in Features and
// reported by CheckOwnLoader, not by Parse.
func Parse(path string) (*Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, formatErrorf(path, -1, "not a regular file (mode %v)", st.Mode())
	}
	if st.Size() > maxFileSize {
		f.Close()
		return nil, formatErrorf(path, -1, "file size %d exceeds the limit of %d bytes", st.Size(), maxFileSize)
	}
	if st.Size() == 0 {
		f.Close()
		return nil, formatErrorf(path, 0, "empty file")
	}

	// The file is mapped rather than read: parsing touches only the
	// headers, symbols and relocations, and nothing is copied.
	data, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("parse %s: map the file: %w", path, err)
	}
	spec, err := ParseBytes(path, data)
	if err != nil {
		unix.Munmap(data)
		f.Close()
		return nil, err
	}

	// The spec keeps the file open, so that Load maps the very file that
	// was parsed even if the path is replaced in between. Close releases
	// both, and a cleanup releases them for specs that are never closed.
	spec.file = f
	spec.mapping = &specMapping{data: data, file: f}
	runtime.AddCleanup(spec, (*specMapping).release, spec.mapping)
	return spec, nil
}

// specMapping is the mapped file and descriptor behind a Spec from Parse.
type specMapping struct {
	once sync.Once
	data []byte
	file *os.File
}

func (m *specMapping) release() {
	m.once.Do(func() {
		unix.Munmap(m.data)
		m.file.Close()
	})
}

// Close unmaps the file and closes the descriptor that Parse kept. Images
// already loaded from the spec are not affected, but Load of a closed
// spec fails, and SHA256 returns "" unless it was called before Close.
// Close is idempotent.
func (s *Spec) Close() error {
	if s.mapping == nil {
		return nil
	}
	s.shaOnce.Do(func() {}) // a digest not computed yet cannot be any more
	s.mapping.release()
	s.file = nil
	s.data = nil
	return nil
}

// ParseBytes parses a library held in memory; name is used in errors and
// as the Spec's Path.
func ParseBytes(name string, data []byte) (spec *Spec, err error) {
	// The parser checks every offset it reads, but a missed check must
	// never take the process down: turn a panic into a format error.
	// A mapped file that shrinks while it is parsed raises SIGBUS, which
	// SetPanicOnFault turns into a panic here too.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			spec = nil
			err = formatErrorf(name, -1, "internal parser error on malformed input: %v", r)
		}
	}()

	p := &parser{name: name, data: data, spec: &Spec{Path: name, Size: int64(len(data)), data: data}}
	if err := p.parse(); err != nil {
		return nil, err
	}
	return p.spec, nil
}

// SHA256 returns the hex SHA-256 digest of the parsed bytes. It is
// computed on first use, because hashing a large library costs more than
// parsing it.
// It returns "" if the mapped file was truncated since it was parsed, or
// if the spec was closed before the first call.
func (s *Spec) SHA256() string {
	s.shaOnce.Do(func() {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() { _ = recover() }()
		sum := sha256.Sum256(s.data)
		s.sha256 = hex.EncodeToString(sum[:])
	})
	return s.sha256
}

type parser struct {
	name string
	data []byte
	spec *Spec

	dyn    map[elf.DynTag][]uint64
	strtab string // the dynamic string table; names are substrings of it

	relocCounts [64]int
	otherCounts map[elf.R_X86_64]int
	lastSeg     int // index of the segment inImage matched last
	ehFrameHdr  uint64
}

func (p *parser) errf(off int64, format string, args ...any) error {
	return formatErrorf(p.name, off, format, args...)
}

func (p *parser) u16(off uint64) uint16 { return binary.LittleEndian.Uint16(p.data[off:]) }
func (p *parser) u32(off uint64) uint32 { return binary.LittleEndian.Uint32(p.data[off:]) }
func (p *parser) u64(off uint64) uint64 { return binary.LittleEndian.Uint64(p.data[off:]) }

// inFile reports whether [off, off+size) lies inside the file.
func (p *parser) inFile(off, size uint64) bool {
	n := uint64(len(p.data))
	return off <= n && size <= n-off
}

func (p *parser) parse() error {
	if err := p.parseHeader(); err != nil {
		return err
	}
	if err := p.parseDynamic(); err != nil {
		return err
	}
	if err := p.parseSymbols(); err != nil {
		return err
	}
	if err := p.parseRelocations(); err != nil {
		return err
	}
	if err := p.parseInitFini(); err != nil {
		return err
	}
	p.parseBuildID()
	p.detectCXX()
	return p.parseEHFrameHdr()
}

// parseEHFrameHdr reads the address of .eh_frame from the header that
// PT_GNU_EH_FRAME points to (.eh_frame_hdr): a version byte, the pointer
// encoding, two more encodings, then the encoded pointer.
func (p *parser) parseEHFrameHdr() error {
	if p.ehFrameHdr == 0 {
		return nil
	}
	off, err := p.fileOffset(p.ehFrameHdr, 8, "PT_GNU_EH_FRAME")
	if err != nil {
		return err
	}
	if p.data[off] != 1 {
		return p.errf(int64(off), ".eh_frame_hdr version %d, want 1", p.data[off])
	}
	field := p.ehFrameHdr + 4
	switch enc := p.data[off+1]; enc {
	case 0x1b: // DW_EH_PE_pcrel | DW_EH_PE_sdata4
		p.spec.EHFrame = field + uint64(int64(int32(p.u32(off+4))))
	case 0x03: // DW_EH_PE_udata4, relative to the image base in a shared object
		p.spec.EHFrame = uint64(p.u32(off + 4))
	default:
		return notSupported(p.name, fmt.Sprintf(".eh_frame_hdr pointer encoding %#x", enc), "only pcrel sdata4 and udata4 are decoded")
	}
	if _, ok := p.inImage(p.spec.EHFrame, 4); !ok {
		return p.errf(int64(off), ".eh_frame address %#x lies outside the image", p.spec.EHFrame)
	}
	return nil
}

func (p *parser) parseHeader() error {
	if len(p.data) == 0 {
		return p.errf(0, "the file is empty")
	}
	if len(p.data) < 4 || !bytes.Equal(p.data[:4], []byte(elf.ELFMAG)) {
		return p.errf(0, "not an ELF file (no \\x7fELF magic)")
	}
	if len(p.data) < 64 {
		return p.errf(0, "truncated ELF header: file has %d bytes, the header needs 64", len(p.data))
	}
	switch elf.Class(p.data[elf.EI_CLASS]) {
	case elf.ELFCLASS64:
	case elf.ELFCLASS32:
		return notSupported(p.name, "32-bit ELF (ELFCLASS32)", "only x86-64 (ELFCLASS64) libraries load in this process")
	default:
		return p.errf(int64(elf.EI_CLASS), "invalid ELF class %d", p.data[elf.EI_CLASS])
	}
	if elf.Data(p.data[elf.EI_DATA]) != elf.ELFDATA2LSB {
		return notSupported(p.name, fmt.Sprintf("byte order %v", elf.Data(p.data[elf.EI_DATA])), "only little-endian x86-64 libraries load in this process")
	}
	if v := elf.Version(p.data[elf.EI_VERSION]); v != elf.EV_CURRENT {
		return p.errf(int64(elf.EI_VERSION), "invalid ELF version %d", v)
	}

	typ := elf.Type(p.u16(16))
	machine := elf.Machine(p.u16(18))
	if machine != elf.EM_X86_64 {
		return notSupported(p.name, fmt.Sprintf("machine %v", machine), "this process runs on x86-64 (EM_X86_64)")
	}
	switch typ {
	case elf.ET_DYN:
	case elf.ET_EXEC:
		return notSupported(p.name, "fixed-address executable (ET_EXEC)", "only shared objects (ET_DYN) can be loaded")
	default:
		return p.errf(16, "file type %v is not a shared object (ET_DYN)", typ)
	}

	phoff := p.u64(32)
	phentsize := uint64(p.u16(54))
	phnum := uint64(p.u16(56))
	if phentsize != 56 {
		return p.errf(54, "program header entry size %d, want 56", phentsize)
	}
	if phnum == 0 || phnum > maxProgHeaders {
		return p.errf(56, "program header count %d out of range 1..%d", phnum, maxProgHeaders)
	}
	if !p.inFile(phoff, phnum*phentsize) {
		return p.errf(32, "program headers at %#x (%d entries) extend past the end of the %d-byte file", phoff, phnum, len(p.data))
	}
	// The loader needs no section headers, but a table that ends past the
	// end of the file shows the file was cut short, for example while it
	// was being copied.
	shoff, shentsize, shnum := p.u64(40), uint64(p.u16(58)), uint64(p.u16(60))
	if shoff != 0 && shnum != 0 && !p.inFile(shoff, shnum*shentsize) {
		return p.errf(40, "section headers at %#x (%d entries of %d bytes) extend past the end of the %d-byte file: the file is truncated", shoff, shnum, shentsize, len(p.data))
	}
	return p.parseProgHeaders(phoff, phnum)
}

func (p *parser) parseProgHeaders(phoff, phnum uint64) error {
	s := p.spec
	var dynamic *elf.Prog64
	var lastEnd uint64
	for i := uint64(0); i < phnum; i++ {
		off := phoff + i*56
		ph := elf.Prog64{
			Type:   p.u32(off),
			Flags:  p.u32(off + 4),
			Off:    p.u64(off + 8),
			Vaddr:  p.u64(off + 16),
			Paddr:  p.u64(off + 24),
			Filesz: p.u64(off + 32),
			Memsz:  p.u64(off + 40),
			Align:  p.u64(off + 48),
		}
		switch elf.ProgType(ph.Type) {
		case elf.PT_LOAD:
			if ph.Filesz > ph.Memsz {
				return p.errf(int64(off), "PT_LOAD %d: file size %#x exceeds memory size %#x", len(s.Segments), ph.Filesz, ph.Memsz)
			}
			if !p.inFile(ph.Off, ph.Filesz) {
				return p.errf(int64(off), "PT_LOAD %d: bytes %#x..%#x lie outside the %d-byte file", len(s.Segments), ph.Off, ph.Off+ph.Filesz, len(p.data))
			}
			if ph.Vaddr%pageSize != ph.Off%pageSize {
				return p.errf(int64(off), "PT_LOAD %d: address %#x and file offset %#x differ modulo the page size", len(s.Segments), ph.Vaddr, ph.Off)
			}
			if ph.Memsz > maxImageSpan || ph.Vaddr > maxImageSpan {
				return p.errf(int64(off), "PT_LOAD %d: address %#x size %#x exceeds the %#x-byte limit", len(s.Segments), ph.Vaddr, ph.Memsz, uint64(maxImageSpan))
			}
			if ph.Align > 1 && ph.Align&(ph.Align-1) != 0 {
				return p.errf(int64(off), "PT_LOAD %d: alignment %#x is not a power of two", len(s.Segments), ph.Align)
			}
			if len(s.Segments) > 0 && ph.Vaddr < lastEnd {
				return p.errf(int64(off), "PT_LOAD %d at %#x overlaps or precedes the previous segment ending at %#x", len(s.Segments), ph.Vaddr, lastEnd)
			}
			lastEnd = ph.Vaddr + ph.Memsz
			s.Segments = append(s.Segments, Segment{Vaddr: ph.Vaddr, Memsz: ph.Memsz, Offset: ph.Off, Filesz: ph.Filesz, Align: ph.Align, Flags: elf.ProgFlag(ph.Flags)})
		case elf.PT_DYNAMIC:
			d := ph
			dynamic = &d
		case elf.PT_GNU_RELRO:
			// As glibc does: from the page holding the start to the last
			// whole page; the range begins the writable segment.
			start := alignDown(ph.Vaddr, pageSize)
			end := alignDown(ph.Vaddr+ph.Memsz, pageSize)
			if end > start {
				s.Relro = [2]uint64{start, end}
			}
		case elf.PT_GNU_STACK:
			s.Features.ExecStack = elf.ProgFlag(ph.Flags)&elf.PF_X != 0
		case elf.PT_TLS:
			t := ph
			s.TLS = &t
			s.Features.TLS = true
		case elf.PT_GNU_EH_FRAME:
			s.Features.EHFrame = true
			p.ehFrameHdr = ph.Vaddr
		case elf.PT_INTERP:
			s.Features.Executable = true
		}
	}
	if len(s.Segments) == 0 {
		return p.errf(32, "no PT_LOAD segment")
	}
	first, last := s.Segments[0], s.Segments[len(s.Segments)-1]
	s.Span = alignUp(last.Vaddr+last.Memsz, pageSize) - alignDown(first.Vaddr, pageSize)
	if s.Span > maxImageSpan {
		return p.errf(32, "segments span %#x bytes, more than the %#x-byte limit", s.Span, uint64(maxImageSpan))
	}
	if dynamic == nil {
		return p.errf(32, "no PT_DYNAMIC segment: a statically linked file cannot be loaded as a library")
	}
	for _, seg := range s.Segments {
		headers := phoff + phnum*56
		if seg.Offset == 0 && seg.Filesz >= headers {
			s.sysReads = append(s.sysReads, [2]uint64{seg.Vaddr, seg.Vaddr + headers})
			break
		}
	}
	s.sysReads = append(s.sysReads, [2]uint64{dynamic.Vaddr, dynamic.Vaddr + dynamic.Memsz})
	if !p.inFile(dynamic.Off, dynamic.Filesz) {
		return p.errf(int64(dynamic.Off), "PT_DYNAMIC at %#x size %#x extends past the end of the file", dynamic.Off, dynamic.Filesz)
	}
	return p.readDynamic(dynamic)
}

func (p *parser) readDynamic(ph *elf.Prog64) error {
	p.dyn = make(map[elf.DynTag][]uint64)
	n := ph.Filesz / 16
	if n > maxDynEntries {
		return p.errf(int64(ph.Off), "PT_DYNAMIC has %d entries, more than the limit of %d", n, maxDynEntries)
	}
	for i := uint64(0); i < n; i++ {
		off := ph.Off + i*16
		tag := elf.DynTag(p.u64(off))
		val := p.u64(off + 8)
		if tag == elf.DT_NULL {
			return nil
		}
		p.dyn[tag] = append(p.dyn[tag], val)
	}
	return p.errf(int64(ph.Off), "PT_DYNAMIC has no DT_NULL terminator")
}

// dynVal returns the single value of a dynamic tag.
func (p *parser) dynVal(tag elf.DynTag) (uint64, bool) {
	v := p.dyn[tag]
	if len(v) == 0 {
		return 0, false
	}
	return v[0], true
}

// fileOffset translates an address to the file offset holding its bytes,
// requiring size bytes to come from the file.
func (p *parser) fileOffset(addr, size uint64, what string) (uint64, error) {
	for _, seg := range p.spec.Segments {
		if addr >= seg.Vaddr && addr-seg.Vaddr <= seg.Filesz && size <= seg.Filesz-(addr-seg.Vaddr) {
			return seg.Offset + (addr - seg.Vaddr), nil
		}
	}
	return 0, p.errf(-1, "%s at address %#x (%d bytes) is not backed by any PT_LOAD segment's file bytes", what, addr, size)
}

// inImage reports whether [addr, addr+size) lies in some PT_LOAD segment.
func (p *parser) inImage(addr, size uint64) (*Segment, bool) {
	segs := p.spec.Segments
	// Relocations come sorted by address, so the last match usually
	// matches again.
	if p.lastSeg < len(segs) && segs[p.lastSeg].contains(addr, size) {
		return &segs[p.lastSeg], true
	}
	for i := range segs {
		if segs[i].contains(addr, size) {
			p.lastSeg = i
			return &segs[i], true
		}
	}
	return nil, false
}

// contains reports whether [addr, addr+size) lies in the segment's memory.
func (s *Segment) contains(addr, size uint64) bool {
	return addr >= s.Vaddr && addr-s.Vaddr <= s.Memsz && size <= s.Memsz-(addr-s.Vaddr)
}

func (p *parser) parseDynamic() error {
	s := p.spec
	if _, ok := p.dynVal(elf.DT_REL); ok {
		return p.errf(-1, "DT_REL relocations (without addends) are invalid on x86-64")
	}
	if v, ok := p.dynVal(elf.DT_PLTREL); ok && elf.DynTag(v) != elf.DT_RELA {
		return p.errf(-1, "DT_PLTREL is %v, want DT_RELA", elf.DynTag(v))
	}
	if _, ok := p.dynVal(elf.DT_TEXTREL); ok {
		s.Features.TextRel = true
	}
	if v, ok := p.dynVal(elf.DT_FLAGS); ok {
		if elf.DynFlag(v)&elf.DF_TEXTREL != 0 {
			s.Features.TextRel = true
		}
		if elf.DynFlag(v)&elf.DF_STATIC_TLS != 0 {
			s.Features.StaticTLS = true
		}
	}
	if v, ok := p.dynVal(elf.DT_FLAGS_1); ok && elf.DynFlag1(v)&elf.DF_1_NODELETE != 0 {
		s.Features.NoDelete = true
	}
	if _, ok := p.dynVal(elf.DT_PREINIT_ARRAY); ok {
		s.Features.Executable = true
	}

	strtab, ok := p.dynVal(elf.DT_STRTAB)
	if !ok {
		return p.errf(-1, "no DT_STRTAB in the dynamic section")
	}
	strsz, _ := p.dynVal(elf.DT_STRSZ)
	strOff, err := p.fileOffset(strtab, strsz, "DT_STRTAB")
	if err != nil {
		return err
	}
	p.strtab = string(p.data[strOff : strOff+strsz])
	s.sysReads = append(s.sysReads, [2]uint64{strtab, strtab + strsz})

	for _, v := range p.dyn[elf.DT_NEEDED] {
		name, err := p.str(v, "DT_NEEDED")
		if err != nil {
			return err
		}
		s.Needed = append(s.Needed, name)
	}
	if v, ok := p.dynVal(elf.DT_SONAME); ok {
		if s.Soname, err = p.str(v, "DT_SONAME"); err != nil {
			return err
		}
	}
	return nil
}

// str reads a NUL-terminated string at offset off of the dynamic string table.
func (p *parser) str(off uint64, what string) (string, error) {
	if off >= uint64(len(p.strtab)) {
		return "", p.errf(-1, "%s name offset %#x is outside the %d-byte string table", what, off, len(p.strtab))
	}
	b := p.strtab[off:]
	i := strings.IndexByte(b, 0)
	if i < 0 {
		return "", p.errf(-1, "%s name at string table offset %#x has no NUL terminator", what, off)
	}
	return b[:i], nil
}

func alignDown(v, a uint64) uint64 { return v &^ (a - 1) }
func alignUp(v, a uint64) uint64   { return (v + a - 1) &^ (a - 1) }

// Exports lists the functions and objects the library defines for others,
// sorted by name and version.
func (s *Spec) Exports() []Export {
	var out []Export
	for _, sym := range s.Symbols {
		if !sym.Defined || sym.Abs || sym.Name == "" || (sym.Bind != elf.STB_GLOBAL && sym.Bind != elf.STB_WEAK) {
			continue
		}
		var kind ExportKind
		switch sym.Type {
		case elf.STT_FUNC, elf.STT_GNU_IFUNC:
			kind = ExportFunc
		case elf.STT_OBJECT, elf.STT_COMMON:
			kind = ExportObject
		default:
			continue
		}
		out = append(out, Export{Name: sym.Name, Version: sym.Version, Default: !sym.Hidden, Kind: kind, Size: sym.Size})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// ExportKind distinguishes functions from data objects.
type ExportKind int

const (
	ExportFunc ExportKind = iota
	ExportObject
)

func (k ExportKind) String() string {
	if k == ExportFunc {
		return "func"
	}
	return "object"
}

// Export is one symbol a library defines for others.
type Export struct {
	Name    string
	Version string // "" when unversioned
	Default bool   // the version a lookup without a version finds
	Kind    ExportKind
	Size    uint64
}
