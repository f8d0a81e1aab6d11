package testlibs

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// multiarchTriplets maps GOARCH to the Debian multiarch folder name.
var multiarchTriplets = map[string]string{
	"amd64": "x86_64-linux-gnu",
	"arm64": "aarch64-linux-gnu",
}

// systemLibraryDirs returns the folders SystemLibrary searches, in order.
func systemLibraryDirs() []string {
	var dirs []string
	if triplet, ok := multiarchTriplets[runtime.GOARCH]; ok {
		dirs = append(dirs, "/lib/"+triplet, "/usr/lib/"+triplet)
	}
	return append(dirs, "/lib64", "/usr/lib64")
}

// SystemLibrary returns the path of an installed system library such as
// "libz.so.1", found by its file name in the multiarch folders
// (/lib/x86_64-linux-gnu and /usr/lib/x86_64-linux-gnu on amd64), then in
// /lib64 and /usr/lib64. The path can be a symbolic link to the versioned
// file. If the library is not installed, SystemLibrary skips the test and
// names debianPackage as the package that provides it.
func SystemLibrary(tb testing.TB, soname, debianPackage string) string {
	tb.Helper()
	if soname == "" || strings.ContainsRune(soname, '/') {
		tb.Fatalf("system library %q: invalid name, want a file name such as \"libz.so.1\"", soname)
	}

	for _, dir := range systemLibraryDirs() {
		path := filepath.Join(dir, soname)
		if fileExists(path) {
			return path
		}
	}
	tb.Skipf("%s not found: install the Debian package %s", soname, debianPackage)
	return ""
}
