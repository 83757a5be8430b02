package grip

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HoldMode is how a client is parked: not at all, as a long-poll awaiting
// one response, or as an open stream.
type HoldMode string

// The hold modes of Grip-Hold and hold.mode.
const (
	HoldNone     HoldMode = ""
	HoldResponse HoldMode = "response"
	HoldStream   HoldMode = "stream"
)

// Limits and defaults Pushpin applies to instructions; gripd keeps them so
// backends behave the same behind either proxy.
const (
	DefaultTimeout          = 55 * time.Second
	MinTimeout              = 5 * time.Second
	DefaultKeepAliveTimeout = 55 * time.Second
	DefaultLinkTimeout      = 120 * time.Second
	MaxFiltersPerChannel    = 5
	// MaxInstructBody is the most of a backend's body gripd reads to act on
	// an instruction (an application/grip-instruct body or a response
	// hold's timeout body).
	MaxInstructBody = 100000
)

// InstructContentType is the content type of the JSON instruction form.
const InstructContentType = "application/grip-instruct"

// Feature is the Grip-Feature header gripd sends to backends: what it
// supports, so a backend can tell a GRIP proxy is in front of it.
const Feature = "status, session, link:next, filter:skip-self, filter:skip-users, filter:require-sub, filter:build-id, filter:var-subst"

// Channel is one subscription asked for by an instruction.
type Channel struct {
	Name    string
	PrevID  string   // "" when not given
	Filters []string // at most MaxFiltersPerChannel
}

// KeepAliveMode says when keep-alive data is sent.
type KeepAliveMode string

// Keep-alive modes: idle restarts the timer on every send, interval does not.
const (
	KeepAliveIdle     KeepAliveMode = "idle"
	KeepAliveInterval KeepAliveMode = "interval"
)

// KeepAlive is data written to an idle stream so intermediaries and
// clients keep it open.
type KeepAlive struct {
	Data    []byte
	Timeout time.Duration
	Mode    KeepAliveMode
}

// Link is a Grip-Link (rel=next or rel=gone); see link.go.
type Link struct {
	URL     string
	Rel     string
	Timeout time.Duration
}

// Response is what a client is sent: the backend's response with the GRIP
// headers removed, or the "response" of an instruct body.
type Response struct {
	Code   int
	Reason string // "" means the standard phrase
	Header http.Header
	Body   []byte
}

// Instruction is everything a backend asked of gripd in one response.
type Instruction struct {
	Hold     HoldMode
	Channels []Channel
	// Timeout is how long a response hold waits for a publish
	// (DefaultTimeout, never below MinTimeout).
	Timeout   time.Duration
	KeepAlive *KeepAlive // nil: no keep-alive
	Meta      map[string]string
	Links     []Link
	// Response is the client's response: sent at once (stream hold or no
	// hold) or on timeout (response hold). For the header form its Body is
	// left for the caller to fill, so a stream's body can be copied through
	// without buffering it.
	Response Response
}

// IsInstruct reports whether a response uses the JSON instruction form.
func IsInstruct(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == InstructContentType
}

// HasInstruction reports whether a backend response carries any GRIP
// instruction: a Grip-* header or an application/grip-instruct body.
func HasInstruction(h http.Header) bool {
	if IsInstruct(h) {
		return true
	}
	for k := range h {
		if isGripHeader(k) {
			return true
		}
	}
	return false
}

func isGripHeader(name string) bool {
	return len(name) >= 5 && strings.EqualFold(name[:5], "grip-")
}

// StripGripHeaders removes every Grip-* header in place.
func StripGripHeaders(h http.Header) {
	for k := range h {
		if isGripHeader(k) {
			delete(h, k)
		}
	}
}

// ParseInstruction reads the instruction of a backend response with
// status code and headers h. body is the response body for the JSON form
// (IsInstruct); for the header form it may be nil and is only copied into
// Response.Body.
func ParseInstruction(code int, h http.Header, body []byte) (*Instruction, error) {
	inst, err := parseGripHeaders(code, h)
	if err != nil {
		return nil, err
	}
	inst.Response.Body = body
	if IsInstruct(h) {
		if code != http.StatusOK {
			return nil, fmt.Errorf("%s response with status %d, want 200", InstructContentType, code)
		}
		if err := inst.applyInstructJSON(body); err != nil {
			return nil, fmt.Errorf("%s body: %w", InstructContentType, err)
		}
	}
	// Checked after the JSON overlay: a Grip-Hold header may get its
	// channels from the instruct body.
	if inst.Hold != HoldNone && len(inst.Channels) == 0 {
		return nil, fmt.Errorf("Grip-Hold: %s hold without any Grip-Channel", inst.Hold)
	}
	return inst, nil
}

