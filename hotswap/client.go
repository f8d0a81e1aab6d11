package hotswap

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Socket is a control socket found in a socket directory.
type Socket struct {
	PID  int    // process id taken from the file name
	Path string // path of the socket file
}

// ListSockets returns the control sockets in dir, ordered by pid. Files
// that are not named <pid>.sock are skipped. A missing dir yields no
// sockets and no error. The processes may have exited since; Dial fails for
// those.
func ListSockets(dir string) ([]Socket, error) {
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	return listSockets(dir), nil
}

func listSockets(dir string) []Socket {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var sockets []Socket
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".sock")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		sockets = append(sockets, Socket{PID: pid, Path: filepath.Join(dir, e.Name())})
	}
	slices.SortFunc(sockets, func(a, b Socket) int { return a.PID - b.PID })
	return sockets
}

// Client is a connection to one control socket. Its methods must not be
// called concurrently, because the process handles the requests on one
// connection in order.
type Client struct {
	conn net.Conn
	r    *bufio.Reader
}

// Dial connects to the control socket at path.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connect to control socket: %w", err)
	}
	return &Client{conn: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Status requests the status of the process.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	resp, err := c.roundTrip(ctx, &Request{Op: OpStatus})
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	if resp.Status == nil {
		return nil, fmt.Errorf("status: response has no status")
	}
	return resp.Status, nil
}

// WaitResult is the reply to Client.Wait.
type WaitResult struct {
	Event    *Event // nil when TimedOut
	TimedOut bool
}

// WaitRequest selects the file that Client.Wait waits for. Request
// describes the fields.
type WaitRequest struct {
	Path    string
	SHA256  string
	Timeout time.Duration // capped at MaxWaitTimeout by the process
	After   *uint64       // nil for no cursor
	Device  uint64
	Inode   uint64
}

// Wait sends a wait request and returns once the process has handled the
// file that req selects, or after req.Timeout.
func (c *Client) Wait(ctx context.Context, req WaitRequest) (*WaitResult, error) {
	resp, err := c.roundTrip(ctx, &Request{
		Op:        OpWait,
		Path:      req.Path,
		SHA256:    req.SHA256,
		TimeoutMS: max(req.Timeout.Milliseconds(), 1),
		After:     req.After,
		Device:    req.Device,
		Inode:     req.Inode,
	})
	if err != nil {
		return nil, fmt.Errorf("wait for %s: %w", req.Path, err)
	}
	return &WaitResult{Event: resp.Event, TimedOut: resp.TimedOut}, nil
}

// Check requests the process to load candidate as its Manager would load a
// new file at path, without switching to it, and returns the outcome.
func (c *Client) Check(ctx context.Context, path, candidate string) (*CheckResult, error) {
	resp, err := c.roundTrip(ctx, &Request{Op: OpCheck, Path: path, Candidate: candidate})
	if err != nil {
		return nil, fmt.Errorf("check %s for %s: %w", candidate, path, err)
	}
	if resp.Check == nil {
		return nil, fmt.Errorf("check %s for %s: response has no result", candidate, path)
	}
	return resp.Check, nil
}

// roundTrip sends req and reads its response. Canceling ctx closes the
// connection, which makes the pending read fail.
func (c *Client) roundTrip(ctx context.Context, req *Request) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	defer stop()

	line, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := c.conn.Write(append(line, '\n')); err != nil {
		return nil, contextError(ctx, err)
	}
	data, err := c.r.ReadBytes('\n')
	if err != nil {
		return nil, contextError(ctx, err)
	}
	var resp Response
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, fmt.Errorf("invalid response: %w", err)
	}
	if resp.Error != "" {
		return nil, fmt.Errorf("process reported: %s", resp.Error)
	}
	return &resp, nil
}

func contextError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
