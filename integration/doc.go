// Package integration holds gripd's black-box integration tests. They start
// real processes — the gripd binary built from ./cmd/gripd, Node backends and
// publishers written with the GRIP client libraries (@fanoutio/grip,
// @fanoutio/serve-grip), and where needed other servers — and drive them only
// over the network, the way a deployment would.
//
// The Node helpers live in js/ with their dependencies pinned in
// package-lock.json; `make test` runs `npm ci` here when node_modules is
// missing or older than the lock file (scripts/test-deps.sh), and so does
// `make test-deps` before a bare `go test`. Set GRIPD_SKIP_NODE=1 to skip
// the tests that need Node.
//
// The browser tests (browser_test.go, js/browser.js) run the demo app and
// the status page in headless Chromium: Debian's chromium package at
// /usr/bin/chromium (or GRIPD_CHROMIUM; `make test` installs the package
// when it can), driven by playwright-core, which downloads no browser.
// Without Chromium they fail unless GRIPD_SKIP_BROWSER=1;
// GRIPD_SCREENSHOTS=DIR keeps their screenshots.
//
// TestMain builds ../cmd/gripd once; GRIPD_BIN=/path/to/gripd tests a
// prebuilt binary instead. gripd runs with --log-level debug (or
// GRIPD_LOG_LEVEL); its output is shown when a test fails.
package integration