// parseGripHeaders builds an instruction from the Grip-* headers.
func parseGripHeaders(code int, h http.Header) (*Instruction, error) {
	inst := &Instruction{Timeout: DefaultTimeout, Response: Response{Code: code, Header: h.Clone()}}
	if inst.Response.Header == nil {
		inst.Response.Header = http.Header{}
	}
	if v := h.Get("Grip-Hold"); v != "" {
		switch mode := HoldMode(strings.TrimSpace(v)); mode {
		case HoldResponse, HoldStream:
			inst.Hold = mode
		default:
			return nil, fmt.Errorf("Grip-Hold: unknown mode %q", v)
		}
	}
	channels, err := parseChannels(h.Values("Grip-Channel"))
	if err != nil {
		return nil, fmt.Errorf("Grip-Channel: %w", err)
	}
	inst.Channels = channels
	if v := h.Get("Grip-Timeout"); v != "" {
		secs, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || secs < 0 {
			return nil, fmt.Errorf("Grip-Timeout: %q is not a number of seconds", v)
		}
		inst.Timeout = clampTimeout(secs)
	}
	if v := h.Get("Grip-Keep-Alive"); v != "" {
		ka, err := parseKeepAlive(v)
		if err != nil {
			return nil, fmt.Errorf("Grip-Keep-Alive: %w", err)
		}
		inst.KeepAlive = ka
	}
	if lines := h.Values("Grip-Set-Meta"); len(lines) > 0 {
		meta, err := parseSetMeta(lines)
		if err != nil {
			return nil, fmt.Errorf("Grip-Set-Meta: %w", err)
		}
		inst.Meta = meta
	}
	if lines := h.Values("Grip-Link"); len(lines) > 0 {
		links, err := parseLinks(lines)
		if err != nil {
			return nil, fmt.Errorf("Grip-Link: %w", err)
		}
		inst.Links = links
	}
	if v := h.Get("Grip-Status"); v != "" {
		codeStr, reason, _ := strings.Cut(strings.TrimSpace(v), " ")
		c, err := strconv.Atoi(codeStr)
		if err != nil || c < 100 || c > 999 {
			return nil, fmt.Errorf("Grip-Status: bad status %q", v)
		}
		inst.Response.Code, inst.Response.Reason = c, strings.TrimSpace(reason)
	}
	expose := h.Values("Grip-Expose-Headers")
	StripGripHeaders(inst.Response.Header)
	if len(expose) > 0 {
		inst.Response.Header = KeepHeaders(inst.Response.Header, expose)
	}
	return inst, nil
}

// KeepHeaders returns only the headers of h named in the comma-separated
// lists of names (Grip-Expose-Headers).
func KeepHeaders(h http.Header, names []string) http.Header {
	out := http.Header{}
	for _, line := range names {
		for _, n := range strings.Split(line, ",") {
			n = http.CanonicalHeaderKey(strings.TrimSpace(n))
			if vs, ok := h[n]; ok && n != "" {
				out[n] = vs
			}
		}
	}
	return out
}

func clampTimeout(secs int) time.Duration {
	const maxSecs = 24 * 60 * 60 // keeps the Duration far from overflow
	secs = min(secs, maxSecs)
	return max(time.Duration(secs)*time.Second, MinTimeout)
}

