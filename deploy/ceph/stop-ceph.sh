#!/bin/bash
# Stops the daemons started by start-ceph.sh (only the pids it recorded).
BASE=${BASE:-/tmp/ceph-s3}
for d in rgw osd mon; do
  f="$BASE/pids.$d"
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null && echo "killed $d (pid $pid) after 10 s"
    echo "stopped $d (pid $pid)"
  fi
  rm -f "$f"
done
