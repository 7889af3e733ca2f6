#!/usr/bin/env bash
# The test command. On a bare Debian machine it first installs what the tests use
# (Debian's feedparser, Chromium, SpamAssassin, podman, PostgreSQL; Mailpit through the Go module
# proxy), then runs every Go test, including the end-to-end, crash and fault suites
# and the container image test. Nothing is skipped for want of a tool. The tests
# that need PostgreSQL start a private cluster of their own (internal/pgtest:
# initdb and pg_ctl in a temporary folder, as an unprivileged user, on a free
# loopback port) and stop it when they end.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$(go env GOPATH)/bin:$PATH"

apt_needed=()
/usr/bin/python3 -c 'import feedparser' 2>/dev/null || apt_needed+=(python3-feedparser)
command -v chromium >/dev/null || apt_needed+=(chromium)
command -v spamassassin >/dev/null || apt_needed+=(spamassassin) # the digest must not read as spam
command -v podman >/dev/null || apt_needed+=(podman)
command -v buildah >/dev/null || apt_needed+=(buildah)
command -v runc >/dev/null || apt_needed+=(runc)
command -v busybox >/dev/null || apt_needed+=(busybox-static)
command -v script >/dev/null || apt_needed+=(bsdutils) # a pseudo-terminal for the progress-bar test
command -v unshare >/dev/null || apt_needed+=(util-linux) # PID namespaces: two runs shaped like two containers
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_needed+=(postgresql)
if [ ${#apt_needed[@]} -gt 0 ]; then
	echo "test.sh: installing ${apt_needed[*]}" >&2
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_needed[@]}" >/dev/null
fi
if ! command -v mailpit >/dev/null; then
	echo "test.sh: installing mailpit" >&2
	go install github.com/axllent/mailpit@v1.33.1
fi

go test -race -count=1 -timeout 30m ./...
bash scripts/image-test.sh
