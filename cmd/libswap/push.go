package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/decouple-go/decouple/hotswap"
	"github.com/decouple-go/decouple/loader"
)

const pushUsage = `Usage: libswap push NEW.so --to PATH [--timeout 30s] [--socket-dir DIR]

Checks that NEW.so is an x86-64 ELF shared object and writes a copy to a
temporary file in PATH's directory (mode 0644, fsynced). Every process whose
control socket lists PATH as watched then loads that copy as its swap would,
one process after another, and unloads it without switching to it; this runs
the library's constructors and finalisers in each of them. If all accept it,
push renames it over PATH, fsyncs the directory, waits until each process has
handled the new file and prints one line per process with its outcome. A
NEW.so that push or any of those processes rejects leaves PATH untouched, and
so does a running process that does not respond.

The exit status is 1 if any process rejected the file, failed to swap or did
not reply in time.
`

// maxLibrarySize is the largest NEW.so push reads, the limit loader.Parse
// applies.
const maxLibrarySize = 1 << 30

// statusTimeout bounds the status request to one process while looking
// for the processes that watch a path.
const statusTimeout = 5 * time.Second

func runPush(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := newFlagSet("push")
	to := fs.String("to", "", "`path` of the library file to replace; required")
	timeout := fs.Duration("timeout", 30*time.Second,
		"maximum time to wait for all watching processes to handle the new file, as a Go `duration` such as 30s or 2m")
	socketDir := fs.String("socket-dir", hotswap.DefaultSocketDir(), "`directory` that contains the control sockets of the processes")
	positional, err := parseArgs(fs, pushUsage, stdout, stderr, args)
	if err != nil {
		return err
	}
	switch {
	case len(positional) != 1:
		return errUsagef(stderr, fs, pushUsage, "push: expected exactly one NEW.so argument, got %d", len(positional))
	case *to == "":
		return errUsagef(stderr, fs, pushUsage, "push: missing --to PATH")
	case *timeout <= 0:
		return errUsagef(stderr, fs, pushUsage, "push: invalid --timeout %v; it must be positive", *timeout)
	}
	dst, err := filepath.Abs(*to)
	if err != nil {
		return fmt.Errorf("push: --to %s: %w", *to, err)
	}

	file, err := checkLibrary(positional[0], dst, stderr)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}

	// The watchers are found before the rename, so that each wait counts
	// only the events that follow it.
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	watchers, silent := findWatchers(ctx, stderr, *socketDir, dst)
	if len(silent) > 0 {
		return fmt.Errorf("push: %w; any of them may watch %s, so nothing was installed: retry once they respond, or stop them", errors.Join(silent...), dst)
	}

	tmp, err := writeTemp(dst, file)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if checkWatchers(ctx, stdout, watchers, tmp, positional[0]) > 0 {
		os.Remove(tmp)
		return fmt.Errorf("push: a process watching %s rejected %s; %s is unchanged", dst, positional[0], dst)
	}
	if err := install(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("push: %w", err)
	}
	fmt.Fprintf(stdout, "installed %s at %s (sha256 %s)\n", positional[0], dst, file.sha256)
	if len(watchers) == 0 {
		fmt.Fprintf(stdout, "no process with a control socket in %s watches %s; nothing was swapped\n", *socketDir, dst)
		return nil
	}

	results := waitForWatchers(ctx, watchers, file)
	notSwitched := 0
	for _, r := range results {
		line, ok := r.describe(file, *timeout)
		if !ok {
			notSwitched++
		}
		fmt.Fprintf(stdout, "pid %d (%s): %s\n", r.pid, r.program, line)
	}
	if notSwitched > 0 {
		return fmt.Errorf("push: %d of %d processes watching %s did not switch to the new file", notSwitched, len(results), dst)
	}
	return nil
}

// installedFile is the file that push puts in place.
type installedFile struct {
	data    []byte
	sha256  string
	soname  string
	buildID string
	device  uint64 // set once the file is written
	inode   uint64
}

