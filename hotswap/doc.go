// Package hotswap replaces a running library with a new build when its file
// changes on disk, and reports what it did on a per-process control socket.
//
// A Manager watches library files with inotify (through fsnotify). When a
// watched file changes, the Manager waits until it has been quiet for the
// debounce interval and checks the new file (admission). It then calls
// (*trampoline.Gate).Swap, which loads the new image and switches calls to
// it, then drains the calls still running on the old image and unloads it.
// Changes of one library are handled one at a time. A change that arrives
// during a swap is handled after it. A file that fails admission or a swap
// that fails leaves the running image serving, and the Manager logs the
// error and records it as the library's last event.
//
// Admission rejects a file that is not a regular file, that is writable by
// group or others, that is owned by a uid other than root and the uid of the
// process, that loader.ParseBytes rejects, or that is an executable. A
// symbolic link at the watched path is followed only when the watched path
// was a symbolic link when Watch was called. Options.Admission adds a check
// of the caller's own.
//
// # Control socket
//
// Each Manager listens on <SocketDir>/<pid>.sock with mode 0600. When it
// starts, it removes the sockets of processes that no longer exist. The
// protocol is one JSON object per line in each direction. The request
// {"op":"status"} returns the pid, the program name and every watched
// library with its current image, swap count and last event. The request
// {"op":"wait","path":P,"sha256":H,"timeout_ms":N} returns once the Manager
// has handled the file with SHA-256 H at path P, or when N milliseconds have
// passed. Its optional fields after, device and inode exclude events for an
// earlier file with the same contents. Request and Response define the
// fields, and cmd/libswap is the client for operators.
//
// # Operational caveats
//
// Each Manager uses one inotify instance and one inotify watch per
// directory that holds a watched file or symlink target. The kernel limits
// these per user with the sysctls fs.inotify.max_user_instances and
// fs.inotify.max_user_watches. When a limit is reached, New or Watch fails
// with "too many open files" or "no space left on device". A queue overflow
// (fs.inotify.max_queued_events) makes the Manager recheck every library.
// Removing or renaming a watched directory ends its watch, which the Manager
// logs. The fsnotify documentation says that notifications generally do not
// work on network file systems.
//
// Only an atomic replacement is safe: write the new file under a temporary
// name in the same directory, fsync it, and rename it over the watched path,
// as cmd/libswap push does. A write into the watched file in place is
// detected, and admission rejects the file as long as it does not parse,
// which catches most half-written files. A file that happens to parse while
// incomplete can still be loaded and then fail. Writing in place also
// changes the running image, because the loader maps the file's pages with
// MAP_PRIVATE and pages that were not yet copied show the new contents.
// Truncating the file, as cp does before it writes, kills the process with
// SIGBUS on its next access to a code page that is not resident, even when
// the new contents are identical. The same holds for any library the
// system loader mapped.
// A chmod or chown alone does not trigger a check: after fixing the mode or
// owner of a rejected file, replace it again.
//
// A swap carries nothing of the old image's state to the new one. Global and
// static variables of the new image start from their initial values.
// Pointers into the old image, such as handles or strings in its read-only
// data, must not be used after the swap, because the old image is unloaded
// once its calls have drained. Heap objects the old image allocated with
// malloc stay valid, but the new image may use a different layout for them.
package hotswap
