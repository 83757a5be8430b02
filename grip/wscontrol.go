package grip

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The prefixes of backend messages in GRIP WebSocket mode: "c:" marks a
// control message, "m:" an ordinary message (stripped before delivery).
const (
	WSControlPrefix = "c:"
	WSMessagePrefix = "m:"
)

// WSControl is a control message a backend sends in a TEXT event as
// `c:{json}`.
type WSControl struct {
	// Type is subscribe, unsubscribe, detach, session, set-meta,
	// keep-alive, send-delayed, flush-delayed or one gripd does not know
	// (ignored, as Pushpin does).
	Type string

	Channel string   // subscribe, unsubscribe
	Filters []string // subscribe

	Name     string // set-meta
	Value    string // set-meta
	HasValue bool   // set-meta: false deletes the meta

	// keep-alive: Content nil turns keep-alive off.
	Content     []byte
	MessageType string // text (default), binary, ping or pong
	Timeout     time.Duration
	Mode        KeepAliveMode

	ID string // session
}

// ParseWSControl decodes the JSON of a control message (without "c:").
func ParseWSControl(data []byte) (*WSControl, error) {
	var in struct {
		Type        string   `json:"type"`
		Channel     *string  `json:"channel"`
		Filters     []string `json:"filters"`
		Name        string   `json:"name"`
		Value       *string  `json:"value"`
		Content     *string  `json:"content"`
		ContentBin  *string  `json:"content-bin"`
		MessageType string   `json:"message-type"`
		Timeout     *int     `json:"timeout"`
		Mode        string   `json:"mode"`
		ID          string   `json:"id"`
	}
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("control message is not a JSON object: %w", err)
	}
	c := &WSControl{Type: in.Type}
	switch in.Type {
	case "":
		return nil, errors.New("control message without a type")
	case "subscribe", "unsubscribe":
		if in.Channel == nil || *in.Channel == "" {
			return nil, fmt.Errorf("%s without a channel", in.Type)
		}
		c.Channel = *in.Channel
		if len(in.Filters) > MaxFiltersPerChannel {
			return nil, fmt.Errorf("subscribe %q: %d filters, at most %d", c.Channel, len(in.Filters), MaxFiltersPerChannel)
		}
		c.Filters = in.Filters
	case "set-meta":
		if in.Name == "" {
			return nil, errors.New("set-meta without a name")
		}
		c.Name = in.Name
		if in.Value != nil {
			c.Value, c.HasValue = *in.Value, true
		}
	case "keep-alive":
		switch {
		case in.Content != nil:
			c.Content = []byte(*in.Content)
		case in.ContentBin != nil:
			b, err := base64.StdEncoding.DecodeString(*in.ContentBin)
			if err != nil {
				return nil, fmt.Errorf("keep-alive content-bin: %w", err)
			}
			c.Content = b
		}
		c.MessageType = in.MessageType
		switch c.MessageType {
		case "":
			c.MessageType = "text"
		case "text", "binary", "ping", "pong":
		default:
			return nil, fmt.Errorf("keep-alive: unknown message-type %q", in.MessageType)
		}
		c.Timeout = DefaultKeepAliveTimeout
		if in.Timeout != nil {
			if *in.Timeout < 1 {
				return nil, fmt.Errorf("keep-alive: timeout %d is not positive", *in.Timeout)
			}
			c.Timeout = time.Duration(min(*in.Timeout, 24*60*60)) * time.Second
		}
		c.Mode = KeepAliveIdle
		switch KeepAliveMode(in.Mode) {
		case "", KeepAliveIdle:
		case KeepAliveInterval:
			c.Mode = KeepAliveInterval
		default:
			return nil, fmt.Errorf("keep-alive: unknown mode %q", in.Mode)
		}
	case "session":
		c.ID = in.ID
	}
	return c, nil
}