// checkLibrary reads src and checks that it can replace dst.
func checkLibrary(src, dst string, stderr io.Writer) (*installedFile, error) {
	if fi, err := os.Stat(filepath.Dir(dst)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("--to %s: directory %s does not exist; create it first", dst, filepath.Dir(dst))
	}
	dstInfo, err := os.Lstat(dst)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		dstInfo = nil
	case err != nil:
		return nil, fmt.Errorf("--to: %w", err)
	case dstInfo.Mode()&fs.ModeSymlink != 0:
		target, err := filepath.EvalSymlinks(dst)
		if err != nil {
			return nil, fmt.Errorf("--to %s is a symbolic link that does not resolve (%v); fix the link or pass a regular file", dst, err)
		}
		return nil, fmt.Errorf("--to %s is a symbolic link to %q; pass the target instead, because a rename over the link would replace the link itself", dst, target)
	case !dstInfo.Mode().IsRegular():
		return nil, fmt.Errorf("--to %s is not a regular file", dst)
	}

	data, err := readLibrary(src)
	if err != nil {
		return nil, err
	}
	if dstInfo != nil {
		if srcInfo, err := os.Stat(src); err == nil && os.SameFile(srcInfo, dstInfo) {
			return nil, fmt.Errorf("%s and --to %s are the same file", src, dst)
		}
	}
	// Parse the bytes that will be written, so the file checked is the
	// file installed even if src changes meanwhile.
	spec, err := loader.ParseBytes(src, data)
	if err != nil {
		return nil, fmt.Errorf("rejected %s, %s is unchanged: %w", src, dst, err)
	}
	if spec.Features.Executable {
		return nil, fmt.Errorf("rejected %s, %s is unchanged: it is an executable (it has PT_INTERP), not a shared library", src, dst)
	}
	if dstInfo != nil {
		if old, err := loader.Parse(dst); err == nil && old.Soname != spec.Soname {
			fmt.Fprintf(stderr, "libswap: warning: %s has SONAME %q but %s has %q\n", src, spec.Soname, dst, old.Soname)
		}
	}

	sum := sha256.Sum256(data)
	return &installedFile{data: data, sha256: hex.EncodeToString(sum[:]), soname: spec.Soname, buildID: spec.BuildID}, nil
}

