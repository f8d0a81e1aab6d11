package loader_test

// Smoke tests of real system libraries loaded by the own loader. Each test
// checks the library's output against an independent implementation: the
// Go standard library where it has one, otherwise a command-line tool.

import (
	"bytes"
	"cmp"
	"compress/bzip2"
	"compress/zlib"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"hash/adler32"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/decouple-go/decouple/internal/ccall"
	"github.com/decouple-go/decouple/internal/testlibs"
	"github.com/decouple-go/decouple/loader"
)

// sampleInput returns n bytes of deterministic, moderately compressible
// data: words from a small vocabulary mixed with random bytes.
func sampleInput(n int, seed uint64) []byte {
	words := []string{"decouple ", "loader ", "segment ", "relocation ", "gate ", "\n", "0123456789 "}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := cBytes(0)[:0]
	for len(b) < n {
		if rng.IntN(8) == 0 {
			b = append(b, byte(rng.Uint32()))
			continue
		}
		b = append(b, words[rng.IntN(len(words))]...)
	}
	return b[:n]
}

// roundTripSizes are the input sizes of the compression round trips. The
// largest runs only without -race, where Go's decoders run at full speed.
func roundTripSizes() []int {
	sizes := []int{0, 1, 64 << 10}
	if !raceEnabled && !testing.Short() {
		sizes = append(sizes, 10<<20)
	}
	return sizes
}

func TestZlibRoundTrip(t *testing.T) {
	im := openOwn(t, testlibs.SystemLibrary(t, "libz.so.1", "zlib1g"))
	compressBound := lookup(t, im, "compressBound")
	compress := lookup(t, im, "compress")
	uncompress := lookup(t, im, "uncompress")

	const zOK = 0
	for _, n := range roundTripSizes() {
		t.Run(strconv.Itoa(n)+"B", func(t *testing.T) {
			src := cBytes(n)
			copy(src, sampleInput(n, uint64(n)))

			bound := int(ccall.Call1(compressBound, 0, uintptr(n)))
			packed := cBytes(bound)
			packedLen := cValue(uint64(bound))
			rc := int32(ccall.Call4(compress, 0, addr(packed), uintptr(unsafe.Pointer(packedLen)), addr(src), uintptr(n)))
			runtime.KeepAlive(src)
			runtime.KeepAlive(packed)
			runtime.KeepAlive(packedLen)
			if rc != zOK {
				t.Fatalf("compress returned %d, want Z_OK (0)", rc)
			}
			packed = packed[:*packedLen]

			zr, err := zlib.NewReader(bytes.NewReader(packed))
			if err != nil {
				t.Fatalf("compress/zlib rejects the output of compress: %v", err)
			}
			got, err := io.ReadAll(zr)
			if err != nil {
				t.Fatalf("compress/zlib cannot decode the output of compress: %v", err)
			}
			if !bytes.Equal(got, src) {
				t.Fatalf("compress/zlib decoded %d bytes that differ from the %d input bytes", len(got), n)
			}

			// The other direction: Go compresses, the library decompresses.
			var goPacked bytes.Buffer
			zw := zlib.NewWriter(&goPacked)
			zw.Write(src)
			zw.Close()
			in := cBytes(goPacked.Len())
			copy(in, goPacked.Bytes())
			out := cBytes(n)
			outLen := cValue(uint64(n))
			rc = int32(ccall.Call4(uncompress, 0, addr(out), uintptr(unsafe.Pointer(outLen)), addr(in), uintptr(len(in))))
			runtime.KeepAlive(in)
			runtime.KeepAlive(out)
			runtime.KeepAlive(outLen)
			if rc != zOK {
				t.Fatalf("uncompress of compress/zlib output returned %d, want Z_OK (0)", rc)
			}
			if *outLen != uint64(n) {
				t.Fatalf("uncompress wrote %d bytes, want %d", *outLen, n)
			}
			if !bytes.Equal(out, src) {
				t.Fatal("uncompress output differs from the input compress/zlib compressed")
			}
		})
	}
}

