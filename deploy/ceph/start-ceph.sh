#!/bin/bash
# Single-node Ceph RGW (S3): 1 mon + 1 OSD + radosgw, no mgr, auth none, mon and OSD on loopback.
# The test harness (test/helpers/ceph.ts) runs it with OBJECTSTORE=memstore and free ports;
# ~2 s from nothing to a working S3 endpoint on 2 cores (paxos tuned below). docker-compose's
# S3 containers (deploy/ceph/Dockerfile) run it with bluestore on a volume, RESET=0, RGW_BIND=0.0.0.0,
# S3_BUCKETS and FOREGROUND=1.
# Needs: apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw curl   (Debian 12: Ceph 16.2.x)
# Env: BASE (state dir), OBJECTSTORE=bluestore|memstore, RGW_PORT=7480, MON_PORT=3300,
#      RGW_BIND=127.0.0.1 (the S3 endpoint's address; the mon and OSD stay on loopback),
#      RESET=1 (wipe + mkfs; RESET=0 restarts daemons on existing BASE, data kept with bluestore),
#      S3_ACCESS_KEY/S3_SECRET_KEY (user created on first start), S3_BUCKETS (space-separated,
#      made sure of for that user at every start), FOREGROUND=1 (stay up until a daemon exits, then
#      stop the others and fail: a container's entrypoint).
# Stop: kill the pids in $BASE/pids.{rgw,osd,mon}  (see stop-ceph.sh)
set -euo pipefail
BASE=${BASE:-/tmp/ceph-s3}
OBJECTSTORE=${OBJECTSTORE:-bluestore}
RGW_PORT=${RGW_PORT:-7480}
RGW_BIND=${RGW_BIND:-127.0.0.1}
MON_PORT=${MON_PORT:-3300}
RESET=${RESET:-1}
AK=${S3_ACCESS_KEY:-testkey}
SK=${S3_SECRET_KEY:-testsecret}
CONF=$BASE/ceph.conf
t0=$(date +%s%N)
stamp() { echo "[$(( ($(date +%s%N) - t0) / 1000000 )) ms] $*"; }
wait_for() { # tries, cmd...
  local n=$1; shift
  for _ in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  return 1
}

if [ "$RESET" = 1 ] || [ ! -f "$CONF" ]; then
  FRESH=1
  rm -rf "$BASE"; mkdir -p "$BASE"/{mon/a,osd/0,run,log,rgw}
  FSID=$(cat /proc/sys/kernel/random/uuid)
  cat > "$CONF" <<CONF
[global]
fsid = $FSID
mon_host = v2:127.0.0.1:$MON_PORT
public_network = 127.0.0.0/8
ms_bind_msgr1 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
mon_data_avail_warn = 2
mon_data_avail_crit = 1
# Commit mon map changes at once instead of batching them for a second: radosgw creates its
# pools one after another on first start, which otherwise takes ~9 s.
paxos_propose_interval = 0.01
paxos_min_wait = 0.001
osd_crush_chooseleaf_type = 0
run_dir = $BASE/run
admin_socket = $BASE/run/\$name.asok
pid_file = $BASE/run/\$name.pid
log_file = $BASE/log/\$name.log
mon_data = $BASE/mon/\$id
osd_data = $BASE/osd/\$id
keyring = $BASE/keyring
osd_objectstore = $OBJECTSTORE
memstore_device_bytes = 4294967296
bluestore_block_path = $BASE/osd/\$id/block.file
bluestore_block_create = true
bluestore_block_size = 10737418240
bluestore_fsck_on_mount = false
bluestore_cache_size = 268435456
osd_memory_target = 1073741824
osd_op_num_shards = 2
osd_op_num_threads_per_shard = 1
[client.rgw.a]
# radosgw's built-in defaults are auth_client_required=cephx + ms_mon_client_mode=secure;
# with auth none the mon connection must use crc mode or rgw hangs in AUTH_CONNECTING (-13).
ms_mon_client_mode = crc
rgw_frontends = beast endpoint=$RGW_BIND:$RGW_PORT
rgw_data = $BASE/rgw
rgw_thread_pool_size = 64
CONF
  ceph-authtool --create-keyring "$BASE/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$BASE/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$BASE/monmap" --keyring "$BASE/keyring"
else
  FRESH=0
fi

ceph-mon -c "$CONF" -i a -f >> "$BASE/log/mon.a.stdout" 2>&1 & echo $! > "$BASE/pids.mon"
wait_for 60 ceph -c "$CONF" --connect-timeout 2 mon stat || { echo "mon did not start"; exit 1; }
stamp "mon up"
if [ "$FRESH" = 1 ]; then
  OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
  OSD_ID=$(ceph -c "$CONF" osd new "$OSD_UUID")
  ceph-osd -c "$CONF" -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" > "$BASE/log/osd-mkfs.log" 2>&1
  stamp "osd.$OSD_ID mkfs ($OBJECTSTORE)"
fi
ceph-osd -c "$CONF" -i 0 -f >> "$BASE/log/osd.0.stdout" 2>&1 & echo $! > "$BASE/pids.osd"
wait_for 120 sh -c "ceph -c '$CONF' osd stat | grep -q '1 up'" || { echo "osd did not come up"; exit 1; }
stamp "osd up"
radosgw -c "$CONF" -n client.rgw.a -f >> "$BASE/log/rgw.stdout" 2>&1 & echo $! > "$BASE/pids.rgw"
wait_for 240 curl -sf -o /dev/null "http://127.0.0.1:$RGW_PORT/" || { echo "rgw did not come up; see $BASE/log/client.rgw.a.log"; exit 1; }
stamp "rgw listening on http://127.0.0.1:$RGW_PORT"
if [ "$FRESH" = 1 ]; then
  radosgw-admin -c "$CONF" user create --uid=test --display-name=test --access-key="$AK" --secret="$SK" > "$BASE/log/user-create.json"
  stamp "S3 user created: access key $AK"
fi
# Idempotent (RGW answers 200 for a bucket the user owns already), so a bucket added later appears
# on the next start. The header is the SHA-256 of the empty body, which SigV4 signs for S3.
for b in ${S3_BUCKETS:-}; do
  curl -sf -o /dev/null -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" \
    -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
    "http://127.0.0.1:$RGW_PORT/$b" || { echo "could not create bucket $b"; exit 1; }
  stamp "bucket $b"
done
if [ "${FOREGROUND:-0}" = 1 ]; then
  pids="$(cat "$BASE/pids.mon") $(cat "$BASE/pids.osd") $(cat "$BASE/pids.rgw")"
  trap 'kill $pids 2>/dev/null; wait; exit 0' TERM INT
  wait -n
  echo "a Ceph daemon exited; stopping the others (logs in $BASE/log)"
  kill $pids 2>/dev/null
  wait
  exit 1
fi