func readLibrary(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > maxLibrarySize {
		return nil, fmt.Errorf("%s is %d bytes, more than the limit of %d", path, fi.Size(), maxLibrarySize)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// writeTemp writes file's data to a temporary file in dst's directory with
// mode 0644 and fsyncs it. It records the file's device and inode in file
// and returns its name.
func writeTemp(dst string, file *installedFile) (name string, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".libswap-*")
	if err != nil {
		return "", fmt.Errorf("create a temporary file next to %s: %w", dst, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	if _, err := tmp.Write(file.data); err != nil {
		return "", fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return "", fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return "", fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	fi, err := tmp.Stat()
	if err != nil {
		return "", fmt.Errorf("stat %s: %w", tmp.Name(), err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	file.device, file.inode = uint64(st.Dev), st.Ino
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	return tmp.Name(), nil
}

// install renames tmp over dst and fsyncs the directory, so that dst is at
// every moment either the old or the new file, also after a crash.
func install(tmp, dst string) error {
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("rename %s over %s: %w", tmp, dst, err)
	}
	// The rename is done, so a failure to fsync the directory only risks
	// losing it in a crash. It is still reported.
	d, err := os.Open(filepath.Dir(dst))
	if err != nil {
		return fmt.Errorf("installed %s but could not open its directory to fsync it: %w", dst, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("installed %s but fsync of its directory failed: %w", dst, err)
	}
	return nil
}

// checkWatchers requests the watchers, one after another, to load the
// candidate file as their swap would. It stops at the first that rejects
// the file or does not respond, so that a candidate whose constructor
// crashes takes down one process, not all of them. It prints a line for
// that process and returns how many rejected the file (0 or 1).
//
// Reasons name the candidate by src, the file the user passed, since the
// temporary copy is removed once the push fails.
func checkWatchers(ctx context.Context, stdout io.Writer, watchers []watcher, candidate, src string) int {
	slices.SortFunc(watchers, func(a, b watcher) int { return a.pid - b.pid })
	for i, w := range watchers {
		res, err := checkWatcher(ctx, w, candidate)
		var line string
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
			line = "could not check the new file: the process closed the connection during the check; its constructor may have crashed it"
		case errors.Is(err, context.DeadlineExceeded):
			line = "could not check the new file: no reply before --timeout; the process may be stuck in the new file's constructor"
		case err != nil:
			line = fmt.Sprintf("could not check the new file: %v", err)
		case res.Outcome == hotswap.OutcomeSwitched:
			continue
		default:
			line = fmt.Sprintf("%s before install: %s", res.Outcome, strings.ReplaceAll(res.Reason, candidate, src))
		}
		fmt.Fprintf(stdout, "pid %d (%s): %s\n", w.pid, w.program, line)
		if rest := len(watchers) - i - 1; rest > 0 {
			fmt.Fprintf(stdout, "%d other watching processes were not checked\n", rest)
		}
		return 1
	}
	return 0
}

func checkWatcher(ctx context.Context, w watcher, candidate string) (*hotswap.CheckResult, error) {
	c, err := hotswap.Dial(ctx, w.socket)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Check(ctx, w.path, candidate)
}

// watcher is a process whose Manager watches the pushed path.
type watcher struct {
	socket  string
	pid     int
	program string
	path    string // the path as the process spells it
	events  uint64 // events the process had handled for the path before the push
}

// findWatchers returns the processes with a control socket in dir that
// watch dst, directly or as the target of a watched symbolic link.
// Processes that cannot be queried are reported on stderr and skipped;
// those still running come back as errors, since they may watch dst.
func findWatchers(ctx context.Context, stderr io.Writer, dir, dst string) ([]watcher, []error) {
	statuses, silent := queryProcessesStrict(ctx, stderr, dir)
	want := canonicalPath(dst)
	var found []watcher
	for _, s := range statuses {
		for _, lib := range s.status.Libraries {
			if canonicalPath(lib.Path) == want || (lib.Target != "" && canonicalPath(lib.Target) == want) {
				found = append(found, watcher{socket: s.socket, pid: s.status.PID, program: s.status.Program, path: lib.Path, events: lib.Events})
				break
			}
		}
	}
	return found, silent
}

// canonicalPath resolves symbolic links in the directory part of path but
// not in its last element, so a watched symlink keeps its own name.
func canonicalPath(path string) string {
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		return filepath.Clean(path)
	}
	return filepath.Join(dir, filepath.Base(path))
}

// waitResult is the outcome of one process.
type waitResult struct {
	pid     int
	program string
	result  *hotswap.WaitResult
	err     error
}

func waitForWatchers(ctx context.Context, watchers []watcher, file *installedFile) []waitResult {
	results := make([]waitResult, len(watchers))
	var wg sync.WaitGroup
	for i, w := range watchers {
		results[i] = waitResult{pid: w.pid, program: w.program}
		wg.Go(func() {
			results[i].result, results[i].err = waitForWatcher(ctx, w, file)
		})
	}
	wg.Wait()
	slices.SortFunc(results, func(a, b waitResult) int { return a.pid - b.pid })
	return results
}

func waitForWatcher(ctx context.Context, w watcher, file *installedFile) (*hotswap.WaitResult, error) {
	c, err := hotswap.Dial(ctx, w.socket)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	timeout := time.Minute
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	if timeout <= 0 {
		return &hotswap.WaitResult{TimedOut: true}, nil
	}
	res, err := c.Wait(ctx, hotswap.WaitRequest{
		Path:    w.path,
		SHA256:  file.sha256,
		Timeout: timeout,
		After:   &w.events,
		Device:  file.device,
		Inode:   file.inode,
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return &hotswap.WaitResult{TimedOut: true}, nil
	}
	return res, err
}

// describe returns the outcome line for r and whether the process now runs
// the new file.
func (r *waitResult) describe(file *installedFile, timeout time.Duration) (string, bool) {
	if r.err != nil {
		return fmt.Sprintf("error: %v", r.err), false
	}
	if r.result.TimedOut || r.result.Event == nil {
		return fmt.Sprintf("timed out after %v", timeout), false
	}
	ev := r.result.Event
	switch ev.Outcome {
	case hotswap.OutcomeSwitched:
		line := "switched to " + describeVersion(ev.Version, file)
		if ev.Reason != "" {
			line += " (warning: " + ev.Reason + ")"
		}
		return line, true
	case hotswap.OutcomeUnchanged:
		return "unchanged: already running " + describeVersion(ev.Version, file), true
	case hotswap.OutcomeRefused:
		return "refused: " + ev.Reason, false
	case hotswap.OutcomeFailed:
		return "failed: " + ev.Reason, false
	default:
		return fmt.Sprintf("unknown outcome %q: %s", ev.Outcome, ev.Reason), false
	}
}

// describeVersion names the new image by the version the process reported,
// or by its build ID or SHA-256 when the process registered no version
// function.
func describeVersion(version string, file *installedFile) string {
	switch {
	case version != "":
		return version
	case file.buildID != "":
		return "build id " + file.buildID
	default:
		return "sha256 " + file.sha256
	}
}
