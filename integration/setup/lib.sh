# shellcheck shell=bash
# Shared helpers for the integration setup scripts; sourced, never run.
#
# Every step records what it could not provide in $FIREDRILL_SETUP_MISSING (one "component: how"
# line each) instead of stopping, so setup.sh can still print the component table; setup.sh then
# fails the run when FIREDRILL_REQUIRE_INTEGRATION=1 and anything is missing.

: "${FIREDRILL_CACHE_DIR:=$HOME/.cache/firedrill}"
export FIREDRILL_CACHE_DIR
LOGDIR=$FIREDRILL_CACHE_DIR/logs
mkdir -p "$LOGDIR"

# at_exit CMD: run CMD when the script exits, after those registered before (one EXIT trap).
AT_EXIT=()
at_exit() {
	AT_EXIT+=("$1")
	trap 'for c in "${AT_EXIT[@]}"; do eval "$c"; done' EXIT
}

# A step run on its own (bash integration/setup/docker.sh) keeps its own list.
if [ -z "${FIREDRILL_SETUP_MISSING:-}" ]; then
	FIREDRILL_SETUP_MISSING=$(mktemp "${TMPDIR:-/tmp}/firedrill-missing.XXXXXX")
	export FIREDRILL_SETUP_MISSING
	FIREDRILL_SETUP_OWN_MISSING=1
	at_exit 'rm -f "$FIREDRILL_SETUP_MISSING"'
fi

# Debian puts dockerd, debootstrap and runuser in sbin, which a non-root PATH often lacks.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin ;; esac
export PATH

log() { printf 'setup: %s\n' "$*" >&2; }

# missing COMPONENT HOW: remember that COMPONENT is unavailable and how a person gets it.
missing() {
	log "MISSING $1 -- $2"
	printf '%s: %s\n' "$1" "$2" >>"$FIREDRILL_SETUP_MISSING"
}

is_root() { [ "$(id -u)" = 0 ]; }

# elapsed SECONDS_SINCE: whole seconds since a $SECONDS reading, for progress lines.
since() { echo "$((SECONDS - $1))s"; }

# finish_step: for a step run on its own, exit non-zero if it recorded anything missing.
finish_step() {
	if [ "${FIREDRILL_SETUP_OWN_MISSING:-}" = 1 ]; then
		local n
		n=$(wc -l <"$FIREDRILL_SETUP_MISSING")
		[ "$n" = 0 ] || exit 1
	fi
}
