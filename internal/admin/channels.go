package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/publish"
)

// The admin listener's channel introspection:
//
//	GET /channels         every channel with held connections, busiest first
//	GET /channels/{name}  one channel (name percent-encoded: a/b is a%2Fb)
//
// Both take ?scope=local (the default: this instance) or ?scope=cluster
// (every instance of the fleet, asked over NATS; see
// publish/clusterchannels.go). A cluster view waits clusterWait for the
// instances to answer, or until ?instances=N of them have when the
// operator knows the fleet's size. Without NATS an instance is its own
// fleet: scope=cluster answers the local view with "instances": 1.
//
// /channels is paged: ?limit= (default 100, at most 1000) and ?offset=.
// The order is by total subscribers, most first, then by name, so the
// pages of a quiet fleet line up; under churn a channel can move between
// two pages.

const (
	defaultChannelsLimit = 100
	maxChannelsLimit     = 1000
	// clusterWait is how long a cluster view waits for the instances'
	// answers: long enough for a NATS round trip across a data centre,
	// short enough for an operator at a terminal.
	clusterWait = 500 * time.Millisecond
)

// channelJSON is one channel in a reply.
type channelJSON struct {
	Name     string `json:"name"`
	Response int    `json:"response"` // held long-polls
	Stream   int    `json:"stream"`   // held streams
	WS       int    `json:"ws"`       // WebSockets
	Total    int    `json:"total"`
}

func toChannelJSON(c handoff.ChannelCount) channelJSON {
	return channelJSON{Name: c.Name, Response: c.Responses, Stream: c.Streams, WS: c.WebSockets, Total: c.Total()}
}

// channelsReply is the body of GET /channels.
type channelsReply struct {
	Scope         string        `json:"scope"`     // local or cluster
	Instances     int           `json:"instances"` // how many instances the counts cover
	TotalChannels int           `json:"total_channels"`
	Offset        int           `json:"offset"`
	Limit         int           `json:"limit"`
	NextOffset    *int          `json:"next_offset,omitempty"` // when there is a next page
	Channels      []channelJSON `json:"channels"`
}

// channelReply is the body of GET /channels/{name}.
type channelReply struct {
	Scope     string `json:"scope"`
	Instances int    `json:"instances"`
	channelJSON
}

// errorReply is the body of a 4xx or 5xx from the admin listener.
type errorReply struct {
	Reason string `json:"reason"`
}

// viewQuery is what the query string of both endpoints asks for.
type viewQuery struct {
	cluster       bool
	instances     int // stop waiting once this many answered; 0: wait clusterWait
	limit, offset int
}

// parseViewQuery reads and checks the query string.
func parseViewQuery(raw string) (viewQuery, error) {
	q := viewQuery{limit: defaultChannelsLimit}
	values, err := url.ParseQuery(raw)
	if err != nil {
		return q, fmt.Errorf("query string: %w", err)
	}
	switch scope := values.Get("scope"); scope {
	case "", "local":
	case "cluster":
		q.cluster = true
	default:
		return q, fmt.Errorf("scope %q: want local or cluster", scope)
	}
	intParam := func(name string, dst *int, lo, hi int) error {
		v := values.Get(name)
		if v == "" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("%s %q: want an integer from %d to %d", name, v, lo, hi)
		}
		*dst = n
		return nil
	}
	if err := intParam("limit", &q.limit, 1, maxChannelsLimit); err != nil {
		return q, err
	}
	if err := intParam("offset", &q.offset, 0, 1<<31-1); err != nil {
		return q, err
	}
	if err := intParam("instances", &q.instances, 1, 1<<31-1); err != nil {
		return q, err
	}
	return q, nil
}

// view gathers the counts the query asks for: of every channel, or of the
// named one when name is not nil. It returns the counts, the scope's name
// and how many instances answered.
func (a *Handler) view(ctx context.Context, q viewQuery, name *string) ([]handoff.ChannelCount, string, int, error) {
	if !q.cluster || a.nats == nil {
		scope := "local"
		if q.cluster {
			scope = "cluster" // an instance without NATS is the whole fleet
		}
		if name == nil {
			return a.hub.Channels(), scope, 1, nil
		}
		if c, ok := a.hub.Channel(*name); ok {
			return []handoff.ChannelCount{c}, scope, 1, nil
		}
		return nil, scope, 1, nil
	}
	ctx, cancel := context.WithTimeout(ctx, clusterWait)
	defer cancel()
	var (
		cv  publish.ClusterChannels
		err error
	)
	if name == nil {
		cv, err = a.nats.ClusterChannels(ctx, q.instances)
	} else {
		cv, err = a.nats.ClusterChannel(ctx, *name, q.instances)
	}
	return cv.Channels, "cluster", cv.Instances, err
}

// serveChannels answers GET /channels.
func (a *Handler) serveChannels(w http.ResponseWriter, r *http.Request) {
	q, err := parseViewQuery(r.URL.RawQuery)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorReply{Reason: err.Error()})
		return
	}
	counts, scope, instances, err := a.view(r.Context(), q, nil)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, errorReply{Reason: err.Error()})
		return
	}
	sortBusiestFirst(counts)
	reply := channelsReply{
		Scope: scope, Instances: instances, TotalChannels: len(counts),
		Offset: q.offset, Limit: q.limit, Channels: []channelJSON{},
	}
	page := counts[min(q.offset, len(counts)):]
	if len(page) > q.limit {
		page = page[:q.limit]
		next := q.offset + q.limit
		reply.NextOffset = &next
	}
	for _, c := range page {
		reply.Channels = append(reply.Channels, toChannelJSON(c))
	}
	writeJSON(w, http.StatusOK, reply)
}

// sortBusiestFirst orders channels by total subscribers, most first, then
// by name, so the order is stable while nothing changes.
func sortBusiestFirst(counts []handoff.ChannelCount) {
	slices.SortFunc(counts, func(x, y handoff.ChannelCount) int {
		if d := y.Total() - x.Total(); d != 0 {
			return d
		}
		return strings.Compare(x.Name, y.Name)
	})
}

// serveChannel answers GET /channels/{name}. The name arrives unescaped
// from the path, so %2F is a "/" inside it and %25 a "%".
func (a *Handler) serveChannel(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q, err := parseViewQuery(r.URL.RawQuery)
	if err == nil && name == "" {
		err = errors.New("no channel name: GET /channels lists them")
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorReply{Reason: err.Error()})
		return
	}
	counts, scope, instances, err := a.view(r.Context(), q, &name)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, errorReply{Reason: err.Error()})
		return
	}
	if len(counts) == 0 {
		where := "on this instance"
		switch {
		case scope == "cluster" && instances == 1:
			where = "on the 1 instance that answered"
		case scope == "cluster":
			where = fmt.Sprintf("on the %d instances that answered", instances)
		}
		writeJSON(w, http.StatusNotFound, errorReply{Reason: fmt.Sprintf("nobody listens on channel %q %s", name, where)})
		return
	}
	writeJSON(w, http.StatusOK, channelReply{Scope: scope, Instances: instances, channelJSON: toChannelJSON(counts[0])})
}
