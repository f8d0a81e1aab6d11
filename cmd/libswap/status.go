package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/decouple-go/decouple/hotswap"
)

const statusUsage = `Usage: libswap status [--json] [--socket-dir DIR]

Lists every process with a control socket, the libraries it watches, the
image that serves each of them, and the last change it handled.
`

func runStatus(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := newFlagSet("status")
	asJSON := fs.Bool("json", false, "print a JSON array with one object per process instead of text")
	socketDir := fs.String("socket-dir", hotswap.DefaultSocketDir(), "`directory` that contains the control sockets of the processes")
	positional, err := parseArgs(fs, statusUsage, stdout, stderr, args)
	if err != nil {
		return err
	}
	if len(positional) != 0 {
		return errUsagef(stderr, fs, statusUsage, "status: unexpected argument %q", positional[0])
	}

	processes := queryProcesses(ctx, stderr, *socketDir)
	if *asJSON {
		list := make([]*hotswap.Status, 0, len(processes))
		for _, p := range processes {
			list = append(list, p.status)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(list); err != nil {
			return fmt.Errorf("status: %w", err)
		}
		return nil
	}

	if len(processes) == 0 {
		fmt.Fprintf(stdout, "no process has a control socket in %s\n", *socketDir)
		return nil
	}
	for _, p := range processes {
		printStatus(stdout, p.status)
	}
	return nil
}

func printStatus(w io.Writer, s *hotswap.Status) {
	fmt.Fprintf(w, "pid %d (%s): %d watched %s\n", s.PID, s.Program, len(s.Libraries), plural(len(s.Libraries), "library", "libraries"))
	for _, lib := range s.Libraries {
		if lib.Target != "" {
			fmt.Fprintf(w, "  %s -> %s\n", lib.Path, lib.Target)
		} else {
			fmt.Fprintf(w, "  %s\n", lib.Path)
		}
		img := lib.Image
		version := img.Version
		if version == "" {
			version = "(no version function)"
		}
		fmt.Fprintf(w, "    version %s, soname %s, build id %s\n", version, orNone(img.Soname), orNone(img.BuildID))
		fmt.Fprintf(w, "    image %s, sha256 %s, mapped at %v-%v\n", img.Path, img.SHA256, img.Start, img.End)
		busy := ""
		if lib.Busy {
			busy = ", handling a change now"
		}
		if lib.CheckingSince != nil {
			busy += fmt.Sprintf(", checking a pushed file since %s", lib.CheckingSince.Format(time.TimeOnly))
		}
		fmt.Fprintf(w, "    swaps %d%s\n", lib.Swaps, busy)
		if ev := lib.LastEvent; ev != nil {
			fmt.Fprintf(w, "    last event %s: %s", ev.Finished.Local().Format(time.RFC3339), ev.Outcome)
			if ev.Reason != "" {
				fmt.Fprintf(w, ": %s", ev.Reason)
			}
			if ev.SHA256 != "" {
				fmt.Fprintf(w, " (file sha256 %s)", ev.SHA256)
			}
			fmt.Fprintln(w)
		}
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// processStatus is the status of the process behind one control socket.
type processStatus struct {
	socket string
	status *hotswap.Status
}

// queryProcesses requests the status of every process with a control
// socket in dir, ordered by pid. Sockets that cannot be queried, usually
// left by a process that was killed, are reported on stderr and skipped.
func queryProcesses(ctx context.Context, stderr io.Writer, dir string) []processStatus {
	found, _ := queryProcessesStrict(ctx, stderr, dir)
	return found
}

// queryProcessesStrict is queryProcesses that also returns an error for
// each process that is alive but did not respond, as opposed to a socket
// left behind by a process that exited.
func queryProcessesStrict(ctx context.Context, stderr io.Writer, dir string) ([]processStatus, []error) {
	sockets, err := hotswap.ListSockets(dir)
	if err != nil {
		fmt.Fprintf(stderr, "libswap: %v\n", err)
		return nil, nil
	}

	results := make([]processStatus, len(sockets))
	errs := make([]error, len(sockets))
	var wg sync.WaitGroup
	for i, s := range sockets {
		wg.Go(func() {
			results[i].socket = s.Path
			results[i].status, errs[i] = queryProcess(ctx, s.Path)
		})
	}
	wg.Wait()

	var found []processStatus
	var silent []error
	for i, r := range results {
		if errs[i] != nil {
			fmt.Fprintf(stderr, "libswap: skipping pid %d: %v\n", sockets[i].PID, errs[i])
			if processAlive(sockets[i].PID) {
				silent = append(silent, fmt.Errorf("pid %d (socket %s) is running but did not respond: %w", sockets[i].PID, sockets[i].Path, errs[i]))
			}
			continue
		}
		found = append(found, r)
	}
	return found, silent
}

// processAlive reports whether a process with the given pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func queryProcess(ctx context.Context, socket string) (*hotswap.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	c, err := hotswap.Dial(ctx, socket)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Status(ctx)
}
