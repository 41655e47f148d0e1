#!/usr/bin/env bash
# Makes the Docker engine reachable (starting dockerd when it is not running) and builds the
# local PostgreSQL image local/postgres:15 that the container tests use (and local/engines:bookworm,
# Redis and MariaDB, for the docker runtime's drills of those engines). No image registry is
# reachable, so the image is Debian's postgresql-15 in a debootstrap rootfs plus the entrypoint
# in postgres-image/. Idempotent and cached:
#   - the rootfs tarball is kept in $FIREDRILL_CACHE_DIR/images/, keyed by suite and package
#     version, so debootstrap (about 3 minutes) runs once per machine and cache;
#   - the image carries a label with that key and the entrypoint's hash; when it matches, nothing
#     is done; otherwise the tarball is imported again (about 15 s).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=integration/setup/lib.sh
. "$HERE/lib.sh"

IMAGE=local/postgres:15
SUITE=bookworm
# Bump when the rootfs recipe below changes, so a cached tarball is not reused.
ROOTFS_RECIPE=1
ENTRYPOINT=$HERE/postgres-image/docker-entrypoint.sh
DOCKER_HOW="run 'make setup' as root (installs docker.io, starts dockerd)"

# --- the engine ---------------------------------------------------------------------------------
start_dockerd() {
	if docker info >/dev/null 2>&1; then
		return 0
	fi
	local dockerd
	# /usr/sbin is often not on a non-root PATH.
	dockerd=$(command -v dockerd || { [ -x /usr/sbin/dockerd ] && echo /usr/sbin/dockerd; } || true)
	if [ -z "$dockerd" ]; then
		missing docker "dockerd is not installed; $DOCKER_HOW"
		return 1
	fi
	if ! is_root; then
		local why
		why=$(docker info 2>&1 | grep -i -m1 -E 'cannot connect|permission denied|error' || true)
		missing docker "the Docker daemon is not reachable (${why:-docker info failed}): start it as root ('make setup'), or join the docker group"
		return 1
	fi
	remove_stale_pidfile /var/run/docker.pid dockerd
	remove_stale_pidfile /var/run/docker/containerd/containerd.pid containerd
	log "starting dockerd (log: $LOGDIR/dockerd.log)"
	# setsid: the daemon outlives this script and is not in make's process group.
	setsid "$dockerd" >"$LOGDIR/dockerd.log" 2>&1 </dev/null &
	local pid=$! i
	for ((i = 0; i < 60; i++)); do
		if docker info >/dev/null 2>&1; then
			log "dockerd is up after ${i}s"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			log "dockerd exited; last lines of $LOGDIR/dockerd.log:"
			tail -n 10 "$LOGDIR/dockerd.log" >&2
			missing docker "dockerd exited at start; see $LOGDIR/dockerd.log"
			return 1
		fi
		sleep 1
	done
	missing docker "dockerd did not answer within 60 s; see $LOGDIR/dockerd.log"
	return 1
}

# remove_stale_pidfile FILE NAME: a daemon killed without shutting down (as at the end of a
# session, when its processes are ended) leaves its pid file, and dockerd then refuses to start.
remove_stale_pidfile() {
	local file=$1 name=$2 pid
	[ -e "$file" ] || return 0
	pid=$(cat "$file" 2>/dev/null || true)
	if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
		return 0 # still running: dockerd will say what is wrong
	fi
	log "removing stale $file (pid ${pid:-?} is not a running $name)"
	rm -f "$file"
}

# --- the image ----------------------------------------------------------------------------------

# debian_mirror prints the first Debian mirror URI that serves $SUITE, from one-line or deb822
# sources.
debian_mirror() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk -v suite="$SUITE" '
			$1 == "deb" {
				i = 2
				if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
				if ($(i+1) == suite) { print $i; exit }
			}' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk -v suite="$SUITE" '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && suites ~ ("(^| )" suite "( |$)") && uris != "") {
					split(uris, u, " "); print u[1]; found = 1
				}
				types = ""; suites = ""; uris = ""
			}
			/^[ \t]*$/ { flush(); if (found) exit; next }
			/^Types:/  { sub(/^Types:[ \t]*/, ""); types = $0 }
			/^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
			/^URIs:/   { sub(/^URIs:[ \t]*/, ""); uris = $0 }
			END { if (!found) flush() }' "$f"
	done | head -n 1
}

