#!/usr/bin/env bash
# setup.sh — the one idempotent entry point that installs, builds and starts what the integration
# tests use (called by `make setup`, which `make test` runs, and so by .ci/run):
#
#   apt.sh      Debian packages: PostgreSQL 15, MariaDB, Redis, promtool, Docker, etcd, debootstrap
#   docker.sh   dockerd running, and the local image local/postgres:15
#   gotools.sh  Go-built servers into the cache: versitygw (S3), kube-apiserver (if present)
#
# then prints a table of the components found. The cache is ${FIREDRILL_CACHE_DIR:-~/.cache/firedrill}.
# A second run does nothing and takes seconds.
#
# Without root or apt it says what is missing and how to get it, and exits 0 (the tests that need
# it skip); with FIREDRILL_REQUIRE_INTEGRATION=1 (set by .ci/run) anything missing makes it exit 1.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=integration/setup/lib.sh
. "$HERE/lib.sh" # makes $FIREDRILL_SETUP_MISSING, which the steps below append to

start=$SECONDS

# step NAME SCRIPT: run one step; a step that fails is recorded as missing, and the others still run.
step() {
	local name=$1 script=$2 t=$SECONDS
	if ! bash "$script"; then
		# A step that records what it misses exits non-zero when run alone only; here it exits 0, so
		# a failure is something it did not foresee.
		missing "$name" "$(basename "$script") failed; see its messages above"
	fi
	log "step $name: $(since "$t")"
}

# Docker before the Go builds: a broken image build shows in minutes, not after the long builds.
step "Debian packages" "$HERE/apt.sh"
step "Docker" "$HERE/docker.sh"
if [ -f "$HERE/gotools.sh" ]; then
	step "Go-built tools" "$HERE/gotools.sh"
fi

bash "$HERE/components.sh" || true
log "setup done in $(since "$start")"

if [ -s "$FIREDRILL_SETUP_MISSING" ]; then
	echo "setup: missing components (tests that need them skip):"
	sed 's/^/  - /' "$FIREDRILL_SETUP_MISSING"
	if [ "${FIREDRILL_REQUIRE_INTEGRATION:-}" = 1 ]; then
		echo "setup: FIREDRILL_REQUIRE_INTEGRATION=1: missing components are an error" >&2
		exit 1
	fi
fi
