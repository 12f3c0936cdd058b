#!/bin/sh
# pg-test-server.sh - a throwaway PostgreSQL 15 cluster for kgstore's tests.
#
#   pg-test-server.sh start DIR [--durable]   initdb DIR, start it, print the URI
#   pg-test-server.sh stop DIR                stop the server and delete DIR
#   pg-test-server.sh halt DIR                stop the server at once (keep DIR)
#   pg-test-server.sh resume DIR              start a halted server again
#   pg-test-server.sh uri DIR                 print the URI of the server in DIR
#   pg-test-server.sh start-standby DIR PRIMARY_DIR
#                                             a streaming standby of PRIMARY_DIR
#                                             (pg_basebackup -R), print its URI
#
# The server listens only on a unix socket inside DIR (listen_addresses=''),
# so it never meets a server that happens to be running, and runs with
# fsync=off for speed unless --durable. As root, initdb and pg_ctl run as the
# `postgres` user and DIR is owned by it. Authentication is trust: the
# socket lives in a directory only this machine's users can reach.
set -eu

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
DB=kgtest

die() { echo "pg-test-server.sh: $*" >&2; exit 1; }

# Runs a server tool as the cluster's owner.
as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

abspath() { (mkdir -p "$1" && cd "$1" && pwd); }

uri_of() {
	# user postgres: the bootstrap superuser initdb makes below.
	echo "postgresql:///$DB?host=$1&user=postgres"
}

start_cluster() {
	dir=$1
	as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
		{ tail -n 30 "$dir/server.log" >&2; die "the server in $dir did not start (log above)"; }
}

cmd=${1:-}
[ $# -ge 2 ] || die "usage: $0 start|stop|halt|resume|uri DIR [--durable] | start-standby DIR PRIMARY_DIR"
dir=$(abspath "$2")
[ ${#dir} -lt 80 ] || die "DIR '$dir' is too long for a unix socket path; use a shorter one"

case $cmd in
start)
	durable=no
	[ "${3:-}" = "--durable" ] && durable=yes
	if [ -f "$dir/data/postmaster.pid" ]; then
		# A server left by an interrupted run: stop it, start afresh.
		as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir/data" "$dir/server.log"
	mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && chown postgres "$dir"
	as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null ||
		die "initdb failed in $dir"
	{
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$dir'"
		echo "max_connections = 200"
		echo "shared_buffers = 128MB"
		echo "max_wal_size = 2GB"
		if [ $durable = no ]; then
			echo "fsync = off"
			echo "full_page_writes = off"
		fi
		# For start-standby: replication over the same socket.
		echo "wal_level = replica"
		echo "max_wal_senders = 4"
		echo "hot_standby = on"
	} >>"$dir/data/postgresql.conf"
	echo "local replication all trust" >>"$dir/data/pg_hba.conf"
	start_cluster "$dir"
	as_owner "$PGBIN/createdb" -h "$dir" -U postgres "$DB" || die "createdb $DB failed"
	uri_of "$dir"
	;;
start-standby)
	[ $# -ge 3 ] || die "usage: $0 start-standby DIR PRIMARY_DIR"
	primary=$(abspath "$3")
	rm -rf "$dir/data" "$dir/server.log"
	mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && chown postgres "$dir"
	as_owner "$PGBIN/pg_basebackup" -h "$primary" -U postgres -D "$dir/data" -R -X stream -c fast >/dev/null ||
		die "pg_basebackup from $primary failed"
	sed -i "s|^unix_socket_directories = .*|unix_socket_directories = '$dir'|" "$dir/data/postgresql.conf"
	start_cluster "$dir"
	uri_of "$dir"
	;;
stop)
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 ||
			as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
	;;
halt)
	as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
	;;
resume)
	start_cluster "$dir"
	uri_of "$dir"
	;;
uri)
	uri_of "$dir"
	;;
*)
	die "unknown command '$cmd' (start, stop, halt, resume, uri, start-standby)"
	;;
esac