# postgres_version prints the postgresql-15 version in the mirror's $SUITE suite (what debootstrap
# installs: it does not look at -updates or -security), or "unknown" when apt has no lists.
postgres_version() {
	local v
	v=$(apt-cache madison postgresql-15 2>/dev/null |
		awk -F' [|] ' -v s="$SUITE/main" '{ split($3, w, " "); if (w[2] == s) { print $2; exit } }')
	echo "${v:-unknown}"
}

# remove_root DIR: unmounts what debootstrap may have left mounted (/proc, /sys) under DIR after
# a failure, then removes DIR.
remove_root() {
	local m
	awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
		umount -l "$m" || true
	done
	rm -rf "$1"
}

build_rootfs() { # build_rootfs TARBALL
	local tarball=$1 mirror root start
	mirror=$(debian_mirror)
	if [ -z "$mirror" ]; then
		missing "$IMAGE" "no Debian $SUITE mirror found in /etc/apt/sources.list{,.d}; add one, then 'make setup'"
		return 1
	fi
	if ! command -v debootstrap >/dev/null; then
		missing "$IMAGE" "debootstrap is not installed; $DOCKER_HOW"
		return 1
	fi
	mkdir -p "$FIREDRILL_CACHE_DIR/tmp"
	root=$(mktemp -d "$FIREDRILL_CACHE_DIR/tmp/rootfs.XXXXXX")
	start=$SECONDS
	log "debootstrap $SUITE + postgresql-15 from $mirror (about 3 minutes; log: $LOGDIR/debootstrap.log)"
	if ! debootstrap --variant=minbase --include=postgresql-15 "$SUITE" "$root" "$mirror" \
		>"$LOGDIR/debootstrap.log" 2>&1; then
		log "debootstrap failed; last lines of $LOGDIR/debootstrap.log:"
		tail -n 15 "$LOGDIR/debootstrap.log" >&2
		remove_root "$root"
		missing "$IMAGE" "debootstrap failed (see $LOGDIR/debootstrap.log); fix, then 'make setup'"
		return 1
	fi
	# The package's own cluster is not used (the entrypoint makes one in $PGDATA); docs, apt lists
	# and downloaded packages only make the image bigger.
	rm -rf "$root"/var/lib/postgresql/15/main "$root"/etc/postgresql/15/main \
		"$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
		"$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
		"$root"/var/log/*.log "$root"/var/log/apt/*
	tar -C "$root" --numeric-owner -cf "$tarball.part" .
	mv "$tarball.part" "$tarball"
	remove_root "$root"
	log "rootfs $(basename "$tarball") ($(du -h "$tarball" | cut -f1)) built in $(since "$start")"
}

build_image() {
	local pgver key tarball base want have cid start
	pgver=$(postgres_version)
	key="$SUITE-postgresql-15_${pgver}-r$ROOTFS_RECIPE"
	tarball=$FIREDRILL_CACHE_DIR/images/rootfs-$key.tar
	base="local/postgres-rootfs:$(echo "$key" | tr -c 'A-Za-z0-9_.\n-' '_')"
	want="$key+entrypoint-$(sha256sum "$ENTRYPOINT" | cut -c1-12)"

	have=$(docker image inspect -f '{{index .Config.Labels "firedrill.image-key"}}' "$IMAGE" 2>/dev/null || true)
	if [ "$have" = "$want" ]; then
		log "$IMAGE is up to date ($want)"
		return 0
	fi
	start=$SECONDS
	if ! docker image inspect "$base" >/dev/null 2>&1; then
		mkdir -p "$(dirname "$tarball")"
		if [ ! -s "$tarball" ]; then
			if ! is_root; then
				missing "$IMAGE" "building it needs root (debootstrap); run 'make setup' as root"
				return 1
			fi
			build_rootfs "$tarball" || return 1
		fi
		log "docker import $(basename "$tarball") as $base"
		if ! docker import "$tarball" "$base" >/dev/null; then
			missing "$IMAGE" "docker import of $tarball failed; remove it and run 'make setup'"
			return 1
		fi
	fi
	if ! cid=$(docker create "$base" /bin/true); then
		missing "$IMAGE" "docker create $base failed; see the messages above"
		return 1
	fi
	if ! docker cp "$ENTRYPOINT" "$cid:/usr/local/bin/docker-entrypoint.sh" || ! docker commit \
		-c 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		-c 'ENV PGDATA=/var/lib/postgresql/data' \
		-c 'ENV LANG=C.UTF-8' \
		-c 'EXPOSE 5432' \
		-c 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
		-c 'CMD ["postgres"]' \
		-c "LABEL firedrill.image-key=$want" \
		"$cid" "$IMAGE" >/dev/null; then
		docker rm -f "$cid" >/dev/null 2>&1 || true
		missing "$IMAGE" "docker cp/commit failed; see the messages above"
		return 1
	fi
	docker rm -f "$cid" >/dev/null
	log "$IMAGE built ($want) in $(since "$start")"
}

# --- the engines image --------------------------------------------------------------------------
# local/engines:bookworm has Debian's redis-server, mariadb-server and mariadb-backup: the image
# the docker runtime's Redis and MariaDB drills run in (restore.docker.image). Same recipe as
# above: a debootstrap rootfs cached by package versions, imported once.
ENGINES_IMAGE=local/engines:bookworm
ENGINES_PACKAGES=redis-server,redis-tools,mariadb-server,mariadb-backup
ENGINES_RECIPE=1

engines_version() {
	local p v out=""
	for p in redis-server mariadb-server; do
		v=$(apt-cache madison "$p" 2>/dev/null |
			awk -F' [|] ' -v s="$SUITE/main" '{ split($3, w, " "); if (w[2] == s) { print $2; exit } }')
		out="$out${out:+_}$p-${v:-unknown}"
	done
	echo "$out"
}

build_engines_image() {
	local key want have tarball mirror root start
	key="$SUITE-$(engines_version)-r$ENGINES_RECIPE"
	want=$(echo "$key" | tr -c 'A-Za-z0-9_.\n-' '_')
	have=$(docker image inspect -f '{{index .Config.Labels "firedrill.image-key"}}' "$ENGINES_IMAGE" 2>/dev/null || true)
	if [ "$have" = "$want" ]; then
		log "$ENGINES_IMAGE is up to date ($want)"
		return 0
	fi
	start=$SECONDS
	tarball=$FIREDRILL_CACHE_DIR/images/engines-$want.tar
	mkdir -p "$(dirname "$tarball")"
	if [ ! -s "$tarball" ]; then
		if ! is_root; then
			missing "$ENGINES_IMAGE" "building it needs root (debootstrap); run 'make setup' as root"
			return 1
		fi
		mirror=$(debian_mirror)
		if [ -z "$mirror" ] || ! command -v debootstrap >/dev/null; then
			missing "$ENGINES_IMAGE" "no Debian $SUITE mirror or no debootstrap; $DOCKER_HOW"
			return 1
		fi
		mkdir -p "$FIREDRILL_CACHE_DIR/tmp"
		root=$(mktemp -d "$FIREDRILL_CACHE_DIR/tmp/rootfs.XXXXXX")
		log "debootstrap $SUITE + $ENGINES_PACKAGES from $mirror (about 6 minutes; log: $LOGDIR/debootstrap-engines.log)"
		if ! debootstrap --variant=minbase --include="$ENGINES_PACKAGES" "$SUITE" "$root" "$mirror" \
			>"$LOGDIR/debootstrap-engines.log" 2>&1; then
			tail -n 15 "$LOGDIR/debootstrap-engines.log" >&2
			remove_root "$root"
			missing "$ENGINES_IMAGE" "debootstrap failed (see $LOGDIR/debootstrap-engines.log)"
			return 1
		fi
		# The packages' own data directories are not used (a drill mounts its copy).
		rm -rf "$root"/var/lib/mysql/* "$root"/var/lib/redis/* \
			"$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
			"$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
			"$root"/var/log/*.log "$root"/var/log/apt/*
		tar -C "$root" --numeric-owner -cf "$tarball.part" .
		mv "$tarball.part" "$tarball"
		remove_root "$root"
	fi
	log "docker import $(basename "$tarball") as $ENGINES_IMAGE"
	if ! docker import \
		-c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		-c 'ENV LANG=C.UTF-8' \
		-c "LABEL firedrill.image-key=$want" \
		"$tarball" "$ENGINES_IMAGE" >/dev/null; then
		missing "$ENGINES_IMAGE" "docker import of $tarball failed; remove it and run 'make setup'"
		return 1
	fi
	log "$ENGINES_IMAGE built ($want) in $(since "$start")"
}

# Both are called in an if, where errexit does not apply: they check each command themselves.
if start_dockerd; then
	if ! build_image; then
		log "$IMAGE is not available: container tests will skip (or fail under FIREDRILL_REQUIRE_INTEGRATION=1)"
	fi
	if ! build_engines_image; then
		log "$ENGINES_IMAGE is not available: the docker runtime's Redis and MariaDB drill tests will skip"
	fi
fi
finish_step
