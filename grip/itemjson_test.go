package grip

import (
	"net/http"
	"reflect"
	"testing"
)

func TestMarshalItemRoundTrip(t *testing.T) {
	items := []Item{
		{Channel: "c", ID: "1", PrevID: "0", Meta: map[string]string{"sender": "a"},
			HTTPStream: &HTTPStreamFormat{Action: ActionSend, Content: []byte("data: hi\n\n")}},
		{Channel: "bin", HTTPStream: &HTTPStreamFormat{Action: ActionSend, Content: []byte{0xff, 0x00, 0x01}}},
		{Channel: "c", HTTPStream: &HTTPStreamFormat{Action: ActionClose}},
		{Channel: "lp", HTTPResponse: &HTTPResponseFormat{Action: ActionSend, Code: 201, Reason: "Made",
			Header: http.Header{"X-A": {"1", "2"}}, Body: []byte("body")}},
		{Channel: "ws", WSMessage: &WSMessageFormat{Action: ActionSend, Type: "binary", Content: []byte{1, 2}}},
		{Channel: "ws", WSMessage: &WSMessageFormat{Action: ActionClose, Code: 4003, Reason: "bye"}},
		{Channel: "a.b *>", WSMessage: &WSMessageFormat{Action: ActionRefresh}},
		{Channel: "h", ID: "7", NoSeq: true,
			HTTPResponse: &HTTPResponseFormat{Action: ActionHint}, HTTPStream: &HTTPStreamFormat{Action: ActionHint}},
	}
	for _, want := range items {
		data, err := MarshalItem(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseItem(data)
		if err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip of %s:\n got %+v\nwant %+v", data, got, want)
		}
	}
}

func TestParseItemRefusesMany(t *testing.T) {
	if _, err := ParseItem([]byte(`{"channel":"a","formats":{}},{"channel":"b","formats":{}}`)); err == nil {
		t.Fatal("two items accepted as one")
	}
}
