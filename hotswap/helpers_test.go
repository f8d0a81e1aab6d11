package hotswap

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// writeFile writes data to dir/name with exactly mode perm, ignoring the
// umask, and returns the path.
func writeFile(t *testing.T, dir, name string, data []byte, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// symlink creates dir/name pointing to target and returns its path.
func symlink(t *testing.T, dir, target, name string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// replacedFile identifies a file put in place by replaceFile.
type replacedFile struct {
	sha256 string
	device uint64
	inode  uint64
	after  *uint64 // events the manager had handled before the file was put in place
}

// replaceFile writes data with mode perm to a temporary file next to path
// and renames it over path, the way a careful deployment replaces a library.
func replaceFile(t *testing.T, path string, data []byte, perm os.FileMode) replacedFile {
	t.Helper()
	tmp := writeFile(t, filepath.Dir(path), "."+filepath.Base(path)+".tmp", data, perm)
	var st syscall.Stat_t
	if err := syscall.Stat(tmp, &st); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return replacedFile{sha256: sha256Hex(data), device: uint64(st.Dev), inode: st.Ino}
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
