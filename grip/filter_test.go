package grip

import (
	"strings"
	"testing"
)

func TestFilterMessage(t *testing.T) {
	alice := map[string]string{"user": "alice"}
	tests := []struct {
		name    string
		filters []string
		fc      FilterContext
		content string
		want    string // "" with send false: dropped
		send    bool
		errHas  string
	}{
		{"no filters", nil, FilterContext{}, "hi", "hi", true, ""},
		{"unknown filter ignored", []string{"http-check", "nope"}, FilterContext{}, "hi", "hi", true, ""},
		{"skip-self drops own message", []string{FilterSkipSelf},
			FilterContext{SubMeta: alice, PubMeta: map[string]string{"sender": "alice"}}, "hi", "", false, ""},
		{"skip-self keeps others", []string{FilterSkipSelf},
			FilterContext{SubMeta: alice, PubMeta: map[string]string{"sender": "bob"}}, "hi", "hi", true, ""},
		{"skip-self needs a user", []string{FilterSkipSelf},
			FilterContext{PubMeta: map[string]string{"sender": ""}}, "hi", "hi", true, ""},
		{"skip-users drops listed", []string{FilterSkipUsers},
			FilterContext{SubMeta: alice, PubMeta: map[string]string{"skip_users": "bob, alice ,carol"}}, "hi", "", false, ""},
		{"skip-users keeps unlisted", []string{FilterSkipUsers},
			FilterContext{SubMeta: alice, PubMeta: map[string]string{"skip_users": "bob,alicia"}}, "hi", "hi", true, ""},
		{"require-sub drops when not subscribed", []string{FilterRequireSub},
			FilterContext{Channels: []string{"a"}, PubMeta: map[string]string{"require_sub": "b"}}, "hi", "", false, ""},
		{"require-sub keeps when subscribed", []string{FilterRequireSub},
			FilterContext{Channels: []string{"a", "b"}, PubMeta: map[string]string{"require_sub": "b"}}, "hi", "hi", true, ""},
		{"require-sub without require_sub", []string{FilterRequireSub}, FilterContext{}, "hi", "hi", true, ""},
		{"var-subst", []string{FilterVarSubst},
			FilterContext{SubMeta: map[string]string{"user": "alice", "n": ""}}, "hi %(user)s [%(n)s] 100%%", "hi alice [] 100%", true, ""},
		{"var-subst missing variable", []string{FilterVarSubst}, FilterContext{SubMeta: alice}, "hi %(nope)s", "", false, "no such variable 'nope'"},
		{"var-subst bare percent", []string{FilterVarSubst}, FilterContext{SubMeta: alice}, "50% off", "", false, "unknown directive ' '"},
		{"var-subst escaped paren in name", []string{FilterVarSubst},
			FilterContext{SubMeta: map[string]string{"a)b": "x"}}, `%(a\)b)s`, "x", true, ""},
		{"var-subst unterminated", []string{FilterVarSubst}, FilterContext{SubMeta: alice}, "%(user", "", false, "unterminated"},
		{"var-subst trailing percent", []string{FilterVarSubst}, FilterContext{SubMeta: alice}, "x%", "", false, "expected directive"},
		{"build-id", []string{FilterBuildID},
			FilterContext{SubMeta: map[string]string{"id_format": "<%(news)s>"}, PrevIDs: map[string]string{"news": "7"}},
			"id: %I lit: %(x)I", "id: <7> lit: x", true, ""},
		{"build-id hex", []string{FilterBuildID},
			FilterContext{SubMeta: map[string]string{"id_format": "%(news)s", "id_encoding": "hex"}, PrevIDs: map[string]string{"news": "ab"}},
			"%I", "6162", true, ""},
		{"build-id bad encoding", []string{FilterBuildID},
			FilterContext{SubMeta: map[string]string{"id_format": "%(news)s", "id_encoding": "b64"}, PrevIDs: map[string]string{"news": "ab"}},
			"%I", "", false, "unsupported encoding"},
		{"build-id without id_format", []string{FilterBuildID}, FilterContext{}, "%I", "", false, "id_format"},
		{"build-id without prev-ids: literal works", []string{FilterBuildID},
			FilterContext{SubMeta: map[string]string{"id_format": "%(news)s"}}, "%(lit)I", "lit", true, ""},
		{"build-id without prev-ids: %I fails", []string{FilterBuildID},
			FilterContext{SubMeta: map[string]string{"id_format": "%(news)s"}}, "%I", "", false, "no default ID"},
		{"build-id format names a channel without prev-id", []string{FilterBuildID},
			FilterContext{SubMeta: map[string]string{"id_format": "%(other)s"}, PrevIDs: map[string]string{"news": "1"}}, "%I", "", false, "failed to render ID"},
		{"chain: drop stops before a failing filter", []string{FilterSkipSelf, FilterVarSubst},
			FilterContext{SubMeta: alice, PubMeta: map[string]string{"sender": "alice"}}, "%(nope)s", "", false, ""},
		{"chain: both rewrite, in order", []string{FilterVarSubst, FilterBuildID},
			FilterContext{SubMeta: map[string]string{"id_format": "%(c)s", "who": "%I"}, PrevIDs: map[string]string{"c": "9"}},
			"%(who)s", "9", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, send, err := FilterMessage(tt.filters, tt.fc, []byte(tt.content))
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want one containing %q", err, tt.errHas)
				}
			} else if err != nil {
				t.Fatalf("err = %v", err)
			}
			if send != tt.send || string(out) != tt.want {
				t.Fatalf("got %q send=%v, want %q send=%v", out, send, tt.want, tt.send)
			}
		})
	}
}

func TestFilterResponse(t *testing.T) {
	fc := FilterContext{SubMeta: map[string]string{"id_format": "%(a)s"}, PrevIDs: map[string]string{"a": "3"}}
	plain := []Channel{{Name: "a", Filters: []string{FilterVarSubst, FilterSkipSelf}}}
	out, err := FilterResponse(plain, fc, []byte("%(x)s %I"))
	if err != nil || string(out) != "%(x)s %I" {
		t.Fatalf("without build-id: %q, %v; want the body untouched", out, err)
	}
	withID := []Channel{{Name: "a", Filters: []string{FilterBuildID}}, {Name: "b", Filters: []string{FilterBuildID}}}
	out, err = FilterResponse(withID, fc, []byte("at %I (%(x)I)"))
	if err != nil || string(out) != "at 3 (x)" {
		t.Fatalf("with build-id: %q, %v", out, err)
	}
	if _, err := FilterResponse(withID, FilterContext{}, []byte("%I")); err == nil {
		t.Fatal("build-id without id_format: no error")
	}
}
