package hotswap

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/decouple-go/decouple/trampoline"
)

// DefaultDebounce is the quiet interval used when Options.Debounce is 0.
const DefaultDebounce = 100 * time.Millisecond

var (
	// ErrClosed is returned by methods of a Manager after Close.
	ErrClosed = errors.New("hotswap: manager closed")
	// ErrNotWatched is returned for a path that no Watch call registered.
	ErrNotWatched = errors.New("path is not watched")
)

// Options configures a Manager. The zero value is valid.
type Options struct {
	// Logger receives swaps, rejections, failures and watcher errors.
	// Nil discards them.
	Logger *slog.Logger
	// SocketDir is the directory of the control socket <SocketDir>/<pid>.sock.
	// Empty selects DefaultSocketDir(). A missing directory is created
	// with mode 0700.
	SocketDir string
	// Admission, if not nil, runs after the built-in admission checks with
	// the path of the file about to be loaded. A non-nil error rejects it.
	// For a check request (libswap push) the path is the candidate copy
	// next to the watched file, not the watched path itself.
	Admission func(path string) error
	// Debounce is how long a watched file must stay unchanged after a
	// notification before it is handled. 0 selects DefaultDebounce.
	Debounce time.Duration
}

// Manager watches library files and swaps them into their gates when they
// change, and serves the control socket that reports what it did.
type Manager struct {
	logger    *slog.Logger
	admission func(string) error
	debounce  time.Duration

	watcher    *fsnotify.Watcher
	socketPath string
	listener   *net.UnixListener

	stop chan struct{} // closed by Close
	wg   sync.WaitGroup

	mu     sync.Mutex
	closed bool
	libs   []*library          // in Watch order
	names  map[string]*library // absolute file path that triggers a library, to that library
	dirs   map[string]bool     // directories added to watcher
	conns  map[net.Conn]bool   // open control connections
}

// New starts a Manager: it creates the inotify instance and the control
// socket, after removing sockets in SocketDir left by processes that no
// longer exist.
func New(opts Options) (*Manager, error) {
	m := &Manager{
		logger:    opts.Logger,
		admission: opts.Admission,
		debounce:  opts.Debounce,
		stop:      make(chan struct{}),
		names:     make(map[string]*library),
		dirs:      make(map[string]bool),
		conns:     make(map[net.Conn]bool),
	}
	if m.logger == nil {
		m.logger = slog.New(slog.DiscardHandler)
	}
	if m.debounce <= 0 {
		m.debounce = DefaultDebounce
	}

	dir := opts.SocketDir
	if dir == "" {
		dir = DefaultSocketDir()
		if err := prepareSocketDir(dir, true); err != nil {
			return nil, err
		}
	} else if err := prepareSocketDir(dir, false); err != nil {
		return nil, err
	}
	m.removeStaleSockets(dir)

	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("create file watcher: %w (see fs.inotify.max_user_instances)", err)
	}
	m.watcher = w

	if err := m.listen(dir); err != nil {
		w.Close()
		return nil, err
	}

	m.wg.Add(2)
	go m.dispatchEvents()
	go m.serve()
	m.logger.Info("hot-swap manager started", "socket", m.socketPath)
	return m, nil
}

// SocketPath returns the path of the control socket.
func (m *Manager) SocketPath() string { return m.socketPath }

