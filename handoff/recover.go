package handoff

// Recover is the control API's POST /recover (Pushpin's recover
// command): every channel's last id is forgotten, and every recoverable
// connection is told to recover (Recovering): held long-polls re-request
// their backend, streams with a next link fetch it. The owners pace their
// requests; Recover itself returns at once.
func (h *Hub) Recover() {
	h.ForgetLastIDs()
	for _, s := range h.registered() {
		if s.recoverC != nil {
			select {
			case s.recoverC <- struct{}{}:
			default: // already signalled
			}
			s.wake()
		}
	}
}