func TestZlibChecksums(t *testing.T) {
	im := openOwn(t, testlibs.SystemLibrary(t, "libz.so.1", "zlib1g"))
	crc := lookup(t, im, "crc32")
	adler := lookup(t, im, "adler32")

	for _, n := range []int{0, 1, 3, 4096, 1 << 20} {
		data := cBytes(n)
		copy(data, sampleInput(n, 7))

		got := uint32(ccall.Call3(crc, 0, 0, addr(data), uintptr(n)))
		runtime.KeepAlive(data)
		if want := crc32.ChecksumIEEE(data); got != want {
			t.Errorf("crc32(0, %d bytes) = %#08x, want %#08x from hash/crc32", n, got, want)
		}

		got = uint32(ccall.Call3(adler, 0, 1, addr(data), uintptr(n)))
		runtime.KeepAlive(data)
		if want := adler32.Checksum(data); got != want {
			t.Errorf("adler32(1, %d bytes) = %#08x, want %#08x from hash/adler32", n, got, want)
		}
	}
}

func TestBzip2Compress(t *testing.T) {
	im := openOwn(t, testlibs.SystemLibrary(t, "libbz2.so.1.0", "libbz2-1.0"))
	compress := lookup(t, im, "BZ2_bzBuffToBuffCompress")
	decompress := lookup(t, im, "BZ2_bzBuffToBuffDecompress")

	const bzOK = 0
	for _, n := range []int{1, 64 << 10, 1 << 20} {
		t.Run(strconv.Itoa(n)+"B", func(t *testing.T) {
			src := cBytes(n)
			copy(src, sampleInput(n, 11))
			// The bzip2 manual sizes the output buffer at 1% more than
			// the input plus 600 bytes.
			capacity := n + n/100 + 600
			packed := cBytes(capacity)
			packedLen := cValue(uint32(capacity))
			rc := int32(ccall.Call7(compress, 0, addr(packed), uintptr(unsafe.Pointer(packedLen)), addr(src), uintptr(n), 9, 0, 0))
			runtime.KeepAlive(src)
			runtime.KeepAlive(packed)
			runtime.KeepAlive(packedLen)
			if rc != bzOK {
				t.Fatalf("BZ2_bzBuffToBuffCompress returned %d, want BZ_OK (0)", rc)
			}
			packed = packed[:*packedLen]

			got, err := io.ReadAll(bzip2.NewReader(bytes.NewReader(packed)))
			if err != nil {
				t.Fatalf("compress/bzip2 cannot decode the output: %v", err)
			}
			if !bytes.Equal(got, src) {
				t.Fatalf("compress/bzip2 decoded %d bytes that differ from the %d input bytes", len(got), n)
			}

			out := cBytes(n)
			outLen := cValue(uint32(n))
			rc = int32(ccall.Call6(decompress, 0, addr(out), uintptr(unsafe.Pointer(outLen)), addr(packed), uintptr(len(packed)), 0, 0))
			runtime.KeepAlive(out)
			runtime.KeepAlive(outLen)
			runtime.KeepAlive(packed)
			if rc != bzOK {
				t.Fatalf("BZ2_bzBuffToBuffDecompress returned %d, want BZ_OK (0)", rc)
			}
			if *outLen != uint32(n) || !bytes.Equal(out, src) {
				t.Fatalf("BZ2_bzBuffToBuffDecompress gave %d bytes, want the %d input bytes", *outLen, n)
			}
		})
	}
}

// versionFromFileName returns the version in the name of the file a
// soname link points to, such as "5.4.1" for liblzma.so.5 ->
// liblzma.so.5.4.1, or "" when the name carries no three-part version.
func versionFromFileName(t *testing.T, path string) string {
	t.Helper()
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatalf("resolve %s: %v", path, err)
	}
	m := regexp.MustCompile(`\.so\.(\d+\.\d+\.\d+)$`).FindStringSubmatch(filepath.Base(real))
	if m == nil {
		return ""
	}
	return m[1]
}

