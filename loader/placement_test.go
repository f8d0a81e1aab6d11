package loader_test

// Tests of where the own loader places images and of what Close leaves
// behind, read from /proc/self/maps and /proc/self/fd.

import (
	"testing"

	"github.com/decouple-go/decouple/internal/ccall"
	"github.com/decouple-go/decouple/internal/testlibs"
	"github.com/decouple-go/decouple/loader"
)

// checkUnmapped fails the test if any mapping overlaps the image's former
// range [base, base+span).
func checkUnmapped(t *testing.T, what string, base, span uintptr) {
	t.Helper()
	if left := mappingsIn(readMaps(t), base, base+span); len(left) > 0 {
		t.Errorf("after Close of %s, /proc/self/maps has %d mappings in its range %#x-%#x, want none: %v", what, len(left), base, base+span, left)
	}
}

func TestVersionedSideBySide(t *testing.T) {
	paths := []string{testlibs.Path(t, "v1/libversioned.so.1"), testlibs.Path(t, "v2/libversioned.so.1")}
	versions := []string{"1.0.0", "2.0.0"}

	var images []*loader.Image
	for _, path := range paths {
		im, err := loader.Open(path, ownLoader())
		if err != nil {
			t.Fatalf("Open(%s): %v", path, err)
		}
		defer im.Close()
		if im.Spec.Soname != "libversioned.so.1" {
			t.Errorf("%s: Soname = %q, want libversioned.so.1", path, im.Spec.Soname)
		}
		images = append(images, im)
	}
	v1, v2 := images[0], images[1]
	if v1.Base < v2.Base+v2.Span && v2.Base < v1.Base+v1.Span {
		t.Fatalf("v1 at %#x+%#x overlaps v2 at %#x+%#x, want disjoint ranges", v1.Base, v1.Span, v2.Base, v2.Span)
	}

	maps := readMaps(t)
	for i, im := range images {
		in := mappingsIn(maps, im.Base, im.Base+im.Span)
		fromFile := false
		for _, m := range in {
			fromFile = fromFile || m.path == paths[i]
		}
		if !fromFile {
			t.Errorf("/proc/self/maps has no mapping of %s in the image range %#x-%#x, want its code mapped there: %v", paths[i], im.Base, im.Base+im.Span, in)
		}
	}

	// Each image returns its own version and counts its own calls.
	for i, im := range images {
		if got := goString(ccall.Call0(lookup(t, im, "vl_version"), 0)); got != versions[i] {
			t.Errorf("image %d: vl_version() = %q, want %q", i+1, got, versions[i])
		}
		if got := ccall.Call0(lookup(t, im, "vl_version_major"), 0); got != uintptr(i+1) {
			t.Errorf("image %d: vl_version_major() = %d, want %d", i+1, got, i+1)
		}
	}
	add := lookup(t, v1, "vl_add")
	for range 5 {
		ccall.Call2(add, 0, 2, 3)
	}
	for i, want := range []int32{7, 2} {
		calls := lookup(t, images[i], "vl_calls")
		if got := *(*int32)(ptr(calls)); got != want {
			t.Errorf("image %d: vl_calls = %d, want %d", i+1, got, want)
		}
	}

	v1Base, v1Span := v1.Base, v1.Span
	if err := v1.Close(); err != nil {
		t.Fatalf("Close v1: %v", err)
	}
	checkUnmapped(t, "v1", v1Base, v1Span)
	if got := goString(ccall.Call0(lookup(t, v2, "vl_version"), 0)); got != "2.0.0" {
		t.Errorf("after Close of v1, v2's vl_version() = %q, want 2.0.0", got)
	}

	v2Base, v2Span := v2.Base, v2.Span
	if err := v2.Close(); err != nil {
		t.Fatalf("Close v2: %v", err)
	}
	checkUnmapped(t, "v2", v2Base, v2Span)
}

func TestPlacementRandom(t *testing.T) {
	path := testlibs.Path(t, "v1/libversioned.so.1")
	const loads = 8
	bases := make(map[uintptr]bool)
	for range loads {
		im, err := loader.Open(path, ownLoader())
		if err != nil {
			t.Fatalf("Open(%s): %v", path, err)
		}
		bases[im.Base] = true
		if err := im.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	// A random choice over terabytes of address space repeats an address
	// with negligible probability; a deterministic one repeats it always.
	if len(bases) < loads-1 {
		t.Errorf("%d loads after Close used %d distinct base addresses, want at least %d", loads, len(bases), loads-1)
	}
}

func TestLoadCloseNoLeak(t *testing.T) {
	path := testlibs.SystemLibrary(t, "libz.so.1", "zlib1g")
	loadClose := func() (base, span uintptr) {
		im, err := loader.Open(path, ownLoader())
		if err != nil {
			t.Fatalf("Open(%s): %v", path, err)
		}
		base, span = im.Base, im.Span
		// One call, so that the image's pages are touched and its
		// dependencies are in use.
		ccall.Call1(lookup(t, im, "zlibVersion"), 0, 0)
		if err := im.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		return base, span
	}

	// The first loads open libc through the system loader and start the
	// Go runtime's poller, which stay for the life of the process.
	for range 5 {
		loadClose()
	}
	mapsBefore := len(readMaps(t))
	fdsBefore := openFDs(t)

	const rounds = 200
	type span struct{ lo, hi uintptr }
	var ranges []span
	for range rounds {
		base, size := loadClose()
		ranges = append(ranges, span{base, base + size})
	}

	mapsAfter := len(readMaps(t))
	fdsAfter := openFDs(t)
	t.Logf("%d rounds: /proc/self/maps %d -> %d lines, %d -> %d file descriptors", rounds, mapsBefore, mapsAfter, fdsBefore, fdsAfter)
	if fdsAfter != fdsBefore {
		t.Errorf("%d open file descriptors after %d load/close rounds of %s, want %d as before", fdsAfter, rounds, path, fdsBefore)
	}
	// The process adds a few mappings of its own while the loop runs: a
	// new thread brings its stack and a glibc malloc arena, and the Go
	// heap grows. A leak of one mapping per round would add 200.
	const runtimeSlack = 10
	if mapsAfter > mapsBefore+runtimeSlack {
		t.Errorf("/proc/self/maps has %d lines after %d load/close rounds of %s, want at most %d (%d before, plus %d for new threads and heap growth)", mapsAfter, rounds, path, mapsBefore+runtimeSlack, mapsBefore, runtimeSlack)
	}
	maps := readMaps(t)
	for _, r := range ranges {
		if left := mappingsIn(maps, r.lo, r.hi); len(left) > 0 {
			t.Errorf("a closed image's range %#x-%#x still has mappings: %v", r.lo, r.hi, left)
			break
		}
	}
}
