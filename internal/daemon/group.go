package daemon

import "sync"

// group owns goroutines: every goroutine the daemon starts is started by
// Go, and Wait returns when all have returned. The first error one
// returns is kept and closes Failed, so Run can stop when a listener
// fails. (errgroup without its context, which the daemon does not need:
// each goroutine is stopped by closing what it serves.)
type group struct {
	wg     sync.WaitGroup
	once   sync.Once
	failed chan struct{}
	err    error // set once, before failed is closed
}

func newGroup() *group { return &group{failed: make(chan struct{})} }

// Go runs f in a new goroutine owned by the group.
func (g *group) Go(f func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(); err != nil {
			g.once.Do(func() {
				g.err = err
				close(g.failed)
			})
		}
	}()
}

// Failed is closed when a goroutine has returned an error; Err is then
// that error.
func (g *group) Failed() <-chan struct{} { return g.failed }

// Err is the first error a goroutine returned, once Failed is closed.
func (g *group) Err() error {
	select {
	case <-g.failed:
		return g.err
	default:
		return nil
	}
}

// Wait returns when every goroutine has returned.
func (g *group) Wait() { g.wg.Wait() }