func TestLzmaRoundTrip(t *testing.T) {
	path := testlibs.SystemLibrary(t, "liblzma.so.5", "liblzma5")
	im := openOwn(t, path)
	encode := lookup(t, im, "lzma_easy_buffer_encode")
	decode := lookup(t, im, "lzma_stream_buffer_decode")
	bound := lookup(t, im, "lzma_stream_buffer_bound")
	versionString := lookup(t, im, "lzma_version_string")
	versionNumber := lookup(t, im, "lzma_version_number")

	// lzma_version_number encodes major*10000000 + minor*10000 +
	// patch*10 + stability.
	version := goString(ccall.Call0(versionString, 0))
	n := uint32(ccall.Call0(versionNumber, 0))
	want := fmt.Sprintf("%d.%d.%d", n/10000000, n/10000%1000, n/10%1000)
	if !strings.HasPrefix(version, want) {
		t.Errorf("lzma_version_string() = %q, want a string starting with %q from lzma_version_number() = %d", version, want, n)
	}
	if fromName := versionFromFileName(t, path); fromName != "" && version != fromName {
		t.Errorf("lzma_version_string() = %q, want %q from the file name", version, fromName)
	}

	const (
		lzmaOK         = 0
		lzmaCheckCRC64 = 4
		lzmaPreset     = 6
	)
	size := 256 << 10
	src := cBytes(size)
	copy(src, sampleInput(size, 13))
	capacity := int(ccall.Call1(bound, 0, uintptr(size)))
	packed := cBytes(capacity)
	packedLen := cValue(uint64(0))
	rc := ccall.Call8(encode, 0, lzmaPreset, lzmaCheckCRC64, 0, addr(src), uintptr(size), addr(packed), uintptr(unsafe.Pointer(packedLen)), uintptr(capacity))
	runtime.KeepAlive(src)
	runtime.KeepAlive(packed)
	runtime.KeepAlive(packedLen)
	if rc != lzmaOK {
		t.Fatalf("lzma_easy_buffer_encode returned %d, want LZMA_OK (0)", rc)
	}
	packed = packed[:*packedLen]

	// The .xz stream header is the magic, two flag bytes and the CRC32 of
	// the flags; the footer ends with "YZ".
	if !bytes.HasPrefix(packed, []byte("\xfd7zXZ\x00")) {
		t.Fatalf("encoded stream starts with % x, want the .xz magic fd 37 7a 58 5a 00", packed[:min(6, len(packed))])
	}
	if got, want := binary.LittleEndian.Uint32(packed[8:12]), crc32.ChecksumIEEE(packed[6:8]); got != want {
		t.Errorf("stream header CRC32 = %#08x, want %#08x from hash/crc32", got, want)
	}
	if !bytes.HasSuffix(packed, []byte("YZ")) {
		t.Errorf("encoded stream ends with % x, want the footer magic 59 5a", packed[len(packed)-2:])
	}
	if xz, err := exec.LookPath("xz"); err == nil {
		cmd := exec.Command(xz, "--decompress", "--stdout")
		cmd.Stdin = bytes.NewReader(packed)
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("xz cannot decode the output of lzma_easy_buffer_encode: %v", err)
		}
		if !bytes.Equal(got, src) {
			t.Fatalf("xz decoded %d bytes that differ from the %d input bytes", len(got), size)
		}
	} else {
		t.Log("xz not found (Debian package xz-utils); checked the stream framing only")
	}

	memlimit := cValue(^uint64(0))
	inPos := cValue(uint64(0))
	out := cBytes(size)
	outPos := cValue(uint64(0))
	rc = ccall.Call9(decode, 0, uintptr(unsafe.Pointer(memlimit)), 0, 0, addr(packed), uintptr(unsafe.Pointer(inPos)), uintptr(len(packed)), addr(out), uintptr(unsafe.Pointer(outPos)), uintptr(size))
	runtime.KeepAlive(memlimit)
	runtime.KeepAlive(packed)
	runtime.KeepAlive(inPos)
	runtime.KeepAlive(out)
	runtime.KeepAlive(outPos)
	if rc != lzmaOK {
		t.Fatalf("lzma_stream_buffer_decode returned %d, want LZMA_OK (0)", rc)
	}
	if *inPos != uint64(len(packed)) {
		t.Errorf("lzma_stream_buffer_decode consumed %d bytes, want all %d", *inPos, len(packed))
	}
	if *outPos != uint64(size) || !bytes.Equal(out, src) {
		t.Errorf("lzma_stream_buffer_decode gave %d bytes, want the %d input bytes", *outPos, size)
	}
}

