#!/usr/bin/env bash
# What a retry that passes costs greyd on a cold cache, against a new triplet, in one run:
#   1. greyd starts on an empty SQLite store; postward-bench sends CONNS x REQS never-seen
#      triplets (`--new-fraction 1`, seed 7): every one is a first attempt, stored.
#   2. greyd stops and starts again (an empty cache, as after every upgrade); after the
#      1 s delay the same seed replays the same triplets: every one is a retry that passes,
#      read from the store.
# Both runs are reported (req/s, p50, p99, p99.9). Delay 1 s, the flood bound off (the load
# tool's clients span 512 networks only), sender pools off; the auto-whitelists as by
# default, so each pass also counts the client and notes the sender domain.
#
#   tests/bench/greyd-pass.sh [ROUNDS] [OTHER_GREYD]      (default 3; CONNS=10 REQS=2000)
# OTHER_GREYD: a second postward-greyd binary (e.g. an older commit's) measured alternately
# with this tree's.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
other=${2:-}
conns=${CONNS:-10} reqs=${REQS:-2000}
cargo build --release -p postward-greyd -p postward-tests --bins >/dev/null 2>&1
bin=$PWD/target/release
binaries=("$bin/postward-greyd")
[ -n "$other" ] && binaries+=("$other")
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true' EXIT

for round in $(seq "$rounds"); do
    for greyd in "${binaries[@]}"; do
        dir=$(mktemp -d /var/tmp/pwpass.XXXXXX)
        cat > "$dir/greyd.toml" <<TOML
[server]
listen = ["unix:$dir/greyd.sock"]
allow_root = true
[greylist]
delay = "1s"
max_pending_per_network = 0
[sender_pools]
spf = false
[store]
url = "sqlite://$dir/greyd.sqlite"
TOML
        for phase in new pass; do
            "$greyd" --config "$dir/greyd.toml" 2>>"$dir/greyd.log" & pid=$!
            for _ in $(seq 100); do [ -S "$dir/greyd.sock" ] && break; sleep 0.05; done
            "$bin/postward-bench" policy --target "unix:$dir/greyd.sock" --workload greylist --new-fraction 1 \
                --connections "$conns" --requests "$reqs" --seed 7 --json-out "$dir/$phase.json" >/dev/null
            kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
            [ "$phase" = new ] && { sleep 1.2; sync; }
        done
        for phase in new pass; do
            python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); l=r["latency_ms"]
print("round %s  %-4s %8.0f req/s  p50 %6.3f  p99 %6.3f  p99.9 %6.3f ms  %s  %s" % (sys.argv[2], sys.argv[3],
      r["requests_per_s"], l["p50"], l["p99"], l["p99_9"], r["answers"], sys.argv[4]))' \
                "$dir/$phase.json" "$round" "$phase" "$greyd"
        done
        rm -rf "$dir"
    done
done
