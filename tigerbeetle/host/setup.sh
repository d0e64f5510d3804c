#!/bin/bash
# Prepares a ledger host for its replica, at every boot of a new instance (run from the launch
# template's user data, before the ECS agent starts). A replaced host comes back as the same replica
# without a person: it re-attaches the replica's fixed-address ENI and its EBS volume.
#
#   setup.sh REGION ECS_CLUSTER REPLICA VOLUME_ID ENI_ID FIXED_ADDRESS SECCOMP_PROFILE FORMATION_PARAMETER
#
# 1. Docker's seccomp profile: the default set plus io_uring (docs/runbooks/ledger-upgrade.md, "io_uring").
# 2. Containers (uid != 0) cannot reach the instance metadata service: with host networking they
#    would otherwise obtain the host role's credentials.
# 3. Attach the ENI (device 1) and the volume (/dev/sdf), waiting while a terminated predecessor
#    still holds them.
# 4. Format the volume only if it has no filesystem; mount it; mark it as this replica's volume.
#    Record the cluster's formation state (the SSM parameter FORMATION_PARAMETER: `forming` until
#    every replica of a new cluster is up, then `formed`) on the volume, where the replica's
#    entrypoint decides between format, recover and refuse (tigerbeetle/replica/entrypoint.sh).
#    `formed` is never downgraded on a volume.
# 5. Register with the ECS cluster with the `replica` attribute that places the replica's task here.
# Any failure powers the host off after a grace period, so the Auto Scaling group replaces it; the
# user data that runs this script also signals the failure to CloudFormation at once.
set -euo pipefail

readonly region="$1" ecs_cluster="$2" replica="$3" volume_id="$4" eni_id="$5" fixed_address="$6" seccomp_profile="$7" formation_parameter="$8"
readonly data_dir=/var/lib/tigerbeetle
readonly replica_uid=1000
readonly attach_seconds_max=900
readonly device_seconds_max=120
readonly failure_grace_minutes=10
readonly log_file="${LEDGER_HOST_SETUP_LOG:-/var/log/ledger-host-setup.log}"

log() { echo "ledger-host-setup: $*" | tee -a "$log_file" >&2; }
on_failure() {
  log "FAILED at line $1; powering off in ${failure_grace_minutes} minutes so that the Auto Scaling group replaces this host"
  shutdown -h "+${failure_grace_minutes}"
}
trap 'on_failure $LINENO' ERR

