#!/usr/bin/env bash
# The protocol floor, as reported in closing notes: postward-bench against its own
# always-DUNNO server (postward's runtime, no logging) and against a pass-through daemon
# (postward-policyd before its checks: the same runtime plus one decision log line per
# request, to /dev/null),
# at 1, 10 and 100 connections, RUNS runs of SECS each, interleaved so machine noise hits
# both alike. Prints medians and the ratio daemon/floor.
#
#   tests/bench/floor.sh [RUNS] [SECS]        (defaults 5 and 4)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-5} secs=${2:-4}
cargo build --release --workspace --bins >/dev/null 2>&1
bin=target/release
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
root=""; [[ $(id -u) == 0 ]] && root="allow_root = true"
printf '[server]\nlisten = ["unix:%s/daemon.sock"]\n%s\n' "$out" "$root" > "$out/daemon.toml"
$bin/postward-bench serve-trivial --listen "unix:$out/floor.sock" &
$bin/postward-policyd --config "$out/daemon.toml" 2>/dev/null &
sleep 1
for c in 1 10 100; do
    for i in $(seq "$runs"); do
        for s in floor daemon; do
            $bin/postward-bench policy --target "unix:$out/$s.sock" --workload trivial \
                --connections "$c" --duration "${secs}s" --warmup 1s --json-out "$out/$s-$c-$i.json" >/dev/null
        done
    done
done
python3 - "$out" "$runs" <<'PY'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
print(f"{'conns':>5} {'server':>6} {'req/s (median)':>15} {'p99 ms (median)':>16} {'errors':>7}  runs: req/s")
for c in (1, 10, 100):
    med = {}
    for s in ("floor", "daemon"):
        rs = [json.load(open(f"{out}/{s}-{c}-{i}.json")) for i in range(1, runs + 1)]
        rps = [r["requests_per_s"] for r in rs]
        p99 = [r["latency_ms"]["p99"] for r in rs]
        errs = sum(r["errors"] for r in rs)
        med[s] = statistics.median(rps)
        print(f"{c:>5} {s:>6} {med[s]:>15.0f} {statistics.median(p99):>16.3f} {errs:>7}  " + " ".join(f"{x:.0f}" for x in rps))
    print(f"{c:>5}  ratio daemon/floor req/s = {med['daemon'] / med['floor']:.2f}")
PY
