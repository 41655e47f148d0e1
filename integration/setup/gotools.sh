#!/usr/bin/env bash
# gotools.sh — build or fetch the Go-built servers the integration harness runs, into the cache:
#
#   $FIREDRILL_CACHE_DIR/bin/versitygw-<v>       S3 gateway   (integration/tools/versitygw)
#   $FIREDRILL_CACHE_DIR/bin/kube-apiserver-<v>  API server   (integration/tools/kube-apiserver)
#   $FIREDRILL_CACHE_DIR/bin/etcd-<v>            etcd         (Debian's etcd-server package)
#   $FIREDRILL_CACHE_DIR/bin/{kubelet,kube-controller-manager,kube-scheduler}-<v>
#                                                the e2e cluster's node (integration/tools/kube-apiserver/cmd)
#   $FIREDRILL_CACHE_DIR/bin/{snapshot-controller,csi-snapshotter}-<v>, csi-provisioner-<v>
#                                                CSI snapshot machinery (integration/tools/external-*)
#   (FIREDRILL_E2E_TOOLS=0 leaves the e2e cluster's tools out.)
#
# Versions come from the tools modules' go.mod files (one place to bump them) and, for etcd,
# from the installed binary. A binary already in the cache is kept, so a second run does nothing
# and takes seconds. Builds are slow when cold (versitygw ~3.5 min, kube-apiserver ~8 min on two
# cores) and run one at a time, as every core is shared.
#
# Called by integration/setup/setup.sh; runs standalone too. Exit status 1 if a tool could not be
# provided (the others are still attempted).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tools=$(cd "$here/../tools" && pwd)
cache=${FIREDRILL_CACHE_DIR:-$HOME/.cache/firedrill}
bin=$cache/bin
mkdir -p "$bin"

# The tools modules pin their own versions in go.mod/go.sum: never let the go command fetch a
# different toolchain, and let it complete go.sum if a future Go wants more entries.
export GOTOOLCHAIN=local
# -buildvcs=false: as a non-root user the checkout's VCS status cannot be read.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod -buildvcs=false"

# One run at a time: two concurrent runs would build the same thing twice on shared cores.
exec 9>"$cache/.gotools.lock"
if ! flock -n 9; then
	echo "gotools: another gotools.sh is running; waiting for it" >&2
	flock 9
fi

status=0
summary=()

log() { echo "gotools: $*" >&2; }

size_of() { du -h "$1" | cut -f1; }

