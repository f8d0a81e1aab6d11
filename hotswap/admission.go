package hotswap

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/decouple-go/decouple/loader"
)

// ErrAdmission is the target of errors.Is for every admission failure.
// The concrete error is an *AdmissionError.
var ErrAdmission = errors.New("admission failed")

// AdmissionError reports why a file at a watched path was not loaded.
type AdmissionError struct {
	Path   string // file that was checked (the symlink target when the watched path is a symlink)
	Reason string // check that failed, in words
	Err    error  // underlying error, if any
}

func (e *AdmissionError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("admission of %s: %s: %v", e.Path, e.Reason, e.Err)
	}
	return fmt.Sprintf("admission of %s: %s", e.Path, e.Reason)
}

func (e *AdmissionError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrAdmission) true for every *AdmissionError.
func (e *AdmissionError) Is(target error) bool { return target == ErrAdmission }

// maxLibrarySize is the largest file admission reads, the same limit
// loader.Parse applies.
const maxLibrarySize = 1 << 30

// admittedFile describes a file that passed admission. The fields except
// spec are also filled in when admission fails after the file was read.
type admittedFile struct {
	path     string // file to load; the symlink target if the watched path is a symlink
	linkFrom string // watched path when it is a symlink, else empty
	sha256   string // hex SHA-256 of the contents read during admission
	device   uint64
	inode    uint64
	spec     *loader.Spec
}

// admit checks the file at watched before anything of it is loaded.
//
// The file must be a regular file, must not be writable by group or others,
// and must be owned by root or by the uid of this process. Its contents must
// parse with loader.ParseBytes as a shared library, not an executable, and
// the file must then pass extra if extra is not nil. A symbolic link at
// watched is followed only if watchedIsLink, meaning the watched path was a
// symlink when Watch was called. Otherwise a link is rejected, so a file
// swapped in cannot redirect loading to a file elsewhere.
//
// Once the file has been read, admit returns its description even with an
// error, so the caller can record which contents were rejected.
func admit(watched string, watchedIsLink bool, extra func(string) error) (*admittedFile, error) {
	fi, err := os.Lstat(watched)
	if err != nil {
		return nil, &AdmissionError{Path: watched, Reason: "stat failed", Err: err}
	}

	file := &admittedFile{path: watched}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(watched)
		if !watchedIsLink {
			if err != nil {
				target = "(unresolvable)"
			}
			return nil, &AdmissionError{Path: watched, Reason: fmt.Sprintf(
				"is a symbolic link to %s, but the watched path was a regular file when the watch started; replace it with a regular file",
				target)}
		}
		if err != nil {
			return nil, &AdmissionError{Path: watched, Reason: "resolve symbolic link", Err: err}
		}
		file.path = target
		file.linkFrom = watched
	}

	// O_NOFOLLOW rejects a link that appeared at the resolved path after
	// EvalSymlinks, and O_NONBLOCK keeps a FIFO from blocking the open.
	f, err := os.OpenFile(file.path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, &AdmissionError{Path: file.path, Reason: "open failed", Err: err}
	}
	defer f.Close()

	fi, err = f.Stat()
	if err != nil {
		return nil, &AdmissionError{Path: file.path, Reason: "stat failed", Err: err}
	}
	if !fi.Mode().IsRegular() {
		return nil, &AdmissionError{Path: file.path, Reason: fmt.Sprintf("is not a regular file (type %s)", typeName(fi.Mode()))}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, &AdmissionError{Path: file.path, Reason: "stat returned no owner information"}
	}
	file.device = uint64(st.Dev)
	file.inode = st.Ino

	// Read and hash before the mode and owner checks, so a rejected file
	// is still identified by its SHA-256 in the event that records the
	// rejection. Parsing these bytes rather than the path means the checks
	// below all see the same contents.
	if fi.Size() > maxLibrarySize {
		return nil, &AdmissionError{Path: file.path, Reason: fmt.Sprintf("is %d bytes, more than the limit of %d", fi.Size(), maxLibrarySize)}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxLibrarySize+1))
	if err != nil {
		return nil, &AdmissionError{Path: file.path, Reason: "read failed", Err: err}
	}
	if len(data) > maxLibrarySize {
		return nil, &AdmissionError{Path: file.path, Reason: fmt.Sprintf("grew past the limit of %d bytes while being read", maxLibrarySize)}
	}
	sum := sha256.Sum256(data)
	file.sha256 = hex.EncodeToString(sum[:])

	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return file, &AdmissionError{Path: file.path, Reason: fmt.Sprintf(
			"is writable by group or others (mode %04o); run chmod go-w on it and replace it again", perm)}
	}
	if uid := os.Getuid(); st.Uid != 0 && int(st.Uid) != uid {
		return file, &AdmissionError{Path: file.path, Reason: fmt.Sprintf(
			"is owned by uid %d; it must be owned by root or by uid %d, which runs this process", st.Uid, uid)}
	}

	spec, err := loader.ParseBytes(file.path, data)
	if err != nil {
		return file, &AdmissionError{Path: file.path, Reason: "not a loadable shared object", Err: err}
	}
	file.spec = spec
	if spec.Features.Executable {
		return file, &AdmissionError{Path: file.path, Reason: "is an executable (it has PT_INTERP), not a shared library"}
	}

	if extra != nil {
		if err := extra(file.path); err != nil {
			return file, &AdmissionError{Path: file.path, Reason: "rejected by the Admission check", Err: err}
		}
	}
	return file, nil
}

func typeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	default:
		return m.Type().String()
	}
}
