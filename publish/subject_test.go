package publish

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestChannelSubject(t *testing.T) {
	cases := []struct{ channel, subject string }{
		{"news", "gripd.ch.news"},
		{"room-42_a", "gripd.ch.room-42_a"},
		{"a.b", "gripd.ch.~YS5i"},
		{"*", "gripd.ch.~Kg"},
		{">", "gripd.ch.~Pg"},
		{"two words", "gripd.ch.~dHdvIHdvcmRz"},
		{"café", "gripd.ch.~Y2Fmw6k"},
		{"", "gripd.ch.~"},
		{"~x", "gripd.ch.~fng"},
	}
	for _, c := range cases {
		got := ChannelSubject("gripd", c.channel)
		if got != c.subject {
			t.Errorf("ChannelSubject(%q) = %q, want %q", c.channel, got, c.subject)
		}
		back, ok := ChannelFromSubject("gripd", got)
		if !ok || back != c.channel {
			t.Errorf("ChannelFromSubject(%q) = %q, %v; want %q", got, back, ok, c.channel)
		}
	}
	for _, bad := range []string{"gripd.ch.a.b", "gripd.ch.~!!", "other.ch.a", "gripd.ch.a*"} {
		if ch, ok := ChannelFromSubject("gripd", bad); ok {
			t.Errorf("ChannelFromSubject(%q) = %q, want refusal", bad, ch)
		}
	}
}

func FuzzChannelToken(f *testing.F) {
	for _, s := range []string{"news", "a.b", "*", ">", " ", "café", "", "~", "~x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, channel string) {
		tok := ChannelToken(channel)
		if tok == "" || strings.ContainsAny(tok, ".*> \t\r\n") || !utf8.ValidString(tok) {
			t.Fatalf("token %q of %q is not one NATS subject token", tok, channel)
		}
		back, ok := ChannelFromToken(tok)
		if !ok || back != channel {
			t.Fatalf("round trip of %q gave %q, %v", channel, back, ok)
		}
	})
}
