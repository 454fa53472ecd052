#!/usr/bin/env bash
# Stops what start-ceph-s3.sh DIR started (its pid files only) and removes DIR.
set -uo pipefail
DIR=${1:?usage: stop-ceph-s3.sh DIR}
for pidfile in "$DIR"/*.pid; do
  [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
done
for pidfile in "$DIR"/*.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
done
rm -rf "$DIR"
