package hotswap

import (
	"fmt"
	"strconv"
	"time"
)

// Control protocol. A client connects to <SocketDir>/<pid>.sock, writes one
// JSON Request per line and reads one JSON Response per line, in order.
// Requests on one connection are served one at a time, so a client that
// waits on several libraries at once opens one connection per wait.

// Control protocol operations, the values of Request.Op.
const (
	OpStatus = "status" // report the process and every watched library
	OpWait   = "wait"   // wait until the manager has handled a given file
	OpCheck  = "check"  // load a candidate file as a swap would, without switching
)

// Request is one line a client sends on the control socket.
type Request struct {
	Op string `json:"op"`

	// Fields of OpWait.
	Path      string `json:"path,omitempty"`       // watched path, or the symlink target it resolves to
	SHA256    string `json:"sha256,omitempty"`     // hex SHA-256 of the file to wait for
	TimeoutMS int64  `json:"timeout_ms,omitempty"` // milliseconds; 0 selects DefaultWaitTimeout
	// After, when present, restricts the wait to events with a larger
	// Event.Seq. A client reads LibraryStatus.Events before it replaces the
	// file, so that an earlier event for the same contents cannot satisfy
	// the wait. Without After and Inode, only the newest event and later
	// ones count.
	After *uint64 `json:"after,omitempty"`
	// Device and Inode, when Inode is not 0, also require the event to be
	// for that file. The kernel reuses the inode number of a deleted file,
	// so they do not replace After.
	Device uint64 `json:"device,omitempty"`
	Inode  uint64 `json:"inode,omitempty"`

	// Candidate is the file OpCheck loads for the library watched at
	// Path. It must pass the same admission as the watched file.
	Candidate string `json:"candidate,omitempty"`
}

// Wait limits applied by the manager to Request.TimeoutMS.
const (
	DefaultWaitTimeout = 30 * time.Second
	MaxWaitTimeout     = 10 * time.Minute
)

// Response is one line the manager sends back for each Request.
type Response struct {
	// Error is set when the request failed. The other fields are then empty.
	Error string `json:"error,omitempty"`

	// Status is the reply to OpStatus.
	*Status

	// Event and TimedOut are the reply to OpWait. Event is the handled event
	// that matched, or nil when the wait timed out.
	Event    *Event `json:"event,omitempty"`
	TimedOut bool   `json:"timed_out,omitempty"`

	// Check is the reply to OpCheck.
	Check *CheckResult `json:"check,omitempty"`
}

// CheckResult is the outcome of OpCheck. Outcome is OutcomeSwitched when
// a swap to the candidate would succeed (nothing was switched), and
// OutcomeRefused or OutcomeFailed, with Reason, as a swap would report.
type CheckResult struct {
	Outcome Outcome `json:"outcome"`
	Reason  string  `json:"reason,omitempty"`
}

// Status describes a process and the libraries its Manager watches.
type Status struct {
	PID       int             `json:"pid"`
	Program   string          `json:"program"`
	Libraries []LibraryStatus `json:"libraries"`
}

// LibraryStatus describes one watched library.
type LibraryStatus struct {
	Path string `json:"path"` // watched path, absolute
	// Target is the file the watched path resolves to when it is a symbolic
	// link, and empty otherwise.
	Target string      `json:"target,omitempty"`
	Image  ImageStatus `json:"image"`
	Swaps  int         `json:"swaps"`  // swaps this Manager completed
	Events uint64      `json:"events"` // changes handled so far, the Seq of LastEvent
	Busy   bool        `json:"busy"`   // a change is being handled now
	// CheckingSince is when the check request running now started, or nil.
	// A check that runs long is likely stuck in the candidate's constructor.
	CheckingSince *time.Time `json:"checking_since,omitempty"`
	LastEvent     *Event     `json:"last_event,omitempty"`
}

// ImageStatus describes the image that serves calls now.
type ImageStatus struct {
	Path    string `json:"path"`
	Soname  string `json:"soname,omitempty"`
	BuildID string `json:"build_id,omitempty"`
	SHA256  string `json:"sha256"`
	// Version is the result of the function registered with SetVersionFunc,
	// or empty if none was registered.
	Version  string    `json:"version,omitempty"`
	Start    Address   `json:"start"`
	End      Address   `json:"end"`
	LoadedAt time.Time `json:"loaded_at"`
}

// Outcome is the result of handling one change of a watched file.
type Outcome string

// Outcomes of Event.
const (
	// OutcomeSwitched: the new file was loaded and now serves calls.
	OutcomeSwitched Outcome = "switched"
	// OutcomeRefused: the file failed admission and was not loaded.
	OutcomeRefused Outcome = "refused"
	// OutcomeFailed: the file passed admission but the swap failed, for
	// example because it lacks a registered symbol.
	OutcomeFailed Outcome = "failed"
	// OutcomeUnchanged: the file has the SHA-256 of the running image, so
	// nothing was loaded.
	OutcomeUnchanged Outcome = "unchanged"
)

// Event records how the manager handled one change of a watched file.
// Changes that arrive within the debounce interval count as one event.
type Event struct {
	Seq      uint64    `json:"seq"`      // position among the library's events, from 1
	Detected time.Time `json:"detected"` // first file system notification of the change
	Finished time.Time `json:"finished"` // handling done
	File     string    `json:"file"`     // file that was checked
	// SHA256, Device and Inode identify the file that was read. They are
	// empty when the file could not be opened.
	SHA256  string  `json:"sha256,omitempty"`
	Device  uint64  `json:"device,omitempty"`
	Inode   uint64  `json:"inode,omitempty"`
	Outcome Outcome `json:"outcome"`
	Reason  string  `json:"reason,omitempty"` // error text for refused and failed
	// Version is the version string of the image that serves calls after
	// the event, when a version function is registered.
	Version string `json:"version,omitempty"`
}

// Address is a memory address. It is encoded in JSON as a hexadecimal
// string such as "0x7f3a12000000".
type Address uint64

func (a Address) String() string { return fmt.Sprintf("%#x", uint64(a)) }

// MarshalText encodes a as a 0x-prefixed hexadecimal number.
func (a Address) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText decodes a number in Go syntax, such as 0x7f3a12000000.
func (a *Address) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 0, 64)
	if err != nil {
		return fmt.Errorf("invalid address %q: %w", b, err)
	}
	*a = Address(v)
	return nil
}
