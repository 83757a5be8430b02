package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gripd/gripd/internal/config"
)

// defaultControlURL is where `gripd publish` posts when neither --url nor
// $GRIP_URL says otherwise: the control API's default listener.
const defaultControlURL = "http://" + config.DefaultControlListen

// publishTokenLifetime is how long the bearer token of --key stays valid.
// It is only used for one request, so it is short.
const publishTokenLifetime = 10 * time.Minute

// publishCommand is `gripd publish`, gripd's pushpin-publish: it
// publishes one item to CHANNEL through the control API, filling all
// three formats so every kind of subscriber gets it. stdin and gripURL
// ($GRIP_URL) are passed in, so tests need neither. It returns the exit
// code.
func publishCommand(args []string, stdin io.Reader, gripURL string, stdout, stderr io.Writer) int {
	o, code := parsePublishFlags(args, gripURL, stderr)
	if o == nil {
		return code
	}
	content, err := o.content(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "gripd publish: reading stdin: %v\n", err)
		return 1
	}
	body, err := json.Marshal(map[string]any{"items": []any{o.item(content)}})
	if err != nil {
		fmt.Fprintf(stderr, "gripd publish: %v\n", err)
		return 1
	}
	authorization, err := publishAuthorization(o.key, o.iss, o.user)
	if err != nil {
		fmt.Fprintf(stderr, "gripd publish: %v\n", err)
		return 2
	}
	return postPublish(strings.TrimRight(o.baseURL, "/")+"/publish/", body, authorization, stdout, stderr)
}

// publishOptions are the flags and arguments of `gripd publish`.
type publishOptions struct {
	baseURL, id, prevID, sender  string
	key, iss, user               string
	noSeq, closeAll, hint, noEOL bool
	channel, text                string
	hasText                      bool // CONTENT was given (else stdin)
}

// parsePublishFlags reads the command line. A nil result means exit with
// code (help, or a usage error already written to stderr).
func parsePublishFlags(args []string, gripURL string, stderr io.Writer) (*publishOptions, int) {
	fs := flag.NewFlagSet("gripd publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if gripURL == "" {
		gripURL = defaultControlURL
	}
	o := &publishOptions{}
	fs.StringVar(&o.baseURL, "url", gripURL, "control API base URL (default $GRIP_URL, else "+defaultControlURL+")")
	fs.StringVar(&o.id, "id", "", "item id (a repeat on the channel within 60s is dropped)")
	fs.StringVar(&o.prevID, "prev-id", "", "id of the item this one follows (gripd delivers the channel's items in that order)")
	fs.BoolVar(&o.noSeq, "no-seq", false, "deliver at once, whatever the prev-id")
	fs.StringVar(&o.sender, "sender", "", "the publish meta \"sender\" (a skip-self filter drops the item for this user)")
	fs.BoolVar(&o.closeAll, "close", false, "close streams and WebSockets on the channel instead of sending content")
	fs.BoolVar(&o.hint, "hint", false, "send a hint instead of content: long-polls are re-requested, streams fetch their next link")
	fs.BoolVar(&o.noEOL, "no-eol", false, "do not add a newline to the HTTP content")
	fs.StringVar(&o.key, "key", "", "sign a bearer token with this key (\"base64:...\" for a binary key)")
	fs.StringVar(&o.iss, "iss", "", "iss claim of the bearer token (with --key)")
	fs.StringVar(&o.user, "user", "", "basic auth credentials, user:password")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: gripd publish [flags] CHANNEL [CONTENT]\n\n"+
			"Publishes CONTENT (read from stdin when omitted) to CHANNEL, as an\n"+
			"http-response, an http-stream and a ws-message. Flags come before CHANNEL.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0
		}
		return nil, 2
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return nil, 2
	}
	if msg := o.conflict(); msg != "" {
		fmt.Fprintln(stderr, "gripd publish: "+msg)
		return nil, 2
	}
	o.channel = fs.Arg(0)
	o.text, o.hasText = fs.Arg(1), fs.NArg() == 2
	return o, 0
}

// conflict names flags given together that do not go together.
func (o *publishOptions) conflict() string {
	switch {
	case o.key != "" && o.user != "":
		return "give --key or --user, not both"
	case o.iss != "" && o.key == "":
		return "--iss needs --key"
	case o.hint && o.closeAll:
		return "give --hint or --close, not both"
	}
	return ""
}

