#!/usr/bin/env bash
# Soak run (issue 8): all three daemons (release build) under mixed load for MINUTES minutes,
# resident memory sampled every minute, every answer counted.
#
#   policyd  SPF over the 16 fixture domains of tests/bench/spf.zone (postward-bench serve-dns
#            on 127.0.0.1:15353), default caches
#   greyd    embedded SQLite, postward-bench greylist workload (20% never-seen triplets)
#   authd    1,000-user passwd-file, PLAIN, 10% wrong passwords, cache on
#
# Each load runs as back-to-back one-minute postward-bench runs (2 connections each), so every
# minute has its own throughput, error count and answer mix. No fault is injected: any
# temporary-failure answer or protocol error is reported as an error.
#
#   tests/bench/soak.sh [MINUTES] [WARMUP_MINUTES]     (default 30 and 5)
# Prints one row per minute and, at the end, the growth of each daemon's RSS from the end of
# the warm-up to the last sample. Results stay in the printed directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
minutes=${1:-30}
warm=${2:-5}
cargo build --release --workspace --bins >/dev/null 2>&1
bin=$PWD/target/release
dir=$(mktemp -d /var/tmp/pwsoak.XXXXXX)
chmod 755 "$dir"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

$bin/postward-bench serve-dns --listen 127.0.0.1:15353 --zone-file tests/bench/spf.zone >"$dir/dns.log" 2>&1 &
pids+=($!)
for i in $(seq 0 999); do echo "user$i:{PLAIN}pass$i::::::"; done >"$dir/users"
common() {  # daemon
    printf '[server]\nlisten = ["unix:%s/%s.sock"]\nallow_root = true\n[log]\nlevel = "warn"\n' "$dir" "$1"
}
{ common policyd; printf '[dns]\nnameservers = ["127.0.0.1:15353"]\n'; } >"$dir/policyd.toml"
{ common greyd; printf '[sender_pools]\nspf = false\n[store]\nurl = "sqlite://%s/greyd.sqlite"\n' "$dir"; } >"$dir/greyd.toml"
{ common authd; printf '[auth]\nfailure_delay = "0s"\n[throttle]\nenabled = false\n[passdb]\npath = "%s/users"\n' "$dir"; } >"$dir/authd.toml"
declare -A pid
for d in policyd greyd authd; do
    $bin/postward-$d --config "$dir/$d.toml" 2>"$dir/$d.log" &
    pids+=($!); pid[$d]=$!
done
sleep 2

domains=$(seq -s, -f 's%g.bench.test' 0 15)
load() {  # daemon minute
    local args
    case $1 in
        policyd) args=(policy --workload spf --sender-domains "$domains" --clients 198.18.0.0/15) ;;
        greyd) args=(policy --workload greylist) ;;
        authd) args=(auth --users 1000 --wrong-fraction 0.1 --mech plain) ;;
    esac
    $bin/postward-bench "${args[@]}" --target "unix:$dir/$1.sock" --connections 2 --duration 60s \
        --seed "$2" --json-out "$dir/$1-$2.json" >/dev/null 2>>"$dir/bench.err" || true
}
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

echo "results in $dir"
echo "minute,policyd_rss_kb,greyd_rss_kb,authd_rss_kb" >"$dir/rss.csv"
printf '%6s %14s %14s %14s   %s\n' minute "policyd RSS kB" "greyd RSS kB" "authd RSS kB" "req/s (policyd greyd authd), errors"
for m in $(seq 1 "$minutes"); do
    loads=()
    for d in policyd greyd authd; do load "$d" "$m" & loads+=($!); done
    wait "${loads[@]}"
    line="$m,$(rss "${pid[policyd]}"),$(rss "${pid[greyd]}"),$(rss "${pid[authd]}")"
    echo "$line" >>"$dir/rss.csv"
    stats=$(python3 - "$dir" "$m" <<'PY'
import json, sys
d, m = sys.argv[1], sys.argv[2]
out = []
for daemon in ("policyd", "greyd", "authd"):
    r = json.load(open(f"{d}/{daemon}-{m}.json"))
    bad = r["errors"] + sum(v for k, v in r["answers"].items() if "DEFER_IF_PERMIT 4.7.24" in k or "temp_fail" in k or k.startswith("451"))
    out.append(f"{r['requests_per_s']:.0f}/{bad}")
print(" ".join(out))
PY
)
    IFS=, read -r _ a b c <<<"$line"
    printf '%6s %14s %14s %14s   %s\n' "$m" "$a" "$b" "$c" "$stats"
done

python3 - "$dir" "$warm" <<'PY'
import csv, json, glob, sys
d, warm = sys.argv[1], int(sys.argv[2])
rows = list(csv.DictReader(open(f"{d}/rss.csv")))
base = next((r for r in rows if int(r["minute"]) == warm), rows[0])
last = rows[-1]
for daemon in ("policyd", "greyd", "authd"):
    k = f"{daemon}_rss_kb"
    b, l = int(base[k]), int(last[k])
    peak = max(int(r[k]) for r in rows if int(r["minute"]) >= warm)
    answered = errors = 0
    answers = {}
    for f in glob.glob(f"{d}/{daemon}-*.json"):
        r = json.load(open(f))
        answered += r["answered"]; errors += r["errors"]
        for a, n in r["answers"].items():
            key = a.split(" ")[0].split("\t")[0]
            answers[key] = answers.get(key, 0) + n
    print(f"{daemon}: RSS {b} kB at minute {warm}, {l} kB at minute {last['minute']} "
          f"({(l - b) * 100 / b:+.1f}%), peak after warm-up {peak} kB; {answered} answered, "
          f"{errors} protocol errors; answers {answers}")
PY
