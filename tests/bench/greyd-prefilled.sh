#!/usr/bin/env bash
# greyd where sites really run it: a store that already holds a busy site's 35 days of
# greylisting, a cold cache after a restart, and mostly new triplets. In one run on this
# machine, interleaved:
#   floor     postward-bench serve-trivial (the protocol floor on postward's runtime)
#   greyd     postward-greyd, SQLite store (WAL)
#   postgrey  Debian's postgrey 1.37 (BerkeleyDB), on a Unix socket
#   sqlgrey   Debian's sqlgrey 1.8 (SQLite, greymethod classc), on 127.0.0.1:2501
#
# The history (postward-bench prefill-greylist): TRIPLETS triplets first seen over 35 days,
# 12% pending (a retry now passes), the rest passed, one auto-whitelisted client per 500;
# the same triplets written into each daemon's own store. Each cell restores the daemon's
# store ("prefilled", or "empty": a new one), starts the daemon (cold cache) and measures
# SECS seconds from its first request (the "first" figure: the throughput right after a
# restart), then SECS more (the "steady" figure), with the workload
#   postward-bench policy --workload greylist --prefilled TRIPLETS
# (60% new triplets, 10% early retries, 10% retries of pending stored triplets, which pass,
# 15% repeats of passed stored triplets, 5% new senders from auto-whitelisted clients), the
# same seeds for every server. On an empty store the same requests are all unknown to the
# daemon. Connections 1, 10, 50; ROUNDS rounds; medians are reported, with greyd's ratios to
# postgrey, sqlgrey and the floor, its per-class p50 and its peak resident memory.
#
#   tests/bench/greyd-prefilled.sh [ROUNDS] [SECS] [TRIPLETS]     (defaults 3, 10, 1000000)
# Needs root (postgrey and sqlgrey drop to their own users) and the Debian packages
# postgrey, sqlgrey, libdbd-sqlite3-perl, libberkeleydb-perl (postgrey's) and sqlite3.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3} secs=${2:-10} triplets=${3:-1000000}
cargo build --release -p postward-greyd -p postward-tests --bins >/dev/null 2>&1
bin=$PWD/target/release
dir=$(mktemp -d /var/tmp/pwprefilled.XXXXXX)
chmod 755 "$dir"
pids=() pid=
cleanup() {
    for p in "${pids[@]}" $pid; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

wait_for() {  # what test...
    local what=$1; shift
    for _ in $(seq 200); do "$@" && return 0; sleep 0.05; done
    echo "$what did not come up; logs in $dir" >&2; exit 1
}

sqlgrey_conf() {  # db-file
    cat > "$dir/sqlgrey.conf" <<CONF
user = sqlgrey
group = sqlgrey
inet = 2501
pidfile = $dir/sqlgrey-run/sqlgrey.pid
db_type = SQLite
db_name = $1
greymethod = classc
reconnect_delay = 5
admin_mail = root@localhost
CONF
}
mkdir -p "$dir/sqlgrey-run" && chown sqlgrey "$dir/sqlgrey-run"

echo "== the history: $triplets triplets, written into each store"
mkdir -p "$dir/full/sqlgrey" && chown sqlgrey "$dir/full/sqlgrey"
# sqlgrey makes its own schema: start it once on the file, then stop it.
sqlgrey_conf "$dir/full/sqlgrey/sqlgrey.db"
sqlgrey -f "$dir/sqlgrey.conf" >"$dir/sqlgrey-init.log" 2>&1 & pid=$!
# (-readonly: a check before sqlgrey made the file must not make it, owned by root.)
wait_for sqlgrey sh -c "test -s '$dir/full/sqlgrey/sqlgrey.db' && sqlite3 -readonly '$dir/full/sqlgrey/sqlgrey.db' .tables 2>/dev/null | grep -q from_awl"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
$bin/postward-bench prefill-greylist --triplets "$triplets" --greyd "sqlite://$dir/full/greyd.sqlite" \
    --sqlgrey "$dir/full/sqlgrey/sqlgrey.db" --postgrey-dir "$dir/full/tsv"
mkdir -p "$dir/full/postgrey"
perl -MBerkeleyDB -e '
    my ($home, @pairs) = @ARGV;
    my $env = BerkeleyDB::Env->new(-Home => $home,
        -Flags => DB_CREATE|DB_INIT_TXN|DB_INIT_MPOOL|DB_INIT_LOG) or die "env: $BerkeleyDB::Error\n";
    while (my ($file, $tsv) = splice(@pairs, 0, 2)) {
        my %db;
        tie(%db, "BerkeleyDB::Btree", -Filename => $file, -Flags => DB_CREATE, -Env => $env)
            or die "$file: $BerkeleyDB::Error\n";
        open(my $in, "<", $tsv) or die "$tsv: $!\n";
        while (<$in>) { chomp; my ($k, $v) = split /\t/; $db{$k} = $v; }
        untie %db;
    }' "$dir/full/postgrey" postgrey.db "$dir/full/tsv/postgrey.tsv" \
    postgrey_clients.db "$dir/full/tsv/postgrey_clients.tsv"
rm -rf "$dir/full/tsv"
chown -R postgrey "$dir/full/postgrey"
chown -R sqlgrey "$dir/full/sqlgrey"
du -sh "$dir/full/"* | sed 's/^/   /'

$bin/postward-bench serve-trivial --listen "unix:$dir/floor.sock" & pids+=($!)

cat > "$dir/greyd.toml" <<TOML
[server]
listen = ["unix:$dir/greyd.sock"]
allow_root = true
max_connections = 200
[sender_pools]
spf = false
[store]
url = "sqlite://$dir/run/greyd.sqlite"
TOML

# Restores SERVER's store for STATE (prefilled or empty) and starts it; sets pid.
start() {  # server state
    rm -rf "$dir/run"; mkdir -p "$dir/run"
    case $1 in
        floor) pid=; return ;;
        greyd)
            [ "$2" = prefilled ] && cp "$dir/full/greyd.sqlite" "$dir/run/"
            rm -f "$dir/greyd.sock"
            $bin/postward-greyd --config "$dir/greyd.toml" 2>>"$dir/greyd.log" & pid=$!
            wait_for greyd test -S "$dir/greyd.sock" ;;
        postgrey)
            if [ "$2" = prefilled ]; then cp -a "$dir/full/postgrey" "$dir/run/postgrey"; else mkdir "$dir/run/postgrey"; fi
            chown -R postgrey "$dir/run/postgrey"
            rm -f "$dir/postgrey.sock"
            postgrey --unix="$dir/postgrey.sock" --dbdir="$dir/run/postgrey" --delay=300 --user=postgrey \
                --pidfile="$dir/run/postgrey.pid" >>"$dir/postgrey.log" 2>&1 & pid=$!
            wait_for postgrey test -S "$dir/postgrey.sock" ;;
        sqlgrey)
            if [ "$2" = prefilled ]; then cp -a "$dir/full/sqlgrey" "$dir/run/sqlgrey"; else mkdir "$dir/run/sqlgrey"; fi
            chown -R sqlgrey "$dir/run/sqlgrey"
            sqlgrey_conf "$dir/run/sqlgrey/sqlgrey.db"
            sqlgrey -f "$dir/sqlgrey.conf" >>"$dir/sqlgrey.log" 2>&1 & pid=$!
            wait_for sqlgrey bash -c "exec 3<>/dev/tcp/127.0.0.1/2501" 2>/dev/null ;;
    esac
}

