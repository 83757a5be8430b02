#!/usr/bin/env bash
# Installs what `make test` needs beyond Go, so that `make test` is the
# only command to run on a fresh clone:
#
#   - gcc and the C library headers: `go test -race` needs cgo;
#   - Node and npm, and the npm packages of integration/ (the GRIP client
#     libraries and playwright-core), installed with `npm ci` when
#     integration/node_modules is missing or older than package-lock.json;
#   - Debian's chromium, which the browser tests drive (playwright-core
#     downloads no browser of its own).
#
# A missing system package is installed with apt-get when the user is root
# on Debian (as in CI); otherwise the script stops with one line saying the
# one command to run. It changes nothing that is already there.
#
# Environment (the same variables the tests read):
#   GRIPD_SKIP_NODE=1     skip the tests that need Node: install no Node,
#                         npm packages or Chromium
#   GRIPD_SKIP_BROWSER=1  skip the browser tests: install no Chromium
#   GRIPD_CHROMIUM=PATH   the browser tests drive this Chromium instead of
#                         Debian's /usr/bin/chromium (never installed here)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'test-deps: %s\n' "$*"; }
die() {
  printf 'test-deps: %s\n' "$*" >&2
  exit 1
}

want_node=1
want_browser=1
[ "${GRIPD_SKIP_NODE:-}" = 1 ] && want_node=0 && want_browser=0
[ "${GRIPD_SKIP_BROWSER:-}" = 1 ] && want_browser=0

# The system packages that are missing, by Debian name.
missing=()
command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
if [ $want_node = 1 ]; then
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi
if [ $want_browser = 1 ]; then
  chromium=${GRIPD_CHROMIUM:-/usr/bin/chromium}
  if [ ! -f "$chromium" ] || [ ! -x "$chromium" ]; then
    if [ -n "${GRIPD_CHROMIUM:-}" ]; then
      die "GRIPD_CHROMIUM=$chromium is not an executable: point it at a Chromium, or unset it to use Debian's chromium (GRIPD_SKIP_BROWSER=1 skips the browser tests)"
    fi
    missing+=(chromium)
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]} (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    die "the tests need ${missing[*]}: run \`sudo apt-get install -y --no-install-recommends ${missing[*]}\` and then \`make test\` again (GRIPD_SKIP_BROWSER=1 skips the browser tests, GRIPD_SKIP_NODE=1 every test that needs Node)"
  fi
fi

# npm ci writes node_modules/.package-lock.json: older than the lock file
# (or missing) means the packages are not the ones the lock file pins.
if [ $want_node = 1 ] && [ integration/package-lock.json -nt integration/node_modules/.package-lock.json ]; then
  say "npm ci in integration/ (the GRIP client libraries and playwright-core)"
  (cd integration && npm ci --no-audit --no-fund --loglevel=error) ||
    die "npm ci in integration/ failed (above); run it again there, or set GRIPD_SKIP_NODE=1 to skip the tests that need Node"
fi
