#!/usr/bin/env bash
# Installs the Debian packages the integration tests use, when they are missing. Idempotent:
# when everything is present it only looks at a few files. `apt-get update` runs once, and only
# when something has to be installed. Services are never started by the packages (a temporary
# policy-rc.d says no): the tests start private instances on temporary ports instead.
set -euo pipefail
# shellcheck source=integration/setup/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# component|a file that proves it is installed|Debian package to install
# postgresql-contrib-15 is provided by postgresql-15 on bookworm; amcheck.so proves the contrib
# modules are there. chromium renders the serve status page headless (--no-install-recommends
# leaves out its recommended fonts, so one font package is named for legible screenshots).
PACKAGES=(
	"postgresql-15|/usr/lib/postgresql/15/bin/postgres|postgresql-15"
	"postgresql-contrib-15|/usr/lib/postgresql/15/lib/amcheck.so|postgresql-contrib"
	"mariadb-server|/usr/sbin/mariadbd|mariadb-server"
	"mariadb-backup (local MariaDB snapshots and their drills)|/usr/bin/mariadb-backup|mariadb-backup"
	"redis-server|/usr/bin/redis-server|redis-server"
	"prometheus (promtool, and the server the alert tests scrape serve with)|/usr/bin/prometheus|prometheus"
	"prometheus-pushgateway (Pushgateway tests)|/usr/bin/prometheus-pushgateway|prometheus-pushgateway"
	"docker.io|/usr/sbin/dockerd|docker.io"
	"etcd-server|/usr/bin/etcd|etcd-server"
	"debootstrap|/usr/sbin/debootstrap|debootstrap"
	"btrfs-progs (reflink tests)|/usr/sbin/mkfs.btrfs|btrfs-progs"
	"util-linux|/usr/sbin/runuser|util-linux"
	"chromium (status page tests)|/usr/bin/chromium|chromium"
	"fonts-dejavu-core (chromium's screenshots)|/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf|fonts-dejavu-core"
	"poppler-utils (pdftotext and pdfinfo read the report's PDF)|/usr/bin/pdftotext|poppler-utils"
	"pgbackrest (drills of pgBackRest repositories)|/usr/bin/pgbackrest|pgbackrest"
	"containerd (the e2e cluster's private container runtime)|/usr/bin/containerd|containerd"
	"runc (the e2e cluster's OCI runtime)|/usr/sbin/runc|runc"
	"containernetworking-plugins (the e2e cluster's pod network)|/usr/lib/cni/bridge|containernetworking-plugins"
	"iptables (the e2e cluster's service address of the API server)|/usr/sbin/iptables|iptables"
)

want=()
for entry in "${PACKAGES[@]}"; do
	IFS='|' read -r component file pkg <<<"$entry"
	[ -e "$file" ] || want+=("$pkg")
done

if [ "${#want[@]}" = 0 ]; then
	log "Debian packages: all present"
	finish_step
	exit 0
fi

how="apt-get update && apt-get install -y --no-install-recommends ${want[*]} (as root)"
if ! is_root || ! command -v apt-get >/dev/null; then
	log "cannot install Debian packages here (needs root and apt-get)"
	for pkg in "${want[@]}"; do missing "$pkg" "$how"; done
	finish_step
	exit 0
fi

# Keep the packages from starting system-wide services (a MariaDB on 3306, a Prometheus on 9090,
# a dockerd without our log): only when no policy-rc.d exists already.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# written by firedrill integration/setup/apt.sh while it installs\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	at_exit 'rm -f "$policy"'
fi

start=$SECONDS
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
log "installing ${want[*]} (apt log: $LOGDIR/apt.log)"
if ! apt-get "${apt_opts[@]}" update >>"$LOGDIR/apt.log" 2>&1; then
	log "apt-get update failed; see $LOGDIR/apt.log"
fi
if ! apt-get "${apt_opts[@]}" install --no-install-recommends "${want[@]}" >>"$LOGDIR/apt.log" 2>&1; then
	log "apt-get install failed; last lines of $LOGDIR/apt.log:"
	tail -n 15 "$LOGDIR/apt.log" >&2
fi

for entry in "${PACKAGES[@]}"; do
	IFS='|' read -r component file pkg <<<"$entry"
	[ -e "$file" ] || missing "$component" "apt-get install -y --no-install-recommends $pkg (as root); see $LOGDIR/apt.log"
done
log "Debian packages: done in $(since "$start")"
finish_step