// zstdDecodeWithGo decodes a zstd frame with the decoder of the Go
// standard library. That decoder is internal, but debug/elf uses it for
// sections compressed with ELFCOMPRESS_ZSTD, so the frame goes into such a
// section of a minimal ELF relocatable file.
func zstdDecodeWithGo(frame []byte, size int) ([]byte, error) {
	const (
		elfcompressZstd = 2
		shstrtab        = "\x00.shstrtab\x00.zdata\x00"
		ehdrSize        = 64
		chdrSize        = 24
		shdrSize        = 64
	)
	dataOff := uint64(ehdrSize + len(shstrtab))
	shoff := dataOff + uint64(chdrSize+len(frame))
	shoff = (shoff + 7) &^ 7

	var b bytes.Buffer
	hdr := elf.Header64{
		Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Shoff: shoff, Ehsize: ehdrSize, Shentsize: shdrSize, Shnum: 3, Shstrndx: 1,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	binary.Write(&b, binary.LittleEndian, hdr)
	b.WriteString(shstrtab)
	binary.Write(&b, binary.LittleEndian, elf.Chdr64{Type: elfcompressZstd, Size: uint64(size), Addralign: 1})
	b.Write(frame)
	b.Write(make([]byte, shoff-uint64(b.Len())))
	sections := []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_STRTAB), Off: ehdrSize, Size: uint64(len(shstrtab)), Addralign: 1},
		{Name: 11, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_COMPRESSED), Off: dataOff, Size: uint64(chdrSize + len(frame)), Addralign: 1},
	}
	binary.Write(&b, binary.LittleEndian, sections)

	f, err := elf.NewFile(bytes.NewReader(b.Bytes()))
	if err != nil {
		return nil, err
	}
	return f.Section(".zdata").Data()
}

func TestZstdRoundTrip(t *testing.T) {
	path := testlibs.SystemLibrary(t, "libzstd.so.1", "libzstd1")
	im := openOwn(t, path)
	compressBound := lookup(t, im, "ZSTD_compressBound")
	compress := lookup(t, im, "ZSTD_compress")
	decompress := lookup(t, im, "ZSTD_decompress")
	isError := lookup(t, im, "ZSTD_isError")
	versionNumber := lookup(t, im, "ZSTD_versionNumber")

	// ZSTD_versionNumber is major*10000 + minor*100 + release.
	v := int(ccall.Call0(versionNumber, 0))
	if v < 10000 || v >= 20000 {
		t.Errorf("ZSTD_versionNumber() = %d, want a 1.x.y version (10000..19999)", v)
	}
	if fromName := versionFromFileName(t, path); fromName != "" {
		if got := fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100); got != fromName {
			t.Errorf("ZSTD_versionNumber() = %d (%s), want %s from the file name", v, got, fromName)
		}
	}

	for _, n := range []int{1, 64 << 10, 1 << 20} {
		t.Run(strconv.Itoa(n)+"B", func(t *testing.T) {
			src := cBytes(n)
			copy(src, sampleInput(n, 17))
			capacity := int(ccall.Call1(compressBound, 0, uintptr(n)))
			packed := cBytes(capacity)
			r := ccall.Call5(compress, 0, addr(packed), uintptr(capacity), addr(src), uintptr(n), 3)
			runtime.KeepAlive(src)
			runtime.KeepAlive(packed)
			if ccall.Call1(isError, 0, r)&0xff != 0 {
				t.Fatalf("ZSTD_compress returned error code %d", int64(r))
			}
			packed = packed[:r]

			got, err := zstdDecodeWithGo(packed, n)
			if err != nil {
				t.Fatalf("the Go zstd decoder (through debug/elf) rejects the output of ZSTD_compress: %v", err)
			}
			if !bytes.Equal(got, src) {
				t.Fatalf("the Go zstd decoder gave %d bytes that differ from the %d input bytes", len(got), n)
			}

			out := cBytes(n)
			r = ccall.Call4(decompress, 0, addr(out), uintptr(n), addr(packed), uintptr(len(packed)))
			runtime.KeepAlive(out)
			runtime.KeepAlive(packed)
			if ccall.Call1(isError, 0, r)&0xff != 0 {
				t.Fatalf("ZSTD_decompress returned error code %d", int64(r))
			}
			if int(r) != n || !bytes.Equal(out, src) {
				t.Fatalf("ZSTD_decompress gave %d bytes, want the %d input bytes", r, n)
			}
		})
	}
}