stop() {
    [ -z "$pid" ] && return
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=
    # postgrey and sqlgrey fork: make sure nothing of theirs still holds the port or socket.
    pkill -f "postgrey --unix=$dir" 2>/dev/null || true
    pkill -f "sqlgrey -f $dir" 2>/dev/null || true
    for _ in $(seq 100); do
        pgrep -f "postgrey --unix=$dir" >/dev/null || pgrep -f "sqlgrey -f $dir" >/dev/null || break
        sleep 0.05
    done
}

target() {
    case $1 in
        sqlgrey) echo "inet:127.0.0.1:2501" ;;
        *) echo "unix:$dir/$1.sock" ;;
    esac
}

servers="floor greyd postgrey sqlgrey"
for round in $(seq "$rounds"); do
    for c in 1 10 50; do
        for state in prefilled empty; do
            for s in $servers; do
                sync
                start "$s" "$state"
                rss=()
                [ "$s" = greyd ] && rss=(--pid "$pid")
                for phase in first steady; do
                    seed=$((round * 100 + c))
                    [ "$phase" = steady ] && seed=$((seed + 50))
                    $bin/postward-bench policy --target "$(target "$s")" --workload greylist \
                        --prefilled "$triplets" --connections "$c" --duration "${secs}s" --seed "$seed" \
                        "${rss[@]}" --json-out "$dir/$s-$state-$c-$phase-$round.json" >/dev/null || true
                done
                stop
            done
        done
        echo "   round $round, $c connections done ($(date -u +%H:%M:%S))"
    done
