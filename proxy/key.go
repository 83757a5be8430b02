package proxy

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ParseKey turns a key spec, as written in a routes line (sig_key=) or in
// the YAML config, into the key bytes. The syntax is Pushpin's, so keys can
// be copied from a Pushpin setup unchanged:
//
//   - "base64:<data>" decodes standard base64 (padding optional), for
//     binary keys that cannot be written literally;
//   - "file:<path>" reads the key from a file (relative paths are relative
//     to the working directory), dropping one trailing newline because
//     editors and `echo` add one that is not part of the secret;
//   - anything else is the secret itself, byte for byte.
//
// An empty spec returns a nil key and no error: callers treat that as "no
// key configured". A base64 or file spec that yields an empty key is an
// error, since an empty HMAC key signs nothing worth trusting.
func ParseKey(spec string) ([]byte, error) {
	if spec == "" {
		return nil, nil
	}
	if data, ok := strings.CutPrefix(spec, "base64:"); ok {
		return decodeBase64Key(data)
	}
	if path, ok := strings.CutPrefix(spec, "file:"); ok {
		return readKeyFile(path)
	}
	return []byte(spec), nil
}

// decodeBase64Key decodes the part after "base64:". Padding is optional
// because keys are often pasted with it trimmed.
func decodeBase64Key(data string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		// Retry without padding; report the first error if that fails too,
		// as it describes the usual (padded) form.
		unpadded, err2 := base64.RawStdEncoding.DecodeString(data)
		if err2 != nil {
			return nil, fmt.Errorf("key base64: %w", err)
		}
		key = unpadded
	}
	if len(key) == 0 {
		return nil, errors.New("key base64: decodes to an empty key")
	}
	return key, nil
}

// readKeyFile reads the part after "file:" and drops one trailing newline
// ("\n" or "\r\n").
func readKeyFile(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("key file: empty path")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if trimmed, ok := strings.CutSuffix(string(data), "\n"); ok {
		trimmed, _ = strings.CutSuffix(trimmed, "\r")
		data = []byte(trimmed)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("key file %s: file is empty", path)
	}
	return data, nil
}