func parseChannels(lines []string) ([]Channel, error) {
	values, err := parseHeaderList(lines)
	if err != nil {
		return nil, err
	}
	var out []Channel
	for _, v := range values {
		if v.First == "" {
			return nil, errors.New("empty channel name")
		}
		ch := Channel{Name: v.First}
		for _, p := range v.Params {
			switch p.Key {
			case "prev-id":
				ch.PrevID = p.Value
			case "filter":
				ch.Filters = append(ch.Filters, p.Value)
			}
		}
		if err := addChannel(&out, ch); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// addChannel appends ch. Every channel is kept: Pushpin silently drops
// those past 20, but a subscription that quietly never arrives is hard to
// debug, so the proxy enforces its own (configurable) limit and says so.
func addChannel(list *[]Channel, ch Channel) error {
	if len(ch.Filters) > MaxFiltersPerChannel {
		return fmt.Errorf("channel %q has %d filters, at most %d allowed", ch.Name, len(ch.Filters), MaxFiltersPerChannel)
	}
	*list = append(*list, ch)
	return nil
}

func parseKeepAlive(v string) (*KeepAlive, error) {
	hv, err := parseHeaderValue(v)
	if err != nil {
		return nil, err
	}
	ka := &KeepAlive{Timeout: DefaultKeepAliveTimeout, Mode: KeepAliveIdle}
	format := "raw"
	for _, p := range hv.Params {
		switch p.Key {
		case "format":
			format = p.Value
		case "timeout":
			secs, err := strconv.Atoi(p.Value)
			if err != nil || secs < 1 {
				return nil, fmt.Errorf("timeout %q is not a positive number of seconds", p.Value)
			}
			ka.Timeout = time.Duration(min(secs, 24*60*60)) * time.Second
		case "mode":
			switch m := KeepAliveMode(p.Value); m {
			case KeepAliveIdle, KeepAliveInterval:
				ka.Mode = m
			default:
				return nil, fmt.Errorf("unknown mode %q", p.Value)
			}
		}
	}
	switch format {
	case "raw":
		ka.Data = []byte(hv.First)
	case "cstring":
		ka.Data, err = decodeCString(hv.First)
	case "base64":
		ka.Data, err = base64.StdEncoding.DecodeString(hv.First)
	default:
		return nil, fmt.Errorf("unknown format %q", format)
	}
	if err != nil {
		return nil, fmt.Errorf("%s data: %w", format, err)
	}
	return ka, nil
}

// decodeCString decodes the escapes Pushpin's cstring format knows:
// \\ \r \n \t \" and \xHH.
func decodeCString(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		if i+1 >= len(s) {
			return nil, errors.New("trailing backslash")
		}
		i++
		switch s[i] {
		case '\\':
			out = append(out, '\\')
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case '"':
			out = append(out, '"')
		case 'x':
			if i+2 >= len(s) {
				return nil, errors.New(`short \x escape`)
			}
			b, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf(`bad \x escape %q`, s[i+1:i+3])
			}
			out = append(out, byte(b))
			i += 2
		default:
			return nil, fmt.Errorf(`unknown escape \%c`, s[i])
		}
	}
	return out, nil
}

func parseSetMeta(lines []string) (map[string]string, error) {
	values, err := parseHeaderList(lines)
	if err != nil {
		return nil, err
	}
	meta := map[string]string{}
	for _, v := range values {
		k, val, ok := strings.Cut(v.First, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not name=value", v.First)
		}
		meta[k] = unquote(strings.TrimSpace(val))
	}
	return meta, nil
}

func parseLinks(lines []string) ([]Link, error) {
	values, err := parseHeaderList(lines)
	if err != nil {
		return nil, err
	}
	var out []Link
	for _, v := range values {
		if len(v.First) < 2 || v.First[0] != '<' || v.First[len(v.First)-1] != '>' {
			return nil, fmt.Errorf("%q is not <url>", v.First)
		}
		l := Link{URL: v.First[1 : len(v.First)-1], Timeout: DefaultLinkTimeout}
		for _, p := range v.Params {
			switch p.Key {
			case "rel":
				l.Rel = p.Value
			case "timeout":
				secs, err := strconv.Atoi(p.Value)
				if err != nil || secs < 1 {
					return nil, fmt.Errorf("timeout %q is not a positive number of seconds", p.Value)
				}
				l.Timeout = time.Duration(min(secs, 24*60*60)) * time.Second
			}
		}
		if l.Rel != "next" && l.Rel != "gone" {
			return nil, fmt.Errorf("link %q: rel %q, want next or gone", l.URL, l.Rel)
		}
		out = append(out, l)
	}
	return out, nil
}

// instructJSON is the application/grip-instruct body.
type instructJSON struct {
	Hold *struct {
		Mode     string `json:"mode"`
		Channels []struct {
			Name    string   `json:"name"`
			PrevID  string   `json:"prev-id"`
			Filters []string `json:"filters"`
		} `json:"channels"`
		Timeout   *int `json:"timeout"`
		KeepAlive *struct {
			Content    *string `json:"content"`
			ContentBin *string `json:"content-bin"`
			Timeout    *int    `json:"timeout"`
		} `json:"keep-alive"`
		Meta map[string]string `json:"meta"`
	} `json:"hold"`
	Response *struct {
		Code    *int            `json:"code"`
		Reason  string          `json:"reason"`
		Headers json.RawMessage `json:"headers"`
		Body    *string         `json:"body"`
		BodyBin *string         `json:"body-bin"`
	} `json:"response"`
}