done

python3 - "$dir" "$servers" "$rounds" <<'PY'
import json, os, statistics, sys
d, servers, rounds = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])
def runs(s, state, c, phase):
    out = []
    for r in range(1, rounds + 1):
        p = f"{d}/{s}-{state}-{c}-{phase}-{r}.json"
        if os.path.exists(p):
            out.append(json.load(open(p)))
    return out
def med(rs, f):
    v = [f(r) for r in rs]
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None
def fmt(x, spec):
    return format(x, spec) if x is not None else "-"
print(f"medians of {rounds} rounds; req/s and latency in ms")
print(f"{'store':>9} {'phase':>6} {'conns':>5} {'server':>8} {'req/s':>8} {'p50':>7} {'p99':>7} {'p99.9':>7} {'new p50':>8} {'pass p50':>8} {'old p50':>8} {'errors':>6}")
for state in ("prefilled", "empty"):
    for phase in ("first", "steady"):
        for c in (1, 10, 50):
            rate = {}
            for s in servers:
                rs = runs(s, state, c, phase)
                if not rs:
                    print(f"{state:>9} {phase:>6} {c:>5} {s:>8}   (no result)"); continue
                rate[s] = med(rs, lambda r: r["requests_per_s"])
                cls = lambda k: med(rs, lambda r: r.get("latency_by_class_ms", {}).get(k, {}).get("p50"))
                print(f"{state:>9} {phase:>6} {c:>5} {s:>8} {rate[s]:>8.0f} {med(rs, lambda r: r['latency_ms']['p50']):>7.3f}"
                      f" {med(rs, lambda r: r['latency_ms']['p99']):>7.3f} {med(rs, lambda r: r['latency_ms']['p99_9']):>7.3f}"
                      f" {fmt(cls('new'), '>8.3f')} {fmt(cls('pass'), '>8.3f')} {fmt(cls('old'), '>8.3f')} {med(rs, lambda r: r['errors']):>6.0f}")
            g = rate.get("greyd")
            if g:
                ratios = "  ".join(f"greyd/{s} {g / rate[s]:.2f}" for s in ("postgrey", "sqlgrey", "floor") if rate.get(s))
                print(f"{'':>9} {'':>6} {c:>5} {'':>8} {ratios}")
hwm = [r["memory"]["vm_hwm_kb"] for f in os.listdir(d) if f.startswith("greyd-") and f.endswith(".json")
       for r in [json.load(open(f"{d}/{f}"))] if r.get("memory")]
if hwm:
    print(f"greyd peak resident memory (VmHWM) over all cells: {max(hwm) / 1024:.1f} MB")
# Each class should get the answer it is there to get; a share off here means the history
# and a daemon's keys do not match.
print("answers by class, prefilled, 10 connections, steady, round 1:")
for s in servers:
    p = f"{d}/{s}-prefilled-10-steady-1.json"
    if os.path.exists(p) and s != "floor":
        by = json.load(open(p)).get("answers_by_class", {})
        print(f"  {s:>8}: " + "; ".join(f"{k} " + ", ".join(f"{a} {n}" for a, n in sorted(v.items())) for k, v in sorted(by.items())))
PY
echo "logs and results in $dir"
