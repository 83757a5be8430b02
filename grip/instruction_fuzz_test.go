package grip

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// checkInstruction asserts what must hold for every instruction
// ParseInstruction accepts, whatever the backend sent.
func checkInstruction(t *testing.T, inst *Instruction) {
	t.Helper()
	switch inst.Hold {
	case HoldNone, HoldResponse, HoldStream:
	default:
		t.Fatalf("Hold = %q, not a valid mode", inst.Hold)
	}
	if inst.Timeout < MinTimeout {
		t.Fatalf("Timeout = %v, below %v", inst.Timeout, MinTimeout)
	}
	if inst.Hold != HoldNone && len(inst.Channels) == 0 {
		t.Fatalf("%s hold without channels", inst.Hold)
	}
	for _, c := range inst.Channels {
		if c.Name == "" {
			t.Fatalf("channel with an empty name: %+v", inst.Channels)
		}
		if len(c.Filters) > MaxFiltersPerChannel {
			t.Fatalf("channel %q has %d filters", c.Name, len(c.Filters))
		}
	}
	if ka := inst.KeepAlive; ka != nil {
		if ka.Timeout < time.Second {
			t.Fatalf("keep-alive timeout %v, below 1s", ka.Timeout)
		}
		if ka.Mode != KeepAliveIdle && ka.Mode != KeepAliveInterval {
			t.Fatalf("keep-alive mode %q", ka.Mode)
		}
	}
	if inst.Response.Code < 100 || inst.Response.Code > 999 {
		t.Fatalf("response code %d", inst.Response.Code)
	}
	if inst.Response.Header == nil {
		t.Fatal("nil Response.Header")
	}
	for k := range inst.Response.Header {
		if isGripHeader(k) {
			t.Fatalf("Grip header %q left in the client response: %v", k, inst.Response.Header)
		}
	}
}

func FuzzParseHeaders(f *testing.F) {
	f.Add("stream", "a; prev-id=1", "", "ka; timeout=20", "", "", "")
	f.Fuzz(func(t *testing.T, hold, channel, timeout, keepAlive, link, status, setMeta string) {
		h := http.Header{"Content-Type": {"text/plain"}}
		set := func(name, v string, repeatable bool) {
			if v == "" {
				return
			}
			if !repeatable {
				h.Set(name, v)
				return
			}
			// A newline separates header lines of a repeatable header.
			for _, line := range strings.Split(v, "\n") {
				h.Add(name, line)
			}
		}
		set("Grip-Hold", hold, false)
		set("Grip-Channel", channel, true)
		set("Grip-Timeout", timeout, false)
		set("Grip-Keep-Alive", keepAlive, false)
		set("Grip-Link", link, true)
		set("Grip-Status", status, false)
		set("Grip-Set-Meta", setMeta, true)
		inst, err := ParseInstruction(200, h, nil)
		if err != nil {
			if inst != nil {
				t.Fatalf("instruction %+v returned with error %v", inst, err)
			}
			return
		}
		checkInstruction(t, inst)
		if got := inst.Response.Header.Get("Content-Type"); got != "text/plain" {
			t.Fatalf("Content-Type = %q, want the backend's text/plain", got)
		}
	})
}

func FuzzParseInstruct(f *testing.F) {
	f.Add([]byte(`{"hold":{"mode":"stream","channels":[{"name":"a"}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		h := http.Header{"Content-Type": {InstructContentType}}
		inst, err := ParseInstruction(200, h, body)
		if err != nil {
			if inst != nil {
				t.Fatalf("instruction %+v returned with error %v", inst, err)
			}
			return
		}
		checkInstruction(t, inst)
	})
}
