//go:build unix

package daemon

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// setReusePort lets several processes listen on one address; the kernel
// spreads new connections over them (a fleet on one host, or a new
// process taking over from an old one without refusing connections).
func setReusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
