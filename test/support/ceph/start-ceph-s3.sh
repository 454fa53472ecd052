#!/usr/bin/env bash
# Starts a throwaway single-node Ceph with its S3 gateway (radosgw) in DIR, for tests:
# one monitor, one OSD on memstore (RAM, nothing on disk to format), no manager, pool size 1,
# radosgw's beast frontend on 127.0.0.1:PORT, and one S3 user. Prints, once S3 answers:
#   S3_ENDPOINT=http://127.0.0.1:PORT  S3_ACCESS_KEY_ID=...  S3_SECRET_ACCESS_KEY=...
# Stop it with stop-ceph-s3.sh DIR (kills the pids written to DIR/*.pid and removes DIR).
# Needs root only for what Ceph needs (it runs as the calling user; no systemd, no /etc/ceph).
set -euo pipefail
DIR=${1:?usage: start-ceph-s3.sh DIR PORT}
PORT=${2:?usage: start-ceph-s3.sh DIR PORT}
MON_PORT=${CEPH_MON_PORT:-$((PORT + 1))}
ACCESS_KEY=tessera-test-access
SECRET_KEY=tessera-test-secret-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
for bin in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool; do
  command -v "$bin" >/dev/null || { echo "missing $bin: apt-get install ceph-mon ceph-osd radosgw" >&2; exit 3; }
done
mkdir -p "$DIR"/{mon,osd,rgw,log,run}
DIR=$(cd "$DIR" && pwd)
FSID=$(cat /proc/sys/kernel/random/uuid)
CONF="$DIR/ceph.conf"
cat >"$CONF" <<CONF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
mon initial members = a
public network = 127.0.0.0/8
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $DIR/\$name.keyring
log file = $DIR/log/\$name.log
admin socket = $DIR/run/\$name.asok
pid file = $DIR/\$name.pid
run dir = $DIR/run
crash dir = $DIR/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
ms bind ipv6 = false
[mon]
mon data = $DIR/mon
keyring = $DIR/mon/keyring
mon cluster log file = $DIR/log/cluster.log
[osd]
osd data = $DIR/osd
keyring = $DIR/osd/keyring
osd objectstore = memstore
memstore device bytes = 1073741824
osd max object name len = 460
osd max object namespace len = 64
[client]
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw data = $DIR/rgw
rgw dns name = 127.0.0.1
rgw enable usage log = false
CONF
# Every client call gives up after 60 s rather than wait forever on a monitor that never came up.
C=(--conf "$CONF")
CLI=(--conf "$CONF" --connect-timeout 60)
ceph-authtool --create-keyring "$DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$DIR/client.admin.keyring" --gen-key -n client.admin \
  --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool "$DIR/mon.keyring" --import-keyring "$DIR/client.admin.keyring" >/dev/null
monmaptool --create --addv a "[v2:127.0.0.1:$MON_PORT]" --fsid "$FSID" "$DIR/monmap" >/dev/null
ceph-mon "${C[@]}" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring"
ceph-mon "${C[@]}" -i a
# One `ceph` call (each is a Python start, ~1 s): the OSD's id and its key together.
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
OSD_SECRET=$(ceph-authtool --gen-print-key)
printf '{"cephx_secret": "%s"}' "$OSD_SECRET" >"$DIR/osd/secrets.json"
OSD_ID=$(ceph "${CLI[@]}" osd new "$OSD_UUID" -i "$DIR/osd/secrets.json")
ceph-authtool --create-keyring "$DIR/osd/keyring" --name "osd.$OSD_ID" --add-key "$OSD_SECRET" >/dev/null
ceph-osd "${C[@]}" -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID"
ceph-osd "${C[@]}" -i "$OSD_ID"
# The gateway runs as client.admin (no key of its own to create), with its own pid file and
# admin socket so radosgw-admin's do not clash with them.
radosgw "${C[@]}" -n client.admin --pid-file "$DIR/rgw.pid" --admin-socket "$DIR/run/rgw.asok"
radosgw-admin "${C[@]}" user create --uid=tessera-test --display-name="tessera test" \
  --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null
for _ in $(seq 1 600); do
  if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then
    echo "S3_ENDPOINT=http://127.0.0.1:$PORT"
    echo "S3_ACCESS_KEY_ID=$ACCESS_KEY"
    echo "S3_SECRET_ACCESS_KEY=$SECRET_KEY"
    exit 0
  fi
  sleep 0.1
done
echo "radosgw did not answer on 127.0.0.1:$PORT within 60 s; see $DIR/log" >&2
exit 4