// Watch starts watching the library file at path and swaps it into g each
// time it is replaced, after the change passes admission.
//
// The parent directory is watched, not the file, because an atomic rename
// gives the path a new inode and a watch on the old inode would see nothing.
// If path is a symbolic link, the directory of its target is watched too,
// so both retargeting the link and replacing the target are seen.
// Watch does not load anything: g keeps serving the image it has now.
func (m *Manager) Watch(path string, g *trampoline.Gate) error {
	if g == nil {
		return fmt.Errorf("watch %s: nil gate", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	lib := &library{
		m:      m,
		path:   abs,
		gate:   g,
		isLink: fi.Mode()&fs.ModeSymlink != 0,
		signal: make(chan struct{}, 1),
	}
	if lib.isLink {
		target, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return fmt.Errorf("watch %s: resolve symbolic link: %w", path, err)
		}
		lib.target = target
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for _, other := range m.libs {
		if other.path == abs {
			return fmt.Errorf("watch %s: already watched", path)
		}
	}
	if err := m.addDirLocked(filepath.Dir(abs)); err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	m.names[abs] = lib
	if lib.isLink {
		// A failure here only loses notifications for in-place replacement
		// of the target, so it is logged and the link is still watched.
		if err := m.addDirLocked(filepath.Dir(lib.target)); err != nil {
			m.logger.Warn("cannot watch the directory of a symbolic link target", "path", abs, "target", lib.target, "error", err)
		}
		m.names[lib.target] = lib
	}
	m.libs = append(m.libs, lib)

	m.wg.Add(1)
	go lib.run()
	m.logger.Info("watching library", "path", abs, "target", lib.target, "image_sha256", g.Image().SHA256)
	return nil
}

// SetVersionFunc registers fn to report the version of the library watched
// at path, for the control socket and the log. fn is called after each swap
// and for each status request, so it must be safe to call concurrently with
// other calls into the library. A panic in fn is recovered and reported as
// the version.
func (m *Manager) SetVersionFunc(path string, fn func() string) error {
	lib, err := m.library(path)
	if err != nil {
		return err
	}
	lib.mu.Lock()
	lib.versionFn = fn
	lib.mu.Unlock()
	return nil
}

// Close stops the watchers and the control socket, waits for a swap in
// progress to finish, and removes the socket file. The gates stay open and
// keep serving their current images.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.stop)
	for c := range m.conns {
		c.Close()
	}
	m.mu.Unlock()

	errWatcher := m.watcher.Close()
	errListener := m.listener.Close()
	m.wg.Wait()

	if err := os.Remove(m.socketPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove control socket: %w", err)
	}
	if errListener != nil && !errors.Is(errListener, net.ErrClosed) {
		return fmt.Errorf("close control socket: %w", errListener)
	}
	if errWatcher != nil {
		return fmt.Errorf("close file watcher: %w", errWatcher)
	}
	m.logger.Info("hot-swap manager stopped", "socket", m.socketPath)
	return nil
}

// library returns the library watched at path, where path is the watched
// path or the target of the symbolic link at the watched path.
func (m *Manager) library(path string) (*library, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	for _, lib := range m.libs {
		if lib.path == abs {
			return lib, nil
		}
	}
	if lib := m.names[abs]; lib != nil {
		return lib, nil
	}
	return nil, fmt.Errorf("%s: %w", path, ErrNotWatched)
}

func (m *Manager) addDirLocked(dir string) error {
	if m.dirs[dir] {
		return nil
	}
	if err := m.watcher.Add(dir); err != nil {
		return fmt.Errorf("watch directory %s: %w (see fs.inotify.max_user_watches)", dir, err)
	}
	m.dirs[dir] = true
	return nil
}

// retarget updates the name that triggers lib after its symbolic link was
// resolved to target.
func (m *Manager) retarget(lib *library, target string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	lib.mu.Lock()
	old := lib.target
	lib.target = target
	lib.mu.Unlock()
	if old == target {
		return
	}
	if m.names[old] == lib {
		delete(m.names, old)
	}
	if err := m.addDirLocked(filepath.Dir(target)); err != nil {
		m.logger.Warn("cannot watch the directory of a symbolic link target", "path", lib.path, "target", target, "error", err)
	}
	m.names[target] = lib
}

// dispatchEvents forwards file system notifications to the libraries whose
// file they name.
func (m *Manager) dispatchEvents() {
	defer m.wg.Done()
	const trigger = fsnotify.Create | fsnotify.Write | fsnotify.Rename
	for {
		select {
		case ev, ok := <-m.watcher.Events:
			if !ok {
				return
			}
			name := filepath.Clean(ev.Name)
			m.mu.Lock()
			lib := m.names[name]
			lostDir := m.dirs[name] && ev.Op&(fsnotify.Remove|fsnotify.Rename) != 0
			m.mu.Unlock()
			if lostDir {
				m.logger.Error("watched directory was removed or renamed; changes in it are no longer seen", "dir", name)
			}
			if lib != nil && ev.Op&trigger != 0 {
				lib.notify(time.Now())
			}
		case err, ok := <-m.watcher.Errors:
			if !ok {
				return
			}
			m.logger.Error("file watcher error", "error", err)
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Notifications were dropped, so any library may have
				// changed. Checking all of them costs one hash each.
				m.mu.Lock()
				libs := append([]*library(nil), m.libs...)
				m.mu.Unlock()
				for _, lib := range libs {
					lib.notify(time.Now())
				}
			}
		}
	}
}
