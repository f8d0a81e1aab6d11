package loader_test

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/decouple-go/decouple/internal/testlibs"
	"github.com/decouple-go/decouple/loader"
)

// anonymousKB sums the "Anonymous:" field of /proc/self/smaps over the
// mappings that overlap [lo, hi), in KiB.
func anonymousKB(t *testing.T, lo, hi uintptr) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatalf("read /proc/self/smaps: %v", err)
	}
	defer f.Close()

	total := 0
	inside := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		// Field lines start with a capitalised name and a colon; every
		// other line is the header of the next mapping.
		name, value, isField := strings.Cut(line, ":")
		if isField && !strings.Contains(name, " ") && !strings.Contains(name, "-") {
			if inside && name == "Anonymous" {
				kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(value), "kB")))
				if err != nil {
					t.Fatalf("/proc/self/smaps: invalid line %q: %v", line, err)
				}
				total += kb
			}
			continue
		}
		m, err := parseMapsLine(line)
		if err != nil {
			t.Fatalf("/proc/self/smaps: %v", err)
		}
		inside = m.start < hi && m.end > lo
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read /proc/self/smaps: %v", err)
	}
	return total
}

// writableBytes sums the page-rounded memory sizes of the writable
// segments, the maximum a loader needs to copy on write or allocate.
func writableBytes(spec *loader.Spec) uintptr {
	const page = 4096
	var total uint64
	for _, s := range spec.Segments {
		if s.Writable() {
			start := s.Vaddr &^ (page - 1)
			end := (s.Vaddr + s.Memsz + page - 1) &^ (page - 1)
			total += end - start
		}
	}
	return uintptr(total)
}

func TestAnonymousMemoryBound(t *testing.T) {
	libs := []struct{ soname, pkg string }{
		{"libcrypto.so.3", "libssl3"},
		{"libsqlite3.so.0", "libsqlite3-0"},
	}
	for _, lib := range libs {
		t.Run(lib.soname, func(t *testing.T) {
			im := openOwn(t, testlibs.SystemLibrary(t, lib.soname, lib.pkg))
			// Read-only segments and code stay shared with the page cache;
			// only the writable segments may turn into anonymous memory.
			// The slack covers a read-only page whose tail had to be
			// cleared after the file data.
			const slack = 64 << 10
			limit := writableBytes(im.Spec) + slack
			got := uintptr(anonymousKB(t, im.Base, im.Base+im.Span)) << 10
			t.Logf("%s: %d KiB anonymous, limit %d KiB (writable segments %d KiB + %d KiB)", lib.soname, got>>10, limit>>10, writableBytes(im.Spec)>>10, slack>>10)
			if got > limit {
				t.Errorf("%s image has %d KiB of anonymous memory, want at most %d KiB (writable segments plus %d KiB)", lib.soname, got>>10, limit>>10, slack>>10)
			}
			if got == 0 {
				t.Errorf("%s image has no anonymous memory, want some: relocation writes to its data pages", lib.soname)
			}
		})
	}
}
