package hotswap

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxRequestLen bounds one request line on the control socket.
const maxRequestLen = 64 << 10

// maxSocketPathLen is the longest path a Unix socket address can hold on
// Linux: sun_path is 108 bytes including the terminating NUL.
const maxSocketPathLen = 107

// DefaultSocketDir returns the directory that New and cmd/libswap use when
// none is given: $XDG_RUNTIME_DIR/decouple, or /tmp/decouple-<uid> when
// XDG_RUNTIME_DIR is not set. It does not use $TMPDIR, so that processes
// with different environments still find each other.
func DefaultSocketDir() string {
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		return filepath.Join(dir, "decouple")
	}
	return fmt.Sprintf("/tmp/decouple-%d", os.Getuid())
}

// prepareSocketDir creates dir with mode 0700 if it is missing. For the
// default directory, which may be under the shared /tmp, it also checks
// that dir is owned by this uid and closed to group and others, so another
// user cannot create it first and read or replace the sockets.
func prepareSocketDir(dir string, strict bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("socket directory %s is not a directory (type %s)", dir, typeName(fi.Mode()))
	}
	if !strict {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("socket directory %s: stat returned no owner information", dir)
	}
	if uid := os.Getuid(); int(st.Uid) != uid {
		return fmt.Errorf("socket directory %s is owned by uid %d, not by uid %d that runs this process; remove it or set Options.SocketDir", dir, st.Uid, uid)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("socket directory %s has mode %04o; it must not be accessible to group or others (chmod 0700 it)", dir, perm)
	}
	return nil
}

// removeStaleSockets deletes <pid>.sock files in dir whose process no
// longer exists. A socket whose pid exists is kept, even if that pid now
// belongs to an unrelated process.
func (m *Manager) removeStaleSockets(dir string) {
	for _, s := range listSockets(dir) {
		if s.PID == os.Getpid() || processExists(s.PID) {
			continue
		}
		if err := os.Remove(s.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			m.logger.Warn("cannot remove stale control socket", "socket", s.Path, "error", err)
			continue
		}
		m.logger.Info("removed stale control socket", "socket", s.Path, "pid", s.PID)
	}
}

func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func (m *Manager) listen(dir string) error {
	path := filepath.Join(dir, strconv.Itoa(os.Getpid())+".sock")
	if len(path) > maxSocketPathLen {
		return fmt.Errorf("control socket path %s is too long (%d bytes, maximum %d for a Unix socket address); set Options.SocketDir to a shorter directory",
			path, len(path), maxSocketPathLen)
	}

	// A socket with this pid is either left by an earlier process that had
	// the same pid, or served by another Manager in this process.
	if _, err := os.Lstat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return fmt.Errorf("control socket %s is already served, probably by another Manager in this process; close it first", path)
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove stale control socket: %w", err)
		}
	}

	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("listen on control socket: %w", err)
	}
	// Close removes the file itself, after the goroutines have stopped.
	l.SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		os.Remove(path)
		return fmt.Errorf("control socket: %w", err)
	}
	m.listener = l
	m.socketPath = path
	return nil
}

func (m *Manager) serve() {
	defer m.wg.Done()
	for {
		c, err := m.listener.Accept()
		if err != nil {
			select {
			case <-m.stop:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.logger.Error("control socket accept failed; the socket stops serving", "socket", m.socketPath, "error", err)
			return
		}

		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			c.Close()
			return
		}
		m.conns[c] = true
		m.wg.Add(1)
		m.mu.Unlock()
		go m.serveConn(c)
	}
}

func (m *Manager) serveConn(c net.Conn) {
	defer m.wg.Done()
	defer func() {
		m.mu.Lock()
		delete(m.conns, c)
		m.mu.Unlock()
		c.Close()
	}()

	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 0, 4096), maxRequestLen)
	enc := json.NewEncoder(c)
	for sc.Scan() {
		var req Request
		var resp Response
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp.Error = fmt.Sprintf("invalid request: %v", err)
		} else {
			resp = m.handleRequest(&req)
		}
		if err := enc.Encode(&resp); err != nil {
			m.logger.Debug("control connection write failed", "error", err)
			return
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, net.ErrClosed) {
		m.logger.Debug("control connection read failed", "error", err)
	}
}

func (m *Manager) handleRequest(req *Request) Response {
	switch req.Op {
	case OpStatus:
		return Response{Status: m.status()}
	case OpWait:
		return m.wait(req)
	case OpCheck:
		return m.check(req)
	default:
		return Response{Error: fmt.Sprintf("unknown op %q; valid ops are %q, %q and %q", req.Op, OpStatus, OpWait, OpCheck)}
	}
}

// check loads req.Candidate for the library watched at req.Path as a swap
// would, after the same admission, and unloads it again.
func (m *Manager) check(req *Request) Response {
	if req.Path == "" || req.Candidate == "" {
		return Response{Error: "check: missing path or candidate"}
	}
	lib, err := m.library(req.Path)
	if err != nil {
		return Response{Error: fmt.Sprintf("check: %v", err)}
	}

	log := m.logger.With("path", lib.path, "candidate", req.Candidate)
	log.Info("checking candidate")
	lib.mu.Lock()
	if lib.checks == 0 {
		lib.checking = time.Now()
	}
	lib.checks++
	lib.mu.Unlock()
	defer func() {
		lib.mu.Lock()
		if lib.checks--; lib.checks == 0 {
			lib.checking = time.Time{}
		}
		lib.mu.Unlock()
	}()

	file, err := admit(req.Candidate, false, m.admission)
	if err != nil {
		log.Info("candidate rejected by admission", "error", err)
		return Response{Check: &CheckResult{Outcome: OutcomeRefused, Reason: err.Error()}}
	}
	if err := lib.gate.Check(file.path); err != nil {
		log.Info("candidate failed to load", "error", err)
		return Response{Check: &CheckResult{Outcome: OutcomeFailed, Reason: err.Error()}}
	}
	return Response{Check: &CheckResult{Outcome: OutcomeSwitched}}
}

func (m *Manager) status() *Status {
	m.mu.Lock()
	libs := append([]*library(nil), m.libs...)
	m.mu.Unlock()

	s := &Status{
		PID:       os.Getpid(),
		Program:   filepath.Base(os.Args[0]),
		Libraries: make([]LibraryStatus, 0, len(libs)),
	}
	for _, lib := range libs {
		s.Libraries = append(s.Libraries, lib.status())
	}
	return s
}

func (m *Manager) wait(req *Request) Response {
	if req.Path == "" {
		return Response{Error: "wait: missing path"}
	}
	sha := strings.ToLower(req.SHA256)
	if len(sha) != 64 || strings.Trim(sha, "0123456789abcdef") != "" {
		return Response{Error: fmt.Sprintf("wait: invalid sha256 %q; expected 64 hexadecimal digits", req.SHA256)}
	}
	req.SHA256 = sha
	timeout := DefaultWaitTimeout
	if req.TimeoutMS > 0 {
		timeout = min(time.Duration(req.TimeoutMS)*time.Millisecond, MaxWaitTimeout)
	}

	lib, err := m.library(req.Path)
	if err != nil {
		return Response{Error: fmt.Sprintf("wait: %v", err)}
	}
	ev, w := lib.await(req)
	if ev != nil {
		return Response{Event: ev}
	}
	defer lib.cancel(w)

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case got := <-w.ch:
		return Response{Event: &got}
	case <-timer.C:
		return Response{TimedOut: true}
	case <-m.stop:
		return Response{Error: "wait: manager closed"}
	}
}
