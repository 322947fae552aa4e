#!/usr/bin/env bash
# Cluster load run on one machine, over loopback: a real nats-server with
# JetStream, versitygw as the S3 bucket, two bridge replicas built from this
# tree sharing both, and `bridge simulate` against them twice:
#
#   1. baseline: the calls in turn on the two replicas, each call's captions
#      followed on the replica it is played into (BASELINE=single: every
#      call on replica A alone, captions on A);
#   2. cross-replica: the same calls, each call's captions followed on the
#      other replica, so every caption crosses NATS.
#
# Each run reports caption latency (p50/p99), CPU per call-minute of each
# replica, of nats-server and of all three, and checks every WAV in the
# bucket byte for byte. The script ends with the latency the cross-replica
# path adds (run 2 minus run 1).
#
#   docs/bench/cluster.sh [CALLS] [RAMP_SECONDS] [DURATION_SECONDS]
#   docs/bench/cluster.sh                 # 1000 calls, 30 s ramp, 90 s of audio
#   docs/bench/cluster.sh 100 20 30       # a small run
#
# Environment: BASELINE=local|single (default local); PORT_BASE (default
# 18100: nats-server on +0, versitygw on +1, replicas on +2 and +3);
# KEEP=1 keeps the work directory (logs, reports, data) instead of removing
# it. Every process started here is stopped on exit; every run is bounded by
# timeout.
set -euo pipefail
cd "$(dirname "$0")/../.."

calls=${1:-1000}
ramp=${2:-30}
duration=${3:-90}
baseline=${BASELINE:-local}
port_base=${PORT_BASE:-18100}
for n in "$calls" "$ramp" "$duration" "$port_base"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "usage: $0 [CALLS] [RAMP_SECONDS] [DURATION_SECONDS]" >&2; exit 2; }
done
[[ "$baseline" == local || "$baseline" == single ]] || { echo "BASELINE: local or single, got $baseline" >&2; exit 2; }

nats_port=$port_base
s3_port=$((port_base + 1))
addr_a=127.0.0.1:$((port_base + 2))
addr_b=127.0.0.1:$((port_base + 3))
bucket=calls
region=us-east-1
# A run: the ramp, the audio, the simulator's wait for the last calls to
# close (--timeout) and the check of every call and WAV.
run_limit=$((ramp + duration + 600))

work=$(mktemp -d /tmp/bridge-cluster.XXXXXX)
pids=()
cleanup() {
  local status=$?
  # Bridges first (they finish their uploads on SIGTERM), then the servers
  # they use.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "${pids[i]}" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  if [[ "${KEEP:-}" == 1 ]]; then
    echo "kept $work"
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_port waits (at most 30 s) until something listens on 127.0.0.1:$1.
wait_port() {
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1 after 30 s" >&2
  return 1
}

# port_free fails when something listens on 127.0.0.1:$1 already.
port_free() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    echo "127.0.0.1:$1 is in use: set PORT_BASE to a free range" >&2
    return 1
  fi
}
for p in "$nats_port" "$s3_port" "${addr_a#*:}" "${addr_b#*:}"; do port_free "$p"; done

# install_tool puts the module's binary $2 at version $3 into $(go env GOPATH)/bin
# unless that version is there already, and prints its path.
install_tool() {
  local pkg=$1 name=$2 version=$3 bin
  bin="$(go env GOPATH)/bin/$name"
  if ! go version -m "$bin" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+[^[:space:]]+[[:space:]]+${version}[[:space:]]"; then
    echo "installing $pkg@$version" >&2
    GOBIN="$(go env GOPATH)/bin" go install "$pkg@$version" >&2
  fi
  echo "$bin"
}

nats_version=$(go list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)
nats_server=$(install_tool github.com/nats-io/nats-server/v2 nats-server "$nats_version")
versitygw=$(install_tool github.com/versity/versitygw/cmd/versitygw versitygw v1.8.0)

echo "building the bridge"
go build -o "$work/bridge" ./cmd/bridge
ulimit -n 20000

# NATS with JetStream, its store in the work directory.
"$nats_server" -a 127.0.0.1 -p "$nats_port" -js -sd "$work/nats" >"$work/nats.log" 2>&1 &
nats_pid=$!
pids+=("$nats_pid")
wait_port "$nats_port"

