#!/bin/sh
# The TigerBeetle replica's entrypoint (the container's command; POSIX sh, as in the official
# Alpine-based image).
#
#   entrypoint.sh          create the data file if it does not exist (format or recover, below), then exec `tigerbeetle start`
#   entrypoint.sh health   exit 0 when something listens on the replica's TCP port (container health check)
#
# Configuration (environment, set by the task definition from the stage config):
#   TB_CLUSTER_ID     cluster id (decimal u128)              TB_REPLICA        this replica's index
#   TB_REPLICA_COUNT  replicas in the cluster                TB_ADDRESSES      every replica's IP:port, in replica order
#   TB_CACHE_GRID     grid cache size, e.g. 2048MiB          TB_DATA_DIR       data directory (default /var/lib/tigerbeetle)
#   TIGERBEETLE       the binary (default /tigerbeetle)      TB_VOLUME_MARKER  file the host writes on the mounted volume
#
# Files on the replica's volume (the data directory):
#   .ledger-volume       written by the host (tigerbeetle/host/setup.sh): this volume is mounted here
#   .cluster-formation   written by the host at boot from the cluster marker (an SSM parameter the
#                        ledger stack creates as `forming`; the last replica's host sets it to
#                        `formed` once every replica is up): `forming` or `formed` (never back)
#   .replica-formatted   written here after this replica's data file was formatted
#
# What happens when the data file is missing (DATA-01):
#   formation  | formatted before | action
#   forming    | no               | format (a new cluster's first start)
#   forming    | yes              | recover (this replica existed; formatting would forget its promises)
#   formed     | any              | recover (TigerBeetle's `recover`, never `format`)
#   otherwise  | any              | refuse: the host recorded no formation state
# `recover` needs a cluster of 3 or more replicas that can view-change (TigerBeetle refuses it for 1
# or 2); otherwise the replica refuses with a pointer to the restore runbook.
#
# Safety: the data file is created under a temporary name and renamed, so a crash mid-format or
# mid-recover leaves nothing a restart would mistake for data. The volume marker check refuses to
# create a data file on the host's root disk when the replica's EBS volume is not mounted.
set -eu

fail() {
  echo "tigerbeetle-replica: $*" >&2
  exit 1
}

require() {
  eval "value=\${$1:-}"
  [ -n "$value" ] || fail "$1 is not set"
}

is_unsigned() {
  case "$1" in
    '' | *[!0-9]*) return 1 ;;
    *) return 0 ;;
  esac
}

data_dir="${TB_DATA_DIR:-/var/lib/tigerbeetle}"
tigerbeetle="${TIGERBEETLE:-/tigerbeetle}"
marker="${TB_VOLUME_MARKER:-$data_dir/.ledger-volume}"

if [ "${1:-}" = "health" ]; then
  require TB_ADDRESSES
  require TB_REPLICA
  own=$(printf '%s' "$TB_ADDRESSES" | cut -d, -f$((TB_REPLICA + 1)))
  port_hex=$(printf '%04X' "${own##*:}")
  # A socket in state 0A (LISTEN) on the replica's port, in this (host) network namespace.
  grep -qi ":$port_hex [0-9A-F]*:[0-9A-F]* 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null || fail "nothing listens on port ${own##*:}"
  exit 0
fi

for name in TB_CLUSTER_ID TB_REPLICA TB_REPLICA_COUNT TB_ADDRESSES TB_CACHE_GRID; do require "$name"; done
is_unsigned "$TB_CLUSTER_ID" || fail "TB_CLUSTER_ID must be a decimal number, got '$TB_CLUSTER_ID'"
is_unsigned "$TB_REPLICA" || fail "TB_REPLICA must be a number, got '$TB_REPLICA'"
is_unsigned "$TB_REPLICA_COUNT" || fail "TB_REPLICA_COUNT must be a number, got '$TB_REPLICA_COUNT'"
[ "$TB_REPLICA" -lt "$TB_REPLICA_COUNT" ] || fail "TB_REPLICA $TB_REPLICA is not below TB_REPLICA_COUNT $TB_REPLICA_COUNT"
address_count=$(printf '%s' "$TB_ADDRESSES" | awk -F, '{ print NF }')
[ "$address_count" -eq "$TB_REPLICA_COUNT" ] || fail "TB_ADDRESSES lists $address_count addresses for $TB_REPLICA_COUNT replicas"
[ -d "$data_dir" ] || fail "data directory $data_dir does not exist"
[ -f "$marker" ] || fail "$marker is missing: the replica's volume is not mounted at $data_dir; refusing to start"

runbook=docs/runbooks/ledger-restore.md
formation_file="$data_dir/.cluster-formation"
formatted_flag="$data_dir/.replica-formatted"
data_file="$data_dir/${TB_CLUSTER_ID}_${TB_REPLICA}.tigerbeetle"
# TigerBeetle refuses `recover` for clusters of one or two replicas (src/tigerbeetle/cli.zig).
recover_replica_count_min=3

# create_data_file STEP SUFFIX ARGS...: runs `tigerbeetle STEP ARGS... <data file>.SUFFIX`, then renames it.
create_data_file() {
  step="$1" partial="$data_file.$2"
  shift 2
  rm -f "$partial"
  "$tigerbeetle" "$step" "$@" "$partial" || {
    rm -f "$partial"
    fail "$step failed; nothing was written to $data_file (see $runbook)"
  }
  mv "$partial" "$data_file"
  sync
}

format_new_replica() {
  echo "tigerbeetle-replica: formatting $data_file (cluster $TB_CLUSTER_ID, replica $TB_REPLICA of $TB_REPLICA_COUNT; the cluster has never been formed)"
  create_data_file format formatting --cluster="$TB_CLUSTER_ID" --replica="$TB_REPLICA" --replica-count="$TB_REPLICA_COUNT"
  echo "formatted $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$formatted_flag"
  sync
}

recover_lost_replica() {
  [ "$TB_REPLICA_COUNT" -ge "$recover_replica_count_min" ] ||
    fail "data file $data_file is missing and a $TB_REPLICA_COUNT-replica cluster cannot recover a replica (TigerBeetle's recover needs $recover_replica_count_min or more); refusing to format a replica of a formed cluster; restore it ($runbook)"
  echo "tigerbeetle-replica: data file $data_file is missing; recovering replica $TB_REPLICA from the cluster (tigerbeetle recover, then state sync)"
  create_data_file recover recovering --cluster="$TB_CLUSTER_ID" --addresses="$TB_ADDRESSES" --replica="$TB_REPLICA" --replica-count="$TB_REPLICA_COUNT"
}

formation=$(cat "$formation_file" 2>/dev/null || true)
if [ -e "$data_file" ]; then
  echo "tigerbeetle-replica: data file $data_file exists; not formatting"
  # A data file made before the flag existed, or a crash between rename and flag: record it now.
  [ -f "$formatted_flag" ] || echo "present $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$formatted_flag"
elif [ "$formation" = formed ] || { [ "$formation" = forming ] && [ -f "$formatted_flag" ]; }; then
  recover_lost_replica
elif [ "$formation" = forming ]; then
  format_new_replica
else
  fail "data file $data_file is missing and the cluster formation recorded by the host is '${formation:-absent}' ($formation_file): refusing to format or recover; see $runbook"
fi

exec "$tigerbeetle" start --addresses="$TB_ADDRESSES" --cache-grid="$TB_CACHE_GRID" "$data_file"