// sampleXML returns a document with nested elements, attributes, text,
// comments, CDATA and character references, but no namespaces, so that
// expat and encoding/xml report the same element names.
func sampleXML() string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<library name="decouple" version="2">` + "\n")
	for i := range 200 {
		fmt.Fprintf(&b, `  <book id="b%d" lang="en"><title>Title &amp; %d</title>`, i, i)
		if i%3 == 0 {
			b.WriteString(`<note><![CDATA[<not an element>]]></note>`)
		}
		if i%5 == 0 {
			b.WriteString(`<!-- comment --><empty/>`)
		}
		fmt.Fprintf(&b, `<price cur="EUR">%d.%02d &#8364;</price></book>`+"\n", i, i%100)
	}
	b.WriteString(`</library>` + "\n")
	return b.String()
}

// expatEvents collects what the expat element handlers report. The
// handlers are created once per process because purego never frees a
// callback, so they write to this package-level state.
var expatEvents struct {
	mu    sync.Mutex
	names []string
	attrs int
	ends  int
}

var expatHandlers = sync.OnceValues(func() (start, end uintptr) {
	start = purego.NewCallback(func(userData, name, atts unsafe.Pointer) {
		expatEvents.mu.Lock()
		defer expatEvents.mu.Unlock()
		expatEvents.names = append(expatEvents.names, goString(uintptr(name)))
		// atts is a NULL-terminated array of name, value pointers.
		for i := 0; *(*unsafe.Pointer)(unsafe.Add(atts, i*8)) != nil; i += 2 {
			expatEvents.attrs++
		}
	})
	end = purego.NewCallback(func(userData, name unsafe.Pointer) {
		expatEvents.mu.Lock()
		defer expatEvents.mu.Unlock()
		expatEvents.ends++
	})
	return start, end
})

func TestExpatElementHandlers(t *testing.T) {
	im := openOwn(t, testlibs.SystemLibrary(t, "libexpat.so.1", "libexpat1"))
	parserCreate := lookup(t, im, "XML_ParserCreate")
	setElementHandler := lookup(t, im, "XML_SetElementHandler")
	parse := lookup(t, im, "XML_Parse")
	parserFree := lookup(t, im, "XML_ParserFree")

	doc := sampleXML()
	var wantNames []string
	wantAttrs := 0
	dec := xml.NewDecoder(strings.NewReader(doc))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("encoding/xml: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			wantNames = append(wantNames, se.Name.Local)
			wantAttrs += len(se.Attr)
		}
	}

	expatEvents.mu.Lock()
	expatEvents.names, expatEvents.attrs, expatEvents.ends = nil, 0, 0
	expatEvents.mu.Unlock()

	start, end := expatHandlers()
	parser := ccall.Call1(parserCreate, 0, 0)
	if parser == 0 {
		t.Fatal("XML_ParserCreate returned NULL")
	}
	defer ccall.Call1(parserFree, 0, parser)
	ccall.Call3(setElementHandler, 0, parser, start, end)
	text := cString(doc)
	const xmlStatusOK = 1
	status := int32(ccall.Call4(parse, 0, parser, addr(text), uintptr(len(doc)), 1))
	runtime.KeepAlive(text)
	if status != xmlStatusOK {
		t.Fatalf("XML_Parse returned %d, want XML_STATUS_OK (1)", status)
	}

	expatEvents.mu.Lock()
	defer expatEvents.mu.Unlock()
	if len(expatEvents.names) != len(wantNames) {
		t.Fatalf("expat reported %d start elements, want %d from encoding/xml", len(expatEvents.names), len(wantNames))
	}
	for i, name := range expatEvents.names {
		if name != wantNames[i] {
			t.Fatalf("start element %d is %q, want %q from encoding/xml", i, name, wantNames[i])
		}
	}
	if expatEvents.ends != len(wantNames) {
		t.Errorf("expat reported %d end elements, want %d", expatEvents.ends, len(wantNames))
	}
	if expatEvents.attrs != wantAttrs {
		t.Errorf("expat reported %d attributes, want %d from encoding/xml", expatEvents.attrs, wantAttrs)
	}
}

// sqliteRows collects the rows that the sqlite3_exec callback receives.
// A nil entry stands for SQL NULL.
var sqliteRows struct {
	mu   sync.Mutex
	rows [][]*string
	cols []string
}

var sqliteRowCallback = sync.OnceValue(func() uintptr {
	return purego.NewCallback(func(arg unsafe.Pointer, ncol int32, values, names unsafe.Pointer) int32 {
		sqliteRows.mu.Lock()
		defer sqliteRows.mu.Unlock()
		row := make([]*string, ncol)
		cols := make([]string, ncol)
		for i := range int(ncol) {
			if v := *(*uintptr)(unsafe.Add(values, i*8)); v != 0 {
				s := goString(v)
				row[i] = &s
			}
			cols[i] = goString(*(*uintptr)(unsafe.Add(names, i*8)))
		}
		sqliteRows.rows = append(sqliteRows.rows, row)
		sqliteRows.cols = cols
		return 0
	})
})

