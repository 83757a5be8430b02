//go:build !unix

package main

import (
	"errors"
	"syscall"
)

func setReusePort(_, _ string, _ syscall.RawConn) error {
	return errors.New("--reuse-port needs a Unix system")
}
