package trampoline

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/decouple-go/decouple/loader"
)

// KeysSupported reports whether the CPU and kernel offer memory protection
// keys, and if not, which of the cpuinfo flags pku and ospke are missing.
func KeysSupported() (bool, string) {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return false, fmt.Sprintf("read /proc/cpuinfo: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "flags") {
			continue
		}
		have := map[string]bool{}
		for _, fl := range strings.Fields(line[strings.IndexByte(line, ':')+1:]) {
			have[fl] = true
		}
		var missing []string
		for _, want := range []string{"pku", "ospke"} {
			if !have[want] {
				missing = append(missing, want)
			}
		}
		if len(missing) > 0 {
			return false, "CPU flags " + strings.Join(missing, " and ") + " missing from /proc/cpuinfo"
		}
		return true, ""
	}
	return false, "no flags line in /proc/cpuinfo"
}

// NOTE: ModeKeys (this file, and the WRPKRU path of internal/ccall's
// stubs) has only run on machines without PKU, where it stops at
// KeysSupported. Its tests skip there, so they have not run on PKU hardware.

// allocKey allocates a protection key whose access is disabled on the
// calling thread; Linux starts every thread with all keys but key 0
// disabled, so the key is inaccessible everywhere until a gate call
// enables it on its own thread.
func allocKey() (int, error) {
	if ok, why := KeysSupported(); !ok {
		return -1, fmt.Errorf("mode keys: %s: %w", why, loader.ErrNotSupported)
	}
	key, _, e := unix.Syscall(unix.SYS_PKEY_ALLOC, 0, 1 /* PKEY_DISABLE_ACCESS */, 0)
	if e == unix.ENOSPC {
		return -1, fmt.Errorf("mode keys: pkey_alloc: %w: no protection key left (the CPU offers a process 15, and each ModeKeys gate keeps one until Close); close a gate or open this one in ModeProtect", e)
	}
	if e != 0 {
		return -1, fmt.Errorf("mode keys: pkey_alloc: %w", e)
	}
	return int(key), nil
}

func (g *Gate) freeKey() {
	if g.pkey > 0 {
		unix.Syscall(unix.SYS_PKEY_FREE, uintptr(g.pkey), 0, 0)
		g.pkey = -1
	}
}