func TestSqliteExec(t *testing.T) {
	im := openOwn(t, testlibs.SystemLibrary(t, "libsqlite3.so.0", "libsqlite3-0"))
	open := lookup(t, im, "sqlite3_open")
	closeDB := lookup(t, im, "sqlite3_close")
	execSQL := lookup(t, im, "sqlite3_exec")
	free := lookup(t, im, "sqlite3_free")

	const sqliteOK = 0
	name := cString(":memory:")
	db := cValue(uintptr(0))
	rc := int32(ccall.Call2(open, 0, addr(name), uintptr(unsafe.Pointer(db))))
	runtime.KeepAlive(name)
	runtime.KeepAlive(db)
	if rc != sqliteOK {
		t.Fatalf("sqlite3_open(:memory:) returned %d, want SQLITE_OK (0)", rc)
	}
	defer func() {
		if rc := int32(ccall.Call1(closeDB, 0, *db)); rc != sqliteOK {
			t.Errorf("sqlite3_close returned %d, want SQLITE_OK (0)", rc)
		}
	}()

	exec := func(sql string, callback uintptr) {
		t.Helper()
		text := cString(sql)
		errmsg := cValue(uintptr(0))
		rc := int32(ccall.Call5(execSQL, 0, *db, addr(text), callback, 0, uintptr(unsafe.Pointer(errmsg))))
		runtime.KeepAlive(text)
		runtime.KeepAlive(errmsg)
		if rc != sqliteOK {
			msg := goString(*errmsg)
			ccall.Call1(free, 0, *errmsg)
			t.Fatalf("sqlite3_exec(%q) returned %d (%s), want SQLITE_OK (0)", sql, rc, msg)
		}
	}

	type row struct {
		id   int
		name *string
	}
	str := func(s string) *string { return &s }
	want := []row{
		{1, str("alpha")},
		{2, str("it's quoted")},
		{3, nil},
		{4, str("ünïcode ✓")},
		{-5, str("")},
	}
	for i := range 100 {
		want = append(want, row{100 + i, str(fmt.Sprintf("row %d", i))})
	}

	exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)", 0)
	var insert strings.Builder
	insert.WriteString("BEGIN;")
	for _, r := range want {
		value := "NULL"
		if r.name != nil {
			value = "'" + strings.ReplaceAll(*r.name, "'", "''") + "'"
		}
		fmt.Fprintf(&insert, "INSERT INTO t (id, name) VALUES (%d, %s);", r.id, value)
	}
	insert.WriteString("COMMIT;")
	exec(insert.String(), 0)

	sqliteRows.mu.Lock()
	sqliteRows.rows, sqliteRows.cols = nil, nil
	sqliteRows.mu.Unlock()
	exec("SELECT id, name FROM t ORDER BY rowid", sqliteRowCallback())

	sqliteRows.mu.Lock()
	defer sqliteRows.mu.Unlock()
	if got := strings.Join(sqliteRows.cols, ","); got != "id,name" {
		t.Errorf("column names %q, want \"id,name\"", got)
	}
	// ORDER BY rowid sorts by id, which is an alias of the rowid.
	byID := slices.Clone(want)
	slices.SortFunc(byID, func(a, b row) int { return cmp.Compare(a.id, b.id) })
	if len(sqliteRows.rows) != len(byID) {
		t.Fatalf("SELECT returned %d rows, want %d", len(sqliteRows.rows), len(byID))
	}
	for i, got := range sqliteRows.rows {
		w := byID[i]
		if got[0] == nil || *got[0] != strconv.Itoa(w.id) {
			t.Errorf("row %d: id %v, want %d", i, deref(got[0]), w.id)
		}
		switch {
		case w.name == nil && got[1] != nil:
			t.Errorf("row %d: name %q, want NULL", i, *got[1])
		case w.name != nil && (got[1] == nil || *got[1] != *w.name):
			t.Errorf("row %d: name %s, want %q", i, deref(got[1]), *w.name)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "NULL"
	}
	return strconv.Quote(*s)
}

