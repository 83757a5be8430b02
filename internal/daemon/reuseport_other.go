//go:build !unix

package daemon

import (
	"errors"
	"syscall"
)

func setReusePort(_, _ string, _ syscall.RawConn) error {
	return errors.New("--reuse-port needs a Unix system")
}
