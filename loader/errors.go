package loader

import (
	"errors"
	"fmt"
)

var (
	// ErrNotSupported matches every error about a valid library that the
	// own loader cannot load (a feature it does not implement, or one it
	// rejects on purpose, such as text relocations).
	ErrNotSupported = errors.New("not supported")

	// ErrFormat matches every error about a malformed or truncated file.
	ErrFormat = errors.New("malformed ELF file")

	// ErrSymbolNotFound matches lookups of names that an image does not
	// export, and imports that no dependency defines.
	ErrSymbolNotFound = errors.New("symbol not found")
)

// NotSupportedError reports a feature of a library that the own loader
// does not load. It matches ErrNotSupported.
type NotSupportedError struct {
	File    string // path of the library
	Feature string // short name of the feature, such as "text relocations"
	Reason  string // reason for the rejection and what to do instead
}

func (e *NotSupportedError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("%s: %s not supported", e.File, e.Feature)
	}
	return fmt.Sprintf("%s: %s not supported: %s", e.File, e.Feature, e.Reason)
}

// Is reports whether target is ErrNotSupported.
func (e *NotSupportedError) Is(target error) bool { return target == ErrNotSupported }

// FormatError reports a malformed file, with the byte offset of the record
// at fault. It matches ErrFormat.
type FormatError struct {
	File   string
	Offset int64 // file offset of the bad record, or -1 when unknown
	Msg    string
}

func (e *FormatError) Error() string {
	if e.Offset < 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s: %s (at file offset %#x)", e.File, e.Msg, e.Offset)
}

// Is reports whether target is ErrFormat.
func (e *FormatError) Is(target error) bool { return target == ErrFormat }

func formatErrorf(file string, off int64, format string, args ...any) error {
	return &FormatError{File: file, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

func notSupported(file, feature, reason string) error {
	return &NotSupportedError{File: file, Feature: feature, Reason: reason}
}