func TestCryptoSHA256(t *testing.T) {
	path := testlibs.SystemLibrary(t, "libcrypto.so.3", "libssl3")
	im := openOwn(t, path)
	sha := lookup(t, im, "SHA256")
	evpDigest := lookup(t, im, "EVP_Digest")
	evpSHA256 := lookup(t, im, "EVP_sha256")

	// Hash a real file: the library itself.
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data := cBytes(len(content))
	copy(data, content)
	want := sha256.Sum256(data)

	md := cBytes(sha256.Size)
	ret := ccall.Call3(sha, 0, addr(data), uintptr(len(data)), addr(md))
	runtime.KeepAlive(data)
	runtime.KeepAlive(md)
	if ret != addr(md) {
		t.Errorf("SHA256 returned %#x, want the output buffer %#x", ret, addr(md))
	}
	if !bytes.Equal(md, want[:]) {
		t.Errorf("SHA256(%s) = %x, want %x from crypto/sha256", path, md, want)
	}

	md = cBytes(64)
	mdLen := cValue(uint32(0))
	md256 := ccall.Call0(evpSHA256, 0)
	ok := int32(ccall.Call6(evpDigest, 0, addr(data), uintptr(len(data)), addr(md), uintptr(unsafe.Pointer(mdLen)), md256, 0))
	runtime.KeepAlive(data)
	runtime.KeepAlive(md)
	runtime.KeepAlive(mdLen)
	if ok != 1 {
		t.Fatalf("EVP_Digest returned %d, want 1", ok)
	}
	if *mdLen != sha256.Size || !bytes.Equal(md[:*mdLen], want[:]) {
		t.Errorf("EVP_Digest(%s, EVP_sha256()) = %x, want %x from crypto/sha256", path, md[:*mdLen], want)
	}
}

func TestCryptoAESGCMSeal(t *testing.T) {
	im := openOwn(t, testlibs.SystemLibrary(t, "libcrypto.so.3", "libssl3"))
	ctxNew := lookup(t, im, "EVP_CIPHER_CTX_new")
	ctxFree := lookup(t, im, "EVP_CIPHER_CTX_free")
	ctxCtrl := lookup(t, im, "EVP_CIPHER_CTX_ctrl")
	aes256GCM := lookup(t, im, "EVP_aes_256_gcm")
	encryptInit := lookup(t, im, "EVP_EncryptInit_ex")
	encryptUpdate := lookup(t, im, "EVP_EncryptUpdate")
	encryptFinal := lookup(t, im, "EVP_EncryptFinal_ex")

	// Control codes from openssl/evp.h (OpenSSL 3.0).
	const (
		ctrlGCMSetIVLen = 0x9
		ctrlGCMGetTag   = 0x10
		tagSize         = 16
	)
	key := cBytes(32)
	iv := cBytes(12)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range key {
		key[i] = byte(rng.Uint32())
	}
	for i := range iv {
		iv[i] = byte(rng.Uint32())
	}
	aad := cString("header")
	aad = aad[:len(aad)-1]
	plaintext := cBytes(10000)
	copy(plaintext, sampleInput(len(plaintext), 23))

	ctx := ccall.Call0(ctxNew, 0)
	if ctx == 0 {
		t.Fatal("EVP_CIPHER_CTX_new returned NULL")
	}
	defer ccall.Call1(ctxFree, 0, ctx)
	check := func(what string, ok uintptr) {
		t.Helper()
		if int32(ok) != 1 {
			t.Fatalf("%s returned %d, want 1", what, int32(ok))
		}
	}
	check("EVP_EncryptInit_ex(aes-256-gcm)", ccall.Call5(encryptInit, 0, ctx, ccall.Call0(aes256GCM, 0), 0, 0, 0))
	check("EVP_CIPHER_CTX_ctrl(SET_IVLEN)", ccall.Call4(ctxCtrl, 0, ctx, ctrlGCMSetIVLen, uintptr(len(iv)), 0))
	check("EVP_EncryptInit_ex(key, iv)", ccall.Call5(encryptInit, 0, ctx, 0, 0, addr(key), addr(iv)))
	runtime.KeepAlive(key)
	runtime.KeepAlive(iv)

	outLen := cValue(int32(0))
	check("EVP_EncryptUpdate(aad)", ccall.Call5(encryptUpdate, 0, ctx, 0, uintptr(unsafe.Pointer(outLen)), addr(aad), uintptr(len(aad))))
	runtime.KeepAlive(aad)
	sealed := cBytes(len(plaintext) + aes.BlockSize + tagSize)
	check("EVP_EncryptUpdate(plaintext)", ccall.Call5(encryptUpdate, 0, ctx, addr(sealed), uintptr(unsafe.Pointer(outLen)), addr(plaintext), uintptr(len(plaintext))))
	n := int(*outLen)
	check("EVP_EncryptFinal_ex", ccall.Call3(encryptFinal, 0, ctx, addr(sealed[n:]), uintptr(unsafe.Pointer(outLen))))
	n += int(*outLen)
	if n != len(plaintext) {
		t.Fatalf("EVP_Encrypt* wrote %d bytes of ciphertext, want %d", n, len(plaintext))
	}
	check("EVP_CIPHER_CTX_ctrl(GET_TAG)", ccall.Call4(ctxCtrl, 0, ctx, ctrlGCMGetTag, tagSize, addr(sealed[n:])))
	runtime.KeepAlive(sealed)
	runtime.KeepAlive(plaintext)
	runtime.KeepAlive(outLen)
	sealed = sealed[:n+tagSize]

	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	opened, err := gcm.Open(nil, iv, sealed, aad)
	if err != nil {
		t.Fatalf("crypto/cipher cannot open the AES-256-GCM seal made by libcrypto: %v", err)
	}
	if !bytes.Equal(opened, plaintext) {
		t.Fatal("crypto/cipher opened a plaintext that differs from the input")
	}
	if want := gcm.Seal(nil, iv, plaintext, aad); !bytes.Equal(sealed, want) {
		t.Errorf("libcrypto's ciphertext and tag differ from crypto/cipher's seal of the same input")
	}
}

