// Command libswap installs a new build of a shared library and reports how
// every process that watches it with hotswap.Manager handled the change.
//
// Usage:
//
//	libswap push NEW.so --to PATH [--timeout 30s] [--socket-dir DIR]
//	libswap status [--json] [--socket-dir DIR]
//
// push checks NEW.so with the loader's parser, copies it next to PATH,
// fsyncs it, renames it over PATH and fsyncs the directory. It then sends a
// wait request to each process whose control socket lists PATH and prints
// one line per process with the outcome for the new file. The exit status
// is 1 if any process rejected the file, failed to swap or did not reply in
// time.
//
// status lists every process with a control socket and the libraries it
// watches.
//
// Processes are found through their control sockets in the socket
// directory, by default $XDG_RUNTIME_DIR/decouple or /tmp/decouple-<uid>.
// Each user has their own directory, so to reach the processes of another
// user, pass that user's directory with --socket-dir.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// push and status wait on sockets and stop cleanly on a signal. inspect
	// may sit in a C call that never returns, so it keeps the default
	// signal handling and a signal ends it at once.
	ctx, stop := context.Background(), func() {}
	if len(os.Args) < 2 || os.Args[1] != "inspect" {
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	}
	err := run(ctx, os.Stdout, os.Stderr, os.Args[1:])
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, new(usageError)):
		fmt.Fprintf(os.Stderr, "libswap: %v\n", err)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "libswap: %v\n", err)
		os.Exit(1)
	}
}
