// Command nats-feed publishes a Server-Sent Events feed straight onto NATS,
// for a fleet of gripd instances started with --nats: every instance that
// has clients on the channel delivers each event to them, without any
// instance's control API being involved.
//
// gripd's subjects (with the default prefix "gripd"):
//
//	gripd.ch.<token>   one item, in Pushpin's item JSON, for one channel
//	gripd.publish      a whole publish body ({"items":[...]}), as POST
//	                   /publish/ takes it; one instance of the fleet takes
//	                   each and answers "Published" to a request
//
// This program uses the first: once a second it publishes an item such as
//
//	{"channel":"news","formats":{
//	  "http-stream":{"content":"id: 1\ndata: {\"n\":1,...}\n\n"},
//	  "http-response":{"body":"{\"n\":1,...}\n"}}}
//
// on gripd.ch.news. A channel name made only of ASCII letters, digits, '-'
// and '_' is its own subject token; any other name is '~' followed by its
// base64url encoding without padding (see channelToken).
//
// It needs only the standard library and github.com/nats-io/nats.go.
// See README.md beside this file for a fleet to run it against.
//
//	go run ./examples/nats-feed -nats nats://127.0.0.1:4222 -channel news
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

func main() {
	url := flag.String("nats", "nats://127.0.0.1:4222", "NATS server the gripd instances use (their --nats)")
	channel := flag.String("channel", "news", "channel to publish to")
	prefix := flag.String("prefix", "gripd", "subject prefix (gripd's nats.subject_prefix)")
	every := flag.Duration("every", time.Second, "time between events")
	count := flag.Int("count", 0, "stop after this many events (0: until interrupted)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	nc, err := nats.Connect(*url,
		nats.Name("nats-feed example"),
		nats.MaxReconnects(-1), // keep trying while NATS restarts
		// No buffering while disconnected: an event that NATS cannot take
		// is reported and skipped, not sent late in a burst.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own Close
				log.Printf("nats-feed: disconnected from NATS: %v", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Printf("nats-feed: reconnected to %s", nc.ConnectedUrlRedacted()) }),
	)
	if err != nil {
		log.Fatalf("nats-feed: connecting to %s: %v", *url, err)
	}
	defer nc.Close()

	subject := *prefix + ".ch." + channelToken(*channel)
	log.Printf("nats-feed: publishing to channel %q on subject %s every %v", *channel, subject, *every)

	tick := time.NewTicker(*every)
	defer tick.Stop()
	for n := 1; *count == 0 || n <= *count; n++ {
		if n > 1 {
			select {
			case <-ctx.Done():
				log.Printf("nats-feed: stopped after %d events", n-1)
				return
			case <-tick.C:
			}
		}
		data, err := item(*channel, n, time.Now())
		if err != nil {
			log.Fatalf("nats-feed: %v", err)
		}
		if err := nc.Publish(subject, data); err != nil {
			log.Printf("nats-feed: event %d not published: %v", n, err)
			continue
		}
		// Flush waits until the server has the event, so "published"
		// below means NATS took it.
		if err := nc.FlushTimeout(2 * time.Second); err != nil {
			log.Printf("nats-feed: event %d not confirmed by NATS: %v", n, err)
			continue
		}
		log.Printf("nats-feed: published event %d", n)
	}
}

// Pushpin's JSON item format, the formats this feed uses.
type pubItem struct {
	Channel string  `json:"channel"`
	Formats formats `json:"formats"`
}

type formats struct {
	HTTPStream   httpStream   `json:"http-stream"`   // appended to held streams
	HTTPResponse httpResponse `json:"http-response"` // answers held long-polls
}

type httpStream struct {
	Content string `json:"content"`
}

type httpResponse struct {
	Body string `json:"body"`
}

// item returns event n as one item: an SSE event for streams and a plain
// JSON body for long-polls.
func item(channel string, n int, at time.Time) ([]byte, error) {
	event, err := json.Marshal(struct {
		N    int    `json:"n"`
		Time string `json:"time"`
		Text string `json:"text"`
	}{n, at.UTC().Format(time.RFC3339), fmt.Sprintf("event %d from nats-feed", n)})
	if err != nil {
		return nil, err
	}
	return json.Marshal(pubItem{
		Channel: channel,
		Formats: formats{
			HTTPStream:   httpStream{Content: fmt.Sprintf("id: %d\ndata: %s\n\n", n, event)},
			HTTPResponse: httpResponse{Body: string(event) + "\n"},
		},
	})
}

// channelToken is gripd's subject token for a channel: the name itself
// when it is only ASCII letters, digits, '-' and '_' (and not empty),
// else '~' and the name in base64url without padding, so that '.', '*',
// '>' and spaces, which mean something to NATS, never reach the subject.
func channelToken(channel string) string {
	plain := channel != ""
	for i := 0; i < len(channel) && plain; i++ {
		c := channel[i]
		plain = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	if plain {
		return channel
	}
	return "~" + base64.RawURLEncoding.EncodeToString([]byte(channel))
}
