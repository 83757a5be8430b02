package handoff

import (
	"errors"
	"sync"

	"golang.org/x/sys/unix"
)

// A parked stream's client sends nothing while its response is coming;
// all there is to notice is the client leaving. A goroutine blocked in
// Read per stream would notice it, at the cost of a goroutine stack per
// held connection, the largest part of what a parked stream costs. The
// watch instead puts every parked socket in one epoll set, read by one
// goroutine that exists while there is a socket to watch.

// clientWatch is the hub's watch over parked clients.
type clientWatch struct {
	mu  sync.Mutex
	set *watchSet // nil while nothing is watched
}

// watchSet is one epoll set and the goroutine that waits on it. When
// its last socket leaves, its goroutine is told to stop and a later
// stream starts a new set.
type watchSet struct {
	epfd    int
	stopFd  int // an eventfd: written to stop the goroutine
	streams map[int32]*parkedStream
}

// add watches p's socket; it reports false when it cannot (the stream
// then watches with a goroutine of its own).
func (w *clientWatch) add(p *parkedStream) bool {
	fd := -1
	if err := p.raw.Control(func(s uintptr) { fd = int(s) }); err != nil || fd < 0 {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.set == nil {
		set, err := newWatchSet()
		if err != nil {
			return false
		}
		w.set = set
		go set.run(w)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
	if err := unix.EpollCtl(w.set.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		w.stopIfEmpty()
		return false
	}
	p.watchFd, p.watched = int32(fd), true
	w.set.streams[int32(fd)] = p
	return true
}

// remove stops watching p's socket. It is called before the socket is
// closed, so that its number, once reused, is not taken for p's.
func (w *clientWatch) remove(p *parkedStream) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !p.watched || w.set == nil || w.set.streams[p.watchFd] != p {
		return
	}
	delete(w.set.streams, p.watchFd)
	_ = unix.EpollCtl(w.set.epfd, unix.EPOLL_CTL_DEL, int(p.watchFd), nil)
	w.stopIfEmpty()
}

// stopIfEmpty stops the set's goroutine once nothing is left to watch.
// w.mu is held.
func (w *clientWatch) stopIfEmpty() {
	if len(w.set.streams) > 0 {
		return
	}
	one := [8]byte{1}
	_, _ = unix.Write(w.set.stopFd, one[:])
	w.set = nil
}

// lookup returns the stream watched on fd in set, if set is still the
// current one.
func (w *clientWatch) lookup(set *watchSet, fd int32) *parkedStream {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.set != set {
		// Stopped: its streams all left already.
		return nil
	}
	return set.streams[fd]
}

func newWatchSet() (*watchSet, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	stopFd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(stopFd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, stopFd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(stopFd)
		return nil, err
	}
	return &watchSet{epfd: epfd, stopFd: stopFd, streams: map[int32]*parkedStream{}}, nil
}

// run waits for parked clients to send or leave, until stopped.
func (set *watchSet) run(w *clientWatch) {
	defer unix.Close(set.epfd)
	defer unix.Close(set.stopFd)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(set.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return // cannot happen with a valid set; the streams keep their write path
		}
		for _, ev := range events[:n] {
			if ev.Fd == int32(set.stopFd) {
				return
			}
			if p := w.lookup(set, ev.Fd); p != nil {
				p.checkClient()
			}
		}
	}
}

// checkClient reads what the client sent, without waiting: nothing left
// to read and the connection closed (or failed) means the client left.
// An HTTP/1.1 client sends nothing while its response is still coming, so
// anything read is discarded.
func (p *parkedStream) checkClient() {
	gone := false
	var buf [512]byte
	err := p.raw.Read(func(fd uintptr) bool {
		for {
			n, err := unix.Read(int(fd), buf[:])
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
			case err != nil || n == 0:
				gone = true
			default:
				continue // discard, and read on
			}
			return true
		}
	})
	if gone || err != nil {
		p.end(EndClient, nil)
	}
}