func TestXML2GetProp(t *testing.T) {
	im := openOwn(t, testlibs.SystemLibrary(t, "libxml2.so.2", "libxml2"))
	readMemory := lookup(t, im, "xmlReadMemory")
	rootElement := lookup(t, im, "xmlDocGetRootElement")
	getProp := lookup(t, im, "xmlGetProp")
	childCount := lookup(t, im, "xmlChildElementCount")
	freeDoc := lookup(t, im, "xmlFreeDoc")

	// libxml2 2.9 exports xmlFree as a variable that holds the address of
	// the deallocator.
	xmlFree := lookup(t, im, "xmlFree")
	for _, e := range im.Spec.Exports() {
		if e.Name == "xmlFree" && e.Kind == loader.ExportObject {
			xmlFree = *(*uintptr)(ptr(xmlFree))
			break
		}
	}

	doc := sampleXML()
	var root struct {
		XMLName xml.Name
		Name    string     `xml:"name,attr"`
		Version string     `xml:"version,attr"`
		Books   []struct{} `xml:"book"`
	}
	if err := xml.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatalf("encoding/xml: %v", err)
	}

	text := cString(doc)
	url := cString("sample.xml")
	d := ccall.Call5(readMemory, 0, addr(text), uintptr(len(doc)), addr(url), 0, 0)
	runtime.KeepAlive(text)
	runtime.KeepAlive(url)
	if d == 0 {
		t.Fatal("xmlReadMemory returned NULL")
	}
	defer ccall.Call1(freeDoc, 0, d)

	node := ccall.Call1(rootElement, 0, d)
	if node == 0 {
		t.Fatal("xmlDocGetRootElement returned NULL")
	}
	for _, attr := range []struct{ name, want string }{
		{"name", root.Name},
		{"version", root.Version},
	} {
		name := cString(attr.name)
		value := ccall.Call2(getProp, 0, node, addr(name))
		runtime.KeepAlive(name)
		if value == 0 {
			t.Errorf("xmlGetProp(root, %q) returned NULL, want %q", attr.name, attr.want)
			continue
		}
		got := goString(value)
		ccall.Call1(xmlFree, 0, value)
		if got != attr.want {
			t.Errorf("xmlGetProp(root, %q) = %q, want %q from encoding/xml", attr.name, got, attr.want)
		}
	}
	if got := int(ccall.Call1(childCount, 0, node)); got != len(root.Books) {
		t.Errorf("xmlChildElementCount(root) = %d, want %d from encoding/xml", got, len(root.Books))
	}
}
