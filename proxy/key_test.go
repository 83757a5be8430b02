package proxy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	dir := t.TempDir()
	writeFile := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	plain := writeFile("plain", "secret")
	newline := writeFile("newline", "secret\n")
	crlf := writeFile("crlf", "secret\r\n")
	twoNewlines := writeFile("two", "secret\n\n")
	empty := writeFile("empty", "")
	onlyNewline := writeFile("only-newline", "\n")

	tests := []struct {
		spec    string
		want    string
		wantNil bool
		wantErr string
	}{
		{spec: "", wantNil: true},
		{spec: "changeme", want: "changeme"},
		{spec: "base64", want: "base64"},
		{spec: "BASE64:aGVsbG8=", want: "BASE64:aGVsbG8="}, // the prefix is case-sensitive, as in Pushpin
		{spec: "base64:aGVsbG8=", want: "hello"},
		{spec: "base64:aGVsbG8", want: "hello"}, // padding optional
		{spec: "base64:AAEC/w==", want: "\x00\x01\x02\xff"},
		{spec: "base64:not base64!", wantErr: "key base64"},
		{spec: "base64:", wantErr: "empty key"},
		{spec: "file:" + plain, want: "secret"},
		{spec: "file:" + newline, want: "secret"},
		{spec: "file:" + crlf, want: "secret"},
		{spec: "file:" + twoNewlines, want: "secret\n"}, // only one newline is trimmed
		{spec: "file:" + empty, wantErr: "file is empty"},
		{spec: "file:" + onlyNewline, wantErr: "file is empty"},
		{spec: "file:", wantErr: "empty path"},
		{spec: "file:" + filepath.Join(dir, "missing"), wantErr: "key file"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := ParseKey(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseKey(%q) = %q, %v; want error containing %q", tt.spec, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKey(%q): %v", tt.spec, err)
			}
			if tt.wantNil {
				if got != nil {
					t.Fatalf("ParseKey(%q) = %q, want nil", tt.spec, got)
				}
				return
			}
			if string(got) != tt.want {
				t.Errorf("ParseKey(%q) = %q, want %q", tt.spec, got, tt.want)
			}
		})
	}
}
