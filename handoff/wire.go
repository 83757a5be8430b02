package handoff

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// wire is what a writer sends one parked stream in one write: the HTTP/1.1
// chunks of its pending items, as a list of parts that point into the
// items themselves (only the chunk headers are written out), so content
// is never copied on its way to the socket.
type wire struct {
	parts [][]byte
	hdr   []byte // chunk headers; parts point into it
	size  int    // bytes in parts
}

// maxIovecs is how many parts one writev takes (the kernel's IOV_MAX).
const maxIovecs = 1024

// keptParts and keptHdr bound what a writer keeps between streams, so a
// rare large write does not pin its memory.
const (
	keptParts = 4096
	keptHdr   = 16 << 10
)

var (
	crlf      = []byte("\r\n")
	lastChunk = []byte("0\r\n\r\n")
)

func (w *wire) reset() {
	clear(w.parts) // the items can be collected
	w.parts, w.hdr, w.size = w.parts[:0], w.hdr[:0], 0
}

// trim drops buffers grown past what is worth keeping.
func (w *wire) trim() {
	w.reset()
	if cap(w.parts) > keptParts {
		w.parts = nil
	}
	if cap(w.hdr) > keptHdr {
		w.hdr = nil
	}
}

// chunk adds content as one chunk. A slice of hdr stays valid when a
// later append moves hdr, so parts may point into it.
func (w *wire) chunk(content []byte) {
	start := len(w.hdr)
	w.hdr = strconv.AppendInt(w.hdr, int64(len(content)), 16)
	w.hdr = append(w.hdr, '\r', '\n')
	w.add(w.hdr[start:len(w.hdr):len(w.hdr)])
	w.add(content)
	w.add(crlf)
}

func (w *wire) add(b []byte) {
	w.parts = append(w.parts, b)
	w.size += len(b)
}

// bytes copies the wire form from offset on into one new slice (for the
// rare write that a full socket cut short).
func (w *wire) bytes(offset int) []byte {
	out := make([]byte, 0, w.size-offset)
	for _, p := range w.parts {
		if offset >= len(p) {
			offset -= len(p)
			continue
		}
		out = append(out, p[offset:]...)
		offset = 0
	}
	return out
}

// iovecs appends to iov the parts from offset on, at most maxIovecs.
func (w *wire) iovecs(iov []unix.Iovec, offset int) []unix.Iovec {
	for _, p := range w.parts {
		if offset >= len(p) {
			offset -= len(p)
			continue
		}
		b := p[offset:]
		offset = 0
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		if iov = append(iov, v); len(iov) == maxIovecs {
			break
		}
	}
	return iov
}
