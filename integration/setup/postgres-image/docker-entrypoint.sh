#!/bin/sh
# Entrypoint of firedrill's local/postgres:15 image: Debian's postgresql-15 in a debootstrap
# rootfs, since no image registry is reachable. It does what the official postgres image's
# entrypoint does, as far as testcontainers-go's modules/postgres relies on it:
#   - POSTGRES_USER (default postgres), POSTGRES_PASSWORD, POSTGRES_DB (default the user),
#     POSTGRES_HOST_AUTH_METHOD, POSTGRES_INITDB_ARGS, PGDATA (default /var/lib/postgresql/data);
#   - a first start runs initdb, then a temporary socket-only server that creates the database
#     and runs /docker-entrypoint-initdb.d/*.sql, *.sql.gz and *.sh, then the real server, so
#     "database system is ready to accept connections" is logged twice, as the official image
#     does (modules/postgres' BasicWaitStrategies waits for the second);
#   - arguments that start with "-" are passed to postgres; another command is run as given.
# The image runs as root, so the server runs as the postgres user through setpriv, which execs
# (no parent process left between docker and postgres, so docker stop signals postgres itself).
set -eu

export PGDATA="${PGDATA:-/var/lib/postgresql/data}"

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

case "${1:-}" in
'' | -*) set -- postgres "$@" ;;
esac
if [ "$1" != postgres ]; then
	exec "$@"
fi

mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
chmod 2775 /var/run/postgresql

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	user="${POSTGRES_USER:-postgres}"
	db="${POSTGRES_DB:-$user}"
	method="${POSTGRES_HOST_AUTH_METHOD:-}"
	if [ -z "$method" ]; then
		if [ -z "${POSTGRES_PASSWORD:-}" ]; then
			echo "error: database is uninitialized and POSTGRES_PASSWORD is empty;" \
				"set it, or POSTGRES_HOST_AUTH_METHOD=trust to allow connections without one" >&2
			exit 1
		fi
		method=scram-sha-256
	fi

	pwopt=
	if [ -n "${POSTGRES_PASSWORD:-}" ]; then
		pwfile=$(mktemp)
		printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
		chown postgres "$pwfile"
		pwopt="--pwfile=$pwfile"
	fi
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words, as in the official image
	as_postgres initdb -D "$PGDATA" --username="$user" $pwopt ${POSTGRES_INITDB_ARGS:-}
	[ -z "$pwopt" ] || rm -f "${pwopt#--pwfile=}"

	printf '\nhost all all all %s\n' "$method" >>"$PGDATA/pg_hba.conf"
	printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"

	as_postgres pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
	export PGUSER="$user" PGDATABASE=postgres PGHOST=/var/run/postgresql PGPORT=5432
	if [ "$db" != postgres ]; then
		as_postgres psql -v ON_ERROR_STOP=1 -q --set db="$db" <<-'SQL'
			CREATE DATABASE :"db";
		SQL
	fi
	export PGDATABASE="$db"
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
		*.sh)
			echo "running $f"
			if [ -x "$f" ]; then as_postgres "$f"; else as_postgres sh "$f"; fi
			;;
		*.sql)
			echo "running $f"
			as_postgres psql -v ON_ERROR_STOP=1 -f "$f"
			;;
		*.sql.gz)
			echo "running $f"
			gzip -dc "$f" | as_postgres psql -v ON_ERROR_STOP=1
			;;
		*) echo "ignoring $f" ;;
		esac
	done
	unset PGUSER PGDATABASE PGHOST PGPORT
	as_postgres pg_ctl -D "$PGDATA" -m fast -w stop
	echo "PostgreSQL init process complete; ready for start up."
fi

exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