# require_version MODULE GOMOD: the version GOMOD requires MODULE at.
require_version() {
	local v
	v=$(awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$2")
	if [[ -z $v ]]; then
		log "cannot find the version of $1 in $2"
		return 1
	fi
	echo "$v"
}

# build_tool NAME VERSION MODULE_DIR PACKAGE [go build flags...]: build PACKAGE inside the tools
# module MODULE_DIR into $bin/NAME-VERSION unless it is already there.
build_tool() {
	local name=$1 version=$2 dir=$3 pkg=$4
	shift 4
	local out=$bin/$name-$version
	if [[ -x $out ]]; then
		summary+=("found  $out ($(size_of "$out"))")
		return 0
	fi
	log "building $name $version in $dir (minutes when the Go build cache is cold)"
	local tmp=$out.tmp.$$ start=$SECONDS
	if ! (cd "$dir" && go build -trimpath "$@" -o "$tmp" "$pkg"); then
		rm -f "$tmp"
		log "building $name $version failed"
		summary+=("FAILED $name $version")
		status=1
		return 0
	fi
	mv -f "$tmp" "$out" # atomic: a half-written binary never carries the final name
	summary+=("built  $out ($(size_of "$out"), $((SECONDS - start)) s)")
}

# install_etcd copies Debian's etcd into the cache, installing etcd-server first if it is missing
# (root only). etcd is not a Go module we can pin: its version is whatever Debian ships.
install_etcd() {
	local etcd
	etcd=$(command -v etcd || true)
	if [[ -z $etcd ]]; then
		if [[ $(id -u) -ne 0 ]]; then
			log "etcd is missing and this is not root: install Debian's etcd-server package (apt-get install etcd-server)"
			summary+=("MISSING etcd (not root: cannot apt-get install etcd-server)")
			status=1
			return 0
		fi
		log "installing Debian's etcd-server"
		# The package's service must not start: a system etcd on :2379 is not ours to run.
		if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends etcd-server >/dev/null; then
			apt-get update >/dev/null
			DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends etcd-server >/dev/null
		fi
		etcd=$(command -v etcd)
	fi
	local version
	version=v$("$etcd" --version | awk '/^etcd Version:/ { print $3 }')
	if [[ $version == v ]]; then
		log "cannot tell the version of $etcd"
		summary+=("FAILED etcd (unknown version)")
		status=1
		return 0
	fi
	local out=$bin/etcd-$version
	if [[ -x $out ]] && cmp -s "$etcd" "$out"; then
		summary+=("found  $out ($(size_of "$out"))")
		return 0
	fi
	cp "$etcd" "$out.tmp.$$" && mv -f "$out.tmp.$$" "$out"
	summary+=("copied $out from $etcd ($(size_of "$out"))")
}

start=$SECONDS

vgw_mod=$tools/versitygw/go.mod
if vgw_version=$(require_version github.com/versity/versitygw "$vgw_mod"); then
	build_tool versitygw "$vgw_version" "$tools/versitygw" github.com/versity/versitygw/cmd/versitygw
else
	summary+=("FAILED versitygw (no version in $vgw_mod)")
	status=1
fi

kas_mod=$tools/kube-apiserver/go.mod
if kas_version=$(require_version k8s.io/kubernetes "$kas_mod"); then
	# Stamp the version as upstream's release build does, so /version and the apiserver's own
	# compatibility checks see v1.36.x rather than v0.0.0-master.
	minor=${kas_version#v*.}
	minor=${minor%%.*}
	major=${kas_version#v}
	major=${major%%.*}
	pfx=k8s.io/component-base/version
	ldflags="-s -w -X $pfx.gitVersion=$kas_version -X $pfx.gitMajor=$major -X $pfx.gitMinor=$minor -X $pfx.gitTreeState=clean"
	build_tool kube-apiserver "$kas_version" "$tools/kube-apiserver" . -ldflags "$ldflags"
	# The rest of the e2e cluster's node (make e2e), from the same module: most packages are
	# shared with the API server, so each adds a minute or two to a cold build.
	if [[ ${FIREDRILL_E2E_TOOLS:-1} != 0 ]]; then
		for t in kubelet kube-controller-manager kube-scheduler; do
			build_tool "$t" "$kas_version" "$tools/kube-apiserver" "./cmd/$t" -ldflags "$ldflags"
		done
	fi
else
	summary+=("FAILED kube-apiserver (no version in $kas_mod)")
	status=1
fi

# The CSI snapshot machinery of the e2e cluster, each from its own tools module (their
# Kubernetes libraries do not compile together).
if [[ ${FIREDRILL_E2E_TOOLS:-1} != 0 ]]; then
	snap_mod=$tools/external-snapshotter/go.mod
	if snap_version=$(require_version github.com/kubernetes-csi/external-snapshotter/v8 "$snap_mod"); then
		for t in snapshot-controller csi-snapshotter; do
			build_tool "$t" "$snap_version" "$tools/external-snapshotter" "github.com/kubernetes-csi/external-snapshotter/v8/cmd/$t" -ldflags "-s -w -X main.version=$snap_version"
		done
	else
		summary+=("FAILED external-snapshotter (no version in $snap_mod)")
		status=1
	fi
	prov_mod=$tools/external-provisioner/go.mod
	if prov_version=$(require_version github.com/kubernetes-csi/external-provisioner/v6 "$prov_mod"); then
		build_tool csi-provisioner "$prov_version" "$tools/external-provisioner" github.com/kubernetes-csi/external-provisioner/v6/cmd/csi-provisioner -ldflags "-s -w -X main.version=$prov_version"
	else
		summary+=("FAILED external-provisioner (no version in $prov_mod)")
		status=1
	fi
fi

install_etcd

for line in "${summary[@]}"; do
	echo "gotools: $line"
done
echo "gotools: done in $((SECONDS - start)) s"
exit $status
