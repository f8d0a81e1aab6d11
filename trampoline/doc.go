// Package trampoline guards a loaded library with a gate. Every call goes
// through the gate. The gate makes the library accessible for the call and
// inaccessible again when the last call returns, and it can switch to a new
// image of the library between two calls.
//
// A Gate holds the current image; Func and Var register exported symbols,
// and Func's CallN and CallArgs methods call through native stubs entered
// by runtime.cgocall, with no reflection and no heap allocation per call.
// Swap loads a new image, checks that it exports every registered symbol,
// switches new calls to it, drains the calls still running on the old
// image, and unloads that image.
//
// # Modes
//
//   - ModeOpen leaves the library accessible; the gate counts calls and
//     makes swaps atomic.
//   - ModeProtect makes every page PROT_NONE between calls: one mprotect
//     closes the window, and one per region opens it on the outermost call.
//   - ModeUnmap replaces the pages with an inaccessible reservation between
//     calls and maps them again on entry; writable data lives in a memfd so
//     that it survives.
//   - ModeKeys tags the pages with a memory protection key that no thread
//     may access; the native stub enables the key on the calling thread for
//     the call only, with WRPKRU. It needs a CPU with the pku and ospke
//     flags.
//
// Options.Linger keeps a window open for a while after the last call, so
// a burst of calls pays for one window.
//
// # Limits
//
// Linux threads share one address space. In ModeProtect and ModeUnmap the
// library is accessible to every thread while any goroutine is inside a
// call, so Stats.Exposure is the union of all call windows. Only ModeKeys
// is per thread, and protection keys do not stop instruction fetch: the
// code stays executable, but unreadable. Memory the library allocates
// with malloc lives in the process heap and stays accessible. A swap does
// not carry the library's globals or heap objects to the new image.
//
// # Memory
//
// Arguments are machine words. A Go pointer passed as uintptr(unsafe.Pointer(p))
// directly in a CallN argument list is moved to the heap and kept alive for
// the call. Pointers placed in Args are not: point them at heap memory and
// keep it alive with runtime.KeepAlive. C code must not keep a Go pointer
// after the call returns. A pointer a library returns into its own memory
// is readable only inside a window: use GoString, CopyOut or Hold.
package trampoline