imds() {
  local token
  token=$(curl -sf -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
  curl -sf -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}

configure_docker() {
  install -D -m 0644 "$seccomp_profile" /etc/docker/seccomp-io-uring.json
  python3 - <<'PYTHON'
import json, os
path = '/etc/docker/daemon.json'
config = json.load(open(path)) if os.path.exists(path) else {}
config['seccomp-profile'] = '/etc/docker/seccomp-io-uring.json'
config['no-new-privileges'] = True
json.dump(config, open(path, 'w'), indent=2)
PYTHON
  if systemctl is-active --quiet docker; then systemctl restart docker; fi
}

# The rule is applied now and by a unit at every later boot (user data runs only on the first one),
# before Docker starts any container.
block_metadata_for_containers() {
  local rule='OUTPUT -d 169.254.169.254/32 -m owner ! --uid-owner 0 -j REJECT'
  cat > /etc/systemd/system/ledger-block-metadata.service <<UNIT
[Unit]
Description=Keep containers (non-root) away from the instance metadata service
Before=docker.service ecs.service
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'iptables -C $rule 2>/dev/null || iptables -I $rule'
RemainAfterExit=yes
[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable ledger-block-metadata.service
  iptables -C $rule 2>/dev/null || iptables -I $rule
}

# attach KIND ID: waits until the resource is available (or already ours), then attaches it.
attach() {
  local kind="$1" id="$2" deadline=$((SECONDS + attach_seconds_max)) state owner
  while :; do
    if [ "$kind" = volume ]; then
      read -r state owner < <(aws ec2 describe-volumes --region "$region" --volume-ids "$id" \
        --query 'Volumes[0].[State, Attachments[0].InstanceId]' --output text)
    else
      read -r state owner < <(aws ec2 describe-network-interfaces --region "$region" --network-interface-ids "$id" \
        --query 'NetworkInterfaces[0].[Status, Attachment.InstanceId]' --output text)
    fi
    if [ "$owner" = "$instance_id" ]; then log "$kind $id is attached here"; return 0; fi
    if [ "$state" = available ]; then
      if [ "$kind" = volume ]; then
        aws ec2 attach-volume --region "$region" --volume-id "$id" --instance-id "$instance_id" --device /dev/sdf >/dev/null || true
      else
        aws ec2 attach-network-interface --region "$region" --network-interface-id "$id" --instance-id "$instance_id" --device-index 1 >/dev/null || true
      fi
    else
      log "$kind $id is $state (attached to ${owner:-nothing}); waiting"
    fi
    [ "$SECONDS" -lt "$deadline" ] || { log "$kind $id not attached after ${attach_seconds_max}s"; return 1; }
    sleep 10
  done
}

wait_for() {
  local what="$1" deadline=$((SECONDS + device_seconds_max))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || { log "timed out waiting for $what"; return 1; }
    sleep 2
  done
}

mount_volume() {
  local device="/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${volume_id/-/}"
  wait_for "device of $volume_id" test -b "$device"
  if ! blkid "$device" >/dev/null 2>&1; then
    log "volume $volume_id has no filesystem: formatting it (first boot of replica $replica)"
    mkfs.xfs -L "tigerbeetle-$replica" "$device"
  fi
  mkdir -p "$data_dir"
  mountpoint -q "$data_dir" || mount -o noatime "$device" "$data_dir"
  grep -q " $data_dir " /etc/fstab || echo "$device $data_dir xfs noatime,nofail 0 2" >> /etc/fstab
  # The marker names the replica whose data the volume holds (a restored snapshot keeps it), so a
  # volume of another replica is refused instead of joining the cluster under the wrong index.
  local marker="$data_dir/.ledger-volume" expected="replica $replica"
  if [ -f "$marker" ] && [ "$(cat "$marker")" != "$expected" ]; then
    log "$marker says '$(cat "$marker")', expected '$expected'; refusing to use volume $volume_id"
    return 1
  fi
  echo "$expected" > "$marker"
  chown "$replica_uid:$replica_uid" "$data_dir" "$marker"
}

# The cluster marker is read at every boot; the replica reads the copy on its volume at every start.
# A volume that has seen `formed` keeps it, whatever the parameter says later (a recreated
# parameter would say `forming` again): a replica of a formed cluster is never formatted.
record_cluster_formation() {
  local file="$data_dir/.cluster-formation" formation
  formation=$(aws ssm get-parameter --region "$region" --name "$formation_parameter" --query Parameter.Value --output text)
  case "$formation" in
    forming | formed) ;;
    *) log "cluster marker $formation_parameter is '$formation', expected forming or formed"; return 1 ;;
  esac
  if [ -f "$file" ] && [ "$(cat "$file")" = formed ] && [ "$formation" != formed ]; then
    log "cluster marker $formation_parameter says '$formation' but this volume has seen 'formed'; keeping 'formed'"
    return 0
  fi
  echo "$formation" > "$file"
  chmod 0644 "$file"
  log "cluster formation: $formation"
}

register_with_ecs() {
  cat > /etc/ecs/ecs.config <<CONFIG
ECS_CLUSTER=$ecs_cluster
ECS_INSTANCE_ATTRIBUTES={"replica":"$replica"}
ECS_ENABLE_TASK_IAM_ROLE=true
ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true
ECS_DISABLE_PRIVILEGED=true
ECS_SELINUX_CAPABLE=false
ECS_CONTAINER_STOP_TIMEOUT=60s
CONFIG
  systemctl enable --now --no-block ecs
}

instance_id=$(imds instance-id)
log "instance $instance_id becomes replica $replica (volume $volume_id, ENI $eni_id, address $fixed_address)"
configure_docker
block_metadata_for_containers
command -v aws >/dev/null || dnf install -y -q awscli-2
attach network-interface "$eni_id"
attach volume "$volume_id"
mount_volume
record_cluster_formation
wait_for "address $fixed_address on an interface" sh -c "ip -4 -o addr show | grep -q ' inet $fixed_address/'"
register_with_ecs
log "ready"
