package handoff

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gripd/gripd/grip"
)

type respResult struct {
	resp    *grip.HTTPResponseFormat
	body    []byte
	recover RecoverReason
	err     error
}

func startHoldResponse(ctx context.Context, sub *Subscriber, timeout time.Duration) <-chan respResult {
	res := make(chan respResult, 1)
	go func() {
		r, err := HoldResponse(ctx, sub, timeout)
		res <- respResult{r.Response, r.Body, r.Recover, err}
	}()
	return res
}

func waitResp(t *testing.T, res <-chan respResult) respResult {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(failAfter):
		t.Fatalf("HoldResponse did not return within %v", failAfter)
		return respResult{}
	}
}

func TestHoldResponseReturnsThePublishedResponse(t *testing.T) {
	h := NewHub(Config{})
	sub := h.Subscribe(KindResponse, []string{"c"})
	defer h.Unsubscribe(sub)
	res := startHoldResponse(context.Background(), sub, time.Hour)

	// A hint and a stream-only item are not answers to a long-poll.
	h.Deliver([]grip.Item{
		{Channel: "c", HTTPResponse: &grip.HTTPResponseFormat{Action: grip.ActionHint}},
		streamItem("c", "not for a long-poll"),
	})
	pub := respItem("c", `{"n":1}`)
	pub.HTTPResponse.Code = 201
	h.Deliver([]grip.Item{pub, respItem("c", "second")})

	r := waitResp(t, res)
	if r.err != nil {
		t.Fatalf("HoldResponse error: %v", r.err)
	}
	if r.resp == nil || r.resp.Code != 201 || string(r.resp.Body) != `{"n":1}` {
		t.Fatalf("HoldResponse = %+v, want the first published response (201)", r.resp)
	}
}

func TestHoldResponseItemQueuedBeforeHold(t *testing.T) {
	h := NewHub(Config{})
	sub := h.Subscribe(KindResponse, []string{"c"})
	defer h.Unsubscribe(sub)
	h.Deliver([]grip.Item{respItem("c", "early")})
	r := waitResp(t, startHoldResponse(context.Background(), sub, time.Hour))
	if r.err != nil || r.resp == nil || string(r.resp.Body) != "early" {
		t.Fatalf("HoldResponse = %+v, %v; want the queued response", r.resp, r.err)
	}
}

func TestHoldResponseTimeout(t *testing.T) {
	h := NewHub(Config{})
	sub := h.Subscribe(KindResponse, []string{"c"})
	defer h.Unsubscribe(sub)
	start := time.Now()
	r := waitResp(t, startHoldResponse(context.Background(), sub, 20*time.Millisecond))
	if r.resp != nil || r.err != nil {
		t.Fatalf("HoldResponse = %+v, %v; want nil, nil on timeout", r.resp, r.err)
	}
	if el := time.Since(start); el < 20*time.Millisecond {
		t.Errorf("returned after %v, before the 20ms timeout", el)
	}
}

func TestHoldResponseClientGone(t *testing.T) {
	h := NewHub(Config{})
	sub := h.Subscribe(KindResponse, []string{"c"})
	defer h.Unsubscribe(sub)
	ctx, cancel := context.WithCancel(context.Background())
	res := startHoldResponse(ctx, sub, time.Hour)
	cancel()
	r := waitResp(t, res)
	if r.resp != nil || !errors.Is(r.err, context.Canceled) {
		t.Fatalf("HoldResponse = %+v, %v; want nil, context.Canceled", r.resp, r.err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	r = waitResp(t, startHoldResponse(ctx, sub, time.Hour))
	if r.resp != nil || !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("HoldResponse = %+v, %v; want nil, context.DeadlineExceeded", r.resp, r.err)
	}
}

func TestHoldResponseHubClosed(t *testing.T) {
	h := NewHub(Config{})
	sub := h.Subscribe(KindResponse, []string{"c"})
	defer h.Unsubscribe(sub)
	res := startHoldResponse(context.Background(), sub, time.Hour)
	h.Close()
	// The caller sends its timeout response: nil, nil.
	if r := waitResp(t, res); r.resp != nil || r.err != nil {
		t.Fatalf("HoldResponse = %+v, %v; want nil, nil after Close", r.resp, r.err)
	}
}