// content is what to publish: CONTENT, or stdin without its last
// newline; nothing for --close and --hint.
func (o *publishOptions) content(stdin io.Reader) ([]byte, error) {
	switch {
	case o.closeAll || o.hint:
		return nil, nil
	case o.hasText:
		return []byte(o.text), nil
	}
	content, err := io.ReadAll(stdin)
	// `echo hi | gripd publish ch` means "hi", not "hi\n" plus the
	// newline item adds.
	return bytes.TrimSuffix(content, []byte("\n")), err
}

// postPublish sends the publish body to endpoint and prints the reply;
// it returns the exit code.
func postPublish(endpoint string, body []byte, authorization string, stdout, stderr io.Writer) int {
	req, err := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		fmt.Fprintf(stderr, "gripd publish: %v\n", err)
		return 2
	}
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "gripd publish: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		fmt.Fprintf(stderr, "gripd publish: reading the reply: %v\n", err)
		return 1
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintf(stderr, "gripd publish: %s: %s\n", resp.Status, strings.TrimSpace(string(reply)))
		return 1
	}
	fmt.Fprintln(stdout, strings.TrimSpace(string(reply)))
	return 0
}

// item builds the item as pushpin-publish does: the same content as an
// http-response body, http-stream content and a ws-message, with a
// newline added to the two HTTP ones unless --no-eol (a WebSocket message
// is already framed). --close asks streams and WebSockets to close, --hint
// long-polls and streams to recover, instead. Content that is not UTF-8
// goes base64-encoded in the -bin fields, since a JSON string cannot
// carry it.
func (o *publishOptions) item(content []byte) map[string]any {
	item := map[string]any{"channel": o.channel}
	for key, v := range map[string]string{"id": o.id, "prev-id": o.prevID} {
		if v != "" {
			item[key] = v
		}
	}
	if o.noSeq {
		item["no-seq"] = true
	}
	if o.sender != "" {
		item["meta"] = map[string]string{"sender": o.sender}
	}
	action := func(a string) map[string]any { return map[string]any{"action": a} }
	switch {
	case o.closeAll:
		item["formats"] = map[string]any{"http-stream": action("close"), "ws-message": action("close")}
	case o.hint:
		item["formats"] = map[string]any{"http-response": action("hint"), "http-stream": action("hint")}
	default:
		item["formats"] = contentFormats(content, !o.noEOL)
	}
	return item
}

// contentFormats are the three formats carrying content.
func contentFormats(content []byte, eol bool) map[string]any {
	httpContent := content
	if eol {
		httpContent = append(bytes.Clone(content), '\n')
	}
	// field returns the JSON field for content under name, or name-bin.
	field := func(name string, b []byte) map[string]any {
		if utf8.Valid(b) {
			return map[string]any{name: string(b)}
		}
		return map[string]any{name + "-bin": base64.StdEncoding.EncodeToString(b)}
	}
	return map[string]any{
		"http-response": field("body", httpContent),
		"http-stream":   field("content", httpContent),
		"ws-message":    field("content", content),
	}
}

// publishAuthorization returns the Authorization header value for --key
// (a bearer JWT, HS256, claims iss and exp, as the GRIP libraries send it)
// or --user (basic), or "" for neither.
func publishAuthorization(key, iss, user string) (string, error) {
	switch {
	case key != "":
		secret := []byte(key)
		if rest, ok := strings.CutPrefix(key, "base64:"); ok {
			var err error
			if secret, err = base64.StdEncoding.DecodeString(rest); err != nil {
				return "", fmt.Errorf("--key: invalid base64: %v", err)
			}
		}
		claims := jwt.MapClaims{"exp": time.Now().Add(publishTokenLifetime).Unix()}
		if iss != "" {
			claims["iss"] = iss
		}
		token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
		if err != nil {
			return "", fmt.Errorf("signing the token: %v", err)
		}
		return "Bearer " + token, nil
	case user != "":
		if !strings.Contains(user, ":") {
			return "", errors.New("--user must be user:password")
		}
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user)), nil
	}
	return "", nil
}
