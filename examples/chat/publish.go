package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// publisher sends messages to gripd's control API (Pushpin's publish
// format, which the GRIP libraries also send).
type publisher struct {
	url    string
	client *http.Client
}

func newPublisher(url string) *publisher {
	return &publisher{url: url, client: &http.Client{Timeout: 5 * time.Second}}
}

// publishItem is one item of a publish request. It carries the message in
// the three formats at once, and gripd gives each held client the one it
// takes: an SSE stream the http-stream content, a long-poll the
// http-response, a WebSocket the ws-message.
type publishItem struct {
	Channel string `json:"channel"`
	Formats struct {
		HTTPStream struct {
			Content string `json:"content"`
		} `json:"http-stream"`
		HTTPResponse struct {
			Body string `json:"body"`
		} `json:"http-response"`
		WSMessage struct {
			Content string `json:"content"`
		} `json:"ws-message"`
	} `json:"formats"`
}

// itemFor builds the item that delivers msg to every client on channel.
func itemFor(channel string, msg message) (publishItem, error) {
	data, err := json.Marshal(msg)
	if err != nil {
		return publishItem{}, err
	}
	var it publishItem
	it.Channel = channel
	// One SSE event: a data line (JSON has no newline) and a blank line.
	it.Formats.HTTPStream.Content = "data: " + string(data) + "\n\n"
	// The long-poll answer, in the same shape as its timeout response.
	it.Formats.HTTPResponse.Body = `{"messages":[` + string(data) + "]}\n"
	it.Formats.WSMessage.Content = string(data)
	return it, nil
}

// publish sends msg to everyone on channel. gripd answers 200 once the
// item is handed to delivery; anything else is an error worth reporting to
// the sender.
func (p *publisher) publish(ctx context.Context, channel string, msg message) error {
	it, err := itemFor(channel, msg)
	if err != nil {
		return err
	}
	body, err := json.Marshal(struct {
		Items []publishItem `json:"items"`
	}{[]publishItem{it}})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s %s", p.url, resp.Status, bytes.TrimSpace(b))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}
