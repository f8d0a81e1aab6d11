package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// usageError is an invalid command line. main exits with status 2 for it.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const mainUsage = `Usage:
  libswap push NEW.so --to PATH [--timeout 30s] [--socket-dir DIR]
  libswap status [--json] [--socket-dir DIR]
  libswap inspect LIB [--load] [--call SYMBOL] [--backend auto|own|system] [--json]

Commands:
  push     install NEW.so at PATH atomically and report each watching process's outcome
  status   list processes with a control socket and the libraries they watch
  inspect  print what the loader sees in LIB, optionally load it and call a function

Run "libswap COMMAND -h" for the flags of a command.
`

// run executes the command line args (without the program name), writing
// results to stdout and diagnostics to stderr.
func run(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage)
		return usageError{"missing command"}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "push":
		return runPush(ctx, stdout, stderr, rest)
	case "status":
		return runStatus(ctx, stdout, stderr, rest)
	case "inspect":
		return runInspect(ctx, stdout, stderr, rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, mainUsage)
		return nil
	default:
		fmt.Fprint(stderr, mainUsage)
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

// newFlagSet returns a flag set that reports errors through parseArgs
// instead of printing them itself.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseArgs parses args with fs, allowing flags after positional arguments
// as in "push NEW.so --to PATH", and returns the positional arguments. On
// -h it writes usage and the flag defaults to stdout and returns
// flag.ErrHelp. On an invalid command line it writes them to stderr and
// returns a usageError.
func parseArgs(fs *flag.FlagSet, usage string, stdout, stderr io.Writer, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printUsage(stdout, fs, usage)
				return nil, flag.ErrHelp
			}
			printUsage(stderr, fs, usage)
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func printUsage(w io.Writer, fs *flag.FlagSet, usage string) {
	fmt.Fprint(w, usage)
	var flags strings.Builder
	fs.SetOutput(&flags)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	if flags.Len() > 0 {
		fmt.Fprintf(w, "\nFlags:\n%s", flags.String())
	}
}

// errUsagef writes usage to stderr and returns a usageError.
func errUsagef(stderr io.Writer, fs *flag.FlagSet, usage, format string, args ...any) error {
	printUsage(stderr, fs, usage)
	return usageError{fmt.Sprintf(format, args...)}
}
