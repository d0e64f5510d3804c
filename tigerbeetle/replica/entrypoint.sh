#!/bin/sh
# The TigerBeetle replica's entrypoint (the container's command; POSIX sh, as in the official
# Alpine-based image).
#
#   entrypoint.sh          format the data file if it does not exist yet, then exec `tigerbeetle start`
#   entrypoint.sh health   exit 0 when something listens on the replica's TCP port (container health check)
#
# Configuration (environment, set by the task definition from the stage config):
#   TB_CLUSTER_ID     cluster id (decimal u128)              TB_REPLICA        this replica's index
#   TB_REPLICA_COUNT  replicas in the cluster                TB_ADDRESSES      every replica's IP:port, in replica order
#   TB_CACHE_GRID     grid cache size, e.g. 2048MiB          TB_DATA_DIR       data directory (default /var/lib/tigerbeetle)
#   TIGERBEETLE       the binary (default /tigerbeetle)      TB_VOLUME_MARKER  file the host writes on the mounted volume
#   TB_FORMAT_MISSING allow (bootstrapping a new cluster) or refuse (default): may a missing data file be formatted?
#
# Safety: the data file is formatted only when it is absent, never overwritten; formatting writes a
# temporary file and renames it, so a crash mid-format leaves nothing a restart would mistake for
# data. The marker check refuses to format onto the host's root disk when the replica's EBS volume
# is not mounted (a fresh data file there would be an empty replica that forgot its state). Outside
# a cluster's bootstrap, a missing data file is never formatted at all: a replica of a running
# cluster that lost its data must be recovered (docs/runbooks/ledger-restore.md), not reformatted.
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

data_file="$data_dir/${TB_CLUSTER_ID}_${TB_REPLICA}.tigerbeetle"
if [ -e "$data_file" ]; then
  echo "tigerbeetle-replica: data file $data_file exists; not formatting"
elif [ "${TB_FORMAT_MISSING:-refuse}" != allow ]; then
  fail "data file $data_file is missing and this cluster is past its bootstrap (TB_FORMAT_MISSING=${TB_FORMAT_MISSING:-refuse}): refusing to format a replica of a running cluster; recover it (docs/runbooks/ledger-restore.md)"
else
  partial="$data_file.formatting"
  rm -f "$partial"
  echo "tigerbeetle-replica: formatting $data_file (cluster $TB_CLUSTER_ID, replica $TB_REPLICA of $TB_REPLICA_COUNT)"
  "$tigerbeetle" format --cluster="$TB_CLUSTER_ID" --replica="$TB_REPLICA" --replica-count="$TB_REPLICA_COUNT" "$partial" ||
    fail "format failed; nothing was written to $data_file"
  mv "$partial" "$data_file"
  sync
fi

exec "$tigerbeetle" start --addresses="$TB_ADDRESSES" --cache-grid="$TB_CACHE_GRID" "$data_file"
