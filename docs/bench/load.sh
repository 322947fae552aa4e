#!/usr/bin/env bash
# Single-process load runs on one machine, over loopback: for each bridge
# binary given, start it on a fresh data directory (mock STT, recording on),
# play CALLS two-track Twilio calls into it with `bridge simulate` (one
# caption subscriber per call, every WAV and call record checked), stop it,
# and print one summary line per run. With several binaries the runs are
# interleaved (a b a b …) so that a slow minute of the machine falls on
# both.
#
#   docs/bench/load.sh [-b NAME=BINARY]... [-r REPEAT] CALLS RAMP_SECONDS DURATION_SECONDS [-- BRIDGE FLAGS...]
#   docs/bench/load.sh 500 5 60                              # this tree's build, once
#   docs/bench/load.sh -b old=/tmp/bridge-old -b new=/tmp/bridge -r 2 500 5 40
#   docs/bench/load.sh -b batch0=/tmp/bridge -b batch40=/tmp/bridge 300 3 40 -- --media-batch 0
#
# A RAMP of CALLS/100 seconds is 100 new calls a second. Flags after --
# go to every bridge; NAME=BINARY:FLAGS (FLAGS comma-separated) gives one
# binary flags of its own. Before each run the script waits (at most 90 s)
# for the 1-minute load average to fall under 1, so that one run's tail
# does not weigh on the next (SETTLE: seconds, default 90). Reports stay in the work directory
# (WORK, default a new /tmp/bridge-load.*). PORT (default 18090).
set -euo pipefail
cd "$(dirname "$0")/../.."

bins=() repeat=1
while getopts "b:r:" o; do
  case $o in
    b) bins+=("$OPTARG") ;;
    r) repeat=$OPTARG ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ $# -ge 3 ]] || { echo "usage: $0 [-b NAME=BINARY]... [-r REPEAT] CALLS RAMP_SECONDS DURATION_SECONDS [-- FLAGS...]" >&2; exit 2; }
calls=$1 ramp=$2 duration=$3
shift 3
[[ ${1:-} == -- ]] && shift
common=("$@")
for n in "$calls" "$ramp" "$duration" "$repeat"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "$0: $n is not a whole number" >&2; exit 2; }
done
work=${WORK:-$(mktemp -d /tmp/bridge-load.XXXXXX)}
mkdir -p "$work"
port=${PORT:-18090}
addr=127.0.0.1:$port
if [[ ${#bins[@]} -eq 0 ]]; then
  go build -o "$work/bridge" ./cmd/bridge
  bins=("this=$work/bridge")
fi
ulimit -n 65536 2>/dev/null || true

pid=
cleanup() {
  [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  return 0
}
trap cleanup EXIT

settle() {
  for _ in $(seq "${SETTLE:-90}"); do
    awk '{exit !($1 < 1.0)}' /proc/loadavg && return
    sleep 1
  done
}

# field LABEL REPORT: the text after a report line's label.
field() { sed -n "s/^  $1 *//p" "$2" | head -1; }
pct() { sed -n "s/.*$1 \([0-9.]* [mµ]*s\).*/\1/p" <<<"$2" | tr -d ' '; }

printf '%-10s %5s %8s %8s %8s %9s %9s %9s %9s %9s %s\n' run calls cpu/cm KB/call reads/fr connect99 late99 capt99 stop99 wavs ok
for ((r = 1; r <= repeat; r++)); do
  for b in "${bins[@]}"; do
    name=${b%%=*} spec=${b#*=}
    bin=${spec%%:*} own=()
    [[ $spec == *:* ]] && IFS=, read -r -a own <<<"${spec#*:}"
    data=$(mktemp -d "$work/data.XXXXXX")
    settle
    "$bin" serve --addr "$addr" --data "$data" --log-level warn --log-format json "${common[@]}" "${own[@]}" >"$work/$name-$r.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
      curl -fsS "http://$addr/healthz" >/dev/null 2>&1 && break
      sleep 0.1
    done
    out=$work/$name-$r.report
    timeout $((ramp + duration + 600)) "$bin" simulate --addr "$addr" --data "$data" --pid "$pid" \
      --calls "$calls" --ramp "${ramp}s" --duration "${duration}s" >"$out" 2>&1 || true
    kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    pid=
    rm -rf "$data"
    steady=$(grep -A3 '^  bridge pid' "$out" | sed -n 's/.*steady.* = \([0-9.]*\) CPU-s per call-minute.*/\1/p' | head -1)
    kb=$(sed -n 's/.*peak [0-9.]* MB: \([0-9.]*\) KB per call.*/\1/p' "$out" | head -1)
    reads=$(sed -n 's/.*steady syscalls: \([0-9.]*\) reads.*/\1/p' "$out" | head -1)
    wavs=$(field recordings "$out" | awk '{print $1}')
    calls_ok=$(field calls "$out")
    printf '%-10s %5s %8s %8s %8s %9s %9s %9s %9s %9s %s\n' "$name" "$calls" "${steady:--}" "${kb:--}" "${reads:--}" \
      "$(pct p99 "$(field connect "$out")")" "$(pct p99 "$(field 'pacing lateness' "$out")")" \
      "$(pct p99 "$(field 'caption latency' "$out")")" "$(pct p99 "$(field stop-to-close "$out")")" "${wavs:--}" "$calls_ok"
  done
done
echo "reports: $work"
