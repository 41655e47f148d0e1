#!/usr/bin/env bash
# Prints the table of the real components the integration tests can use on this machine, with
# their versions: the last thing setup.sh shows, and handy on its own to see what a machine has.
set -uo pipefail
cache=${FIREDRILL_CACHE_DIR:-$HOME/.cache/firedrill}

row() { printf '  %-24s %-30s %s\n' "$1" "$2" "$3"; }

# first_line CMD...: the first line a command prints, or nothing.
first_line() { "$@" 2>&1 | head -n 1; }

# version_of NAME PATH FIELD-EXTRACTING-AWK CMD...: one row, "missing" when PATH is absent.
version_of() {
	local name=$1 path=$2 prog=$3
	shift 3
	if [ -x "$path" ]; then
		row "$name" "$(first_line "$@" | awk "$prog")" "$path"
	else
		row "$name" "missing" "-"
	fi
}

echo "setup: components (cache: $cache)"
row COMPONENT VERSION WHERE
pg=/usr/lib/postgresql/15/bin
version_of "postgresql" "$pg/postgres" '{ print $3 }' "$pg/postgres" --version
if [ -e /usr/lib/postgresql/15/lib/amcheck.so ]; then
	row "postgresql contrib" "amcheck, pg_checksums" /usr/lib/postgresql/15/lib
else
	row "postgresql contrib" "missing" "-"
fi
version_of "mariadb" /usr/sbin/mariadbd '{ print $3 }' /usr/sbin/mariadbd --version
version_of "redis" /usr/bin/redis-server '{ sub(/^v=/, "", $3); print $3 }' /usr/bin/redis-server --version
version_of "promtool" /usr/bin/promtool '{ print $3 }' /usr/bin/promtool --version
version_of "etcd" /usr/bin/etcd '{ print $3 }' /usr/bin/etcd --version
version_of "debootstrap" /usr/sbin/debootstrap '{ print $2 }' /usr/sbin/debootstrap --version

if server=$(docker version --format '{{.Server.Version}}' 2>/dev/null); then
	row "docker engine" "$server" "$(docker context inspect -f '{{.Endpoints.docker.Host}}' 2>/dev/null || echo running)"
	label=$(docker image inspect -f '{{index .Config.Labels "firedrill.image-key"}}' local/postgres:15 2>/dev/null)
	if [ -n "$label" ]; then
		# The label is SUITE-postgresql-15_VERSION-rRECIPE+entrypoint-HASH.
		v=${label#*postgresql-15_}
		row "image local/postgres:15" "postgresql ${v%-r*}" "docker image (${label%%-*})"
	else
		row "image local/postgres:15" "missing" "-"
	fi
elif [ -x /usr/sbin/dockerd ]; then
	row "docker engine" "not running" "/usr/sbin/dockerd"
else
	row "docker engine" "missing" "-"
fi

# What gotools.sh built or copied into the cache: NAME-VERSION files.
shopt -s nullglob
for f in "$cache"/bin/*; do
	[ -x "$f" ] && [ -f "$f" ] || continue
	base=$(basename "$f")
	case "$base" in *.tmp.*) continue ;; esac
	row "${base%-v*}" "${base##*-}" "$f"
done
