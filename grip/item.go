package grip

import "net/http"

// Item is one published message for one channel, in Pushpin's publish
// format. An item carries up to three formats; each kind of subscriber
// takes only its own (a long-poll the HTTPResponse, a stream the
// HTTPStream, a WebSocket the WSMessage).
type Item struct {
	Channel string
	ID      string // optional; used for id/prev-id ordering and de-duplication
	PrevID  string // optional
	// NoSeq asks the hub not to order this item by its prev-id (it goes out
	// at once, and does not become the channel's last id). A repeated id is
	// still dropped.
	NoSeq bool
	// Meta is the publish meta the filters read (sender, skip_users,
	// require_sub).
	Meta map[string]string
	// Seq is the item's place in the fleet's history (its JetStream stream
	// sequence), set by the NATS broker when history is on; 0 otherwise.
	// It orders the items of all channels alike. Not part of the publish
	// format.
	Seq uint64

	HTTPResponse *HTTPResponseFormat // nil when the item has none
	HTTPStream   *HTTPStreamFormat   // nil when the item has none
	WSMessage    *WSMessageFormat    // nil when the item has none
}

// Action says what a format asks of its subscribers.
type Action string

// The actions a format may carry ("send" when the item gives none).
const (
	ActionSend    Action = "send"
	ActionHint    Action = "hint"
	ActionClose   Action = "close"
	ActionRefresh Action = "refresh"
)

// HTTPResponseFormat answers a held long-poll.
type HTTPResponseFormat struct {
	Action Action
	Code   int    // 200 when not given
	Reason string // "" means the standard phrase for Code
	Header http.Header
	Body   []byte // from "body" or the decoded "body-bin"
	// BodyPatch is the raw JSON Patch of "body-patch"; applying it is not
	// supported yet, an item with only a patch is delivered as an empty body.
	BodyPatch []byte
}

// HTTPStreamFormat appends to (or closes) an open stream.
type HTTPStreamFormat struct {
	Action  Action
	Content []byte // from "content" or the decoded "content-bin"
}

// WSMessageFormat is a message to (or a close of) a WebSocket client.
type WSMessageFormat struct {
	Action  Action
	Type    string // text, binary, ping or pong
	Content []byte
	Code    int    // close code, for ActionClose; 0 means none
	Reason  string // close reason, for ActionClose
}