// applyInstructJSON overlays the JSON form on the header-derived
// instruction: the JSON's hold and response win; the headers of the
// response that carried it are dropped, as Pushpin does. A Grip-Status
// header still sets the code and reason unless response.code is given.
func (inst *Instruction) applyInstructJSON(body []byte) error {
	var in instructJSON
	if err := json.Unmarshal(body, &in); err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	inst.Response = Response{Code: inst.Response.Code, Reason: inst.Response.Reason, Header: http.Header{}}
	if r := in.Response; r != nil {
		if r.Code != nil {
			if *r.Code < 100 || *r.Code > 999 {
				return fmt.Errorf("response.code %d out of range", *r.Code)
			}
			inst.Response.Code, inst.Response.Reason = *r.Code, ""
		}
		if r.Reason != "" {
			inst.Response.Reason = r.Reason
		}
		h, err := ParseHeaderJSON(r.Headers)
		if err != nil {
			return fmt.Errorf("response.headers: %w", err)
		}
		StripGripHeaders(h) // the client never sees Grip-* headers
		inst.Response.Header = h
		switch {
		case r.Body != nil:
			inst.Response.Body = []byte(*r.Body)
		case r.BodyBin != nil:
			b, err := base64.StdEncoding.DecodeString(*r.BodyBin)
			if err != nil {
				return fmt.Errorf("response.body-bin: %w", err)
			}
			inst.Response.Body = b
		default:
			inst.Response.Body = nil
		}
	} else {
		inst.Response.Body = nil
	}
	hold := in.Hold
	if hold == nil {
		return nil // a Grip-Hold header, if any, still applies
	}
	switch mode := HoldMode(hold.Mode); mode {
	case "":
		inst.Hold = HoldResponse
	case HoldResponse, HoldStream:
		inst.Hold = mode
	default:
		return fmt.Errorf("hold.mode: unknown mode %q", hold.Mode)
	}
	if len(hold.Channels) == 0 {
		return errors.New("hold.channels: at least one channel is required")
	}
	inst.Channels = nil
	for i, c := range hold.Channels {
		if c.Name == "" {
			return fmt.Errorf("hold.channels[%d]: no name", i)
		}
		if err := addChannel(&inst.Channels, Channel{Name: c.Name, PrevID: c.PrevID, Filters: c.Filters}); err != nil {
			return fmt.Errorf("hold.channels[%d]: %w", i, err)
		}
	}
	if hold.Timeout != nil {
		if *hold.Timeout < 0 {
			return fmt.Errorf("hold.timeout: %d is negative", *hold.Timeout)
		}
		inst.Timeout = clampTimeout(*hold.Timeout)
	}
	if ka := hold.KeepAlive; ka != nil {
		k := &KeepAlive{Timeout: DefaultKeepAliveTimeout, Mode: KeepAliveIdle}
		switch {
		case ka.Content != nil:
			k.Data = []byte(*ka.Content)
		case ka.ContentBin != nil:
			b, err := base64.StdEncoding.DecodeString(*ka.ContentBin)
			if err != nil {
				return fmt.Errorf("hold.keep-alive.content-bin: %w", err)
			}
			k.Data = b
		default:
			return errors.New("hold.keep-alive: needs content or content-bin")
		}
		if ka.Timeout != nil {
			if *ka.Timeout < 1 {
				return fmt.Errorf("hold.keep-alive.timeout: %d is not positive", *ka.Timeout)
			}
			k.Timeout = time.Duration(min(*ka.Timeout, 24*60*60)) * time.Second
		}
		inst.KeepAlive = k
	}
	if hold.Meta != nil {
		inst.Meta = hold.Meta
	}
	return nil
}

// ParseHeaderJSON reads headers given in JSON either as an object of
// strings or as a list of [name, value] pairs (both forms are in use by
// the GRIP libraries). Empty or null input gives empty headers.
func ParseHeaderJSON(raw json.RawMessage) (http.Header, error) {
	h := http.Header{}
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return h, nil
	}
	if s[0] == '[' {
		var pairs [][]string
		if err := json.Unmarshal(raw, &pairs); err != nil {
			return nil, errors.New("want an object of strings or a list of [name, value] pairs")
		}
		for _, p := range pairs {
			if len(p) != 2 {
				return nil, errors.New("each header pair must be [name, value]")
			}
			h.Add(p[0], p[1])
		}
		return h, nil
	}
	var obj map[string]string
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, errors.New("want an object of strings or a list of [name, value] pairs")
	}
	for k, v := range obj {
		h.Add(k, v)
	}
	return h, nil
}