# The bucket: versitygw over a directory, with one account.
export AWS_ACCESS_KEY_ID=bridge-bench AWS_SECRET_ACCESS_KEY=bridge-bench-secret AWS_REGION=$region
export AWS_SESSION_TOKEN= AWS_PROFILE= AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
mkdir -p "$work/s3"
ROOT_ACCESS_KEY=$AWS_ACCESS_KEY_ID ROOT_SECRET_KEY=$AWS_SECRET_ACCESS_KEY \
  "$versitygw" --port "127.0.0.1:$s3_port" posix "$work/s3" >"$work/versitygw.log" 2>&1 &
pids+=($!)
wait_port "$s3_port"
empty_sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 # of the empty body
curl -fsS --max-time 10 -X PUT --aws-sigv4 "aws:amz:$region:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
  -H "x-amz-content-sha256: $empty_sha256" "http://127.0.0.1:$s3_port/$bucket" >/dev/null

# Two replicas with the same API token, each with its own data directory
# (the spool of the bucket).
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
s3_flags=(--s3-bucket "$bucket" --s3-endpoint "http://127.0.0.1:$s3_port" --s3-path-style --s3-region "$region")
start_replica() { # node addr
  mkdir -p "$work/$1"
  "$work/bridge" --addr "$2" --data "$work/$1" --api-token "$token" --log-level warn --log-format json \
    --nats-url "nats://127.0.0.1:$nats_port" --node-id "$1" "${s3_flags[@]}" >"$work/$1.out" 2>"$work/$1.log" &
  pids+=($!)
  for _ in $(seq 300); do
    curl -fs --max-time 2 "http://$2/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "replica $1 on $2 not ready after 30 s; its log:" >&2
  tail -20 "$work/$1.log" >&2
  return 1
}
start_replica replica-a "$addr_a"
pid_a=${pids[-1]}
start_replica replica-b "$addr_b"
pid_b=${pids[-1]}

# simulate runs the load tool against the replicas and keeps its report.
simulate() { # name, then the simulator's own flags
  local name=$1
  shift
  echo
  echo "== $name: $calls calls, ramp ${ramp}s, ${duration}s of audio"
  echo "   bridge simulate --addr $addr_a --api-token \$token $* --pid $pid_a --pid $pid_b --pid nats-server=$nats_pid --calls $calls --ramp ${ramp}s --duration ${duration}s ${s3_flags[*]}"
  timeout "$run_limit" "$work/bridge" simulate --addr "$addr_a" --api-token "$token" "$@" \
    --pid "$pid_a" --pid "$pid_b" --pid "nats-server=$nats_pid" \
    --calls "$calls" --ramp "${ramp}s" --duration "${duration}s" "${s3_flags[@]}" | tee "$work/$name.txt"
}

# settle waits (at most 5 minutes) until both replicas have uploaded every
# call (bridge_s3_upload_backlog 0) and the machine is idle again (1-minute
# load average under 1), so that one run's tail does not weigh on the next.
settle() {
  local backlog load
  for _ in $(seq 300); do
    backlog=0
    for a in "$addr_a" "$addr_b"; do
      backlog=$((backlog + $(curl -fs --max-time 2 "http://$a/metrics" | awk '/^bridge_s3_upload_backlog / {print int($2)}')))
    done
    load=$(cut -d' ' -f1 /proc/loadavg)
    if ((backlog == 0)) && awk -v l="$load" 'BEGIN { exit !(l < 1) }'; then
      return 0
    fi
    sleep 1
  done
  echo "   not settled after 5 minutes (upload backlog $backlog, load $load); going on" >&2
}

status=0
settle
if [[ "$baseline" == single ]]; then
  simulate baseline --replicas "$addr_a" || status=1
else
  simulate baseline --replicas "$addr_a,$addr_b" || status=1
fi
settle
simulate cross-replica --replicas "$addr_a,$addr_b" --cross-replica || status=1

# latency prints the caption latency quantile $2 (p50, p99) of report $1 in ms.
latency() {
  awk -v q="$2" '/^  caption latency/ {
    for (i = 1; i < NF; i++) if ($i == q) { v = $(i + 1); u = $(i + 2); if (u == "s") v *= 1000; print v; exit }
  }' "$work/$1.txt"
}
echo
echo "== caption latency added by the cross-replica path (cross-replica minus baseline, $baseline)"
for q in p50 p99; do
  b=$(latency baseline "$q")
  c=$(latency cross-replica "$q")
  if [[ -n "$b" && -n "$c" ]]; then
    awk -v q="$q" -v b="$b" -v c="$c" 'BEGIN { printf "   %s  %.2f ms - %.2f ms = %+.2f ms\n", q, c, b, c - b }'
  fi
done
echo "   load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
