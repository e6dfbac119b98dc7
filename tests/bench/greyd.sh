#!/usr/bin/env bash
# greyd against the greylisting daemons it replaces, in one run on this machine:
#   floor     postward-bench serve-trivial (the protocol floor on postward's runtime)
#   greyd     postward-greyd, SQLite store (WAL) in $dir
#   greyd-pg  postward-greyd, PostgreSQL store (POSTWARD_TEST_POSTGRES_URL, own schema); skipped if unset
#   postgrey  Debian's postgrey 1.37 (BerkeleyDB in $dir), on a Unix socket
#   sqlgrey   Debian's sqlgrey 1.8 (SQLite in $dir), on 127.0.0.1:2501 (it has no Unix socket)
# Workload: postward-bench greylist (20% never-seen triplets, repeats from a pool), the same
# seed for every server. Connections 1, 10, 50; SECS seconds each after 1 s warm-up, servers
# interleaved, a `sync` before each. All databases on the same filesystem. Then greyd's
# resident memory after 1,000,000 distinct triplets.
#
#   tests/bench/greyd.sh [SECS] [MEMORY_KEYS]      (defaults 10 and 1000000)
# Needs root (postgrey and sqlgrey drop to their own users) and the Debian packages
# postgrey, sqlgrey, libdbd-sqlite3-perl.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10} keys=${2:-1000000}
cargo build --release --workspace --bins >/dev/null 2>&1
bin=$PWD/target/release
dir=$(mktemp -d /var/tmp/pwbench.XXXXXX)
chmod 755 "$dir"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

$bin/postward-bench serve-trivial --listen "unix:$dir/floor.sock" & pids+=($!)

greyd_conf() {  # name url
    cat > "$dir/$1.toml" <<TOML
[server]
listen = ["unix:$dir/$1.sock"]
allow_root = true
max_connections = 200
[sender_pools]
spf = false
[store]
url = "$2"
TOML
}
greyd_conf greyd "sqlite://$dir/greyd.sqlite"
$bin/postward-greyd --config "$dir/greyd.toml" 2>"$dir/greyd.log" & pids+=($!)

servers="floor greyd postgrey sqlgrey"
schema=""
if [[ -n "${POSTWARD_TEST_POSTGRES_URL:-}" ]]; then
    schema="pw_bench_$$"
    psql "$POSTWARD_TEST_POSTGRES_URL" -q -c "CREATE SCHEMA $schema"
    greyd_conf greyd-pg "$POSTWARD_TEST_POSTGRES_URL?options=-c%20search_path%3D$schema"
    $bin/postward-greyd --config "$dir/greyd-pg.toml" 2>"$dir/greyd-pg.log" & pids+=($!)
    servers="floor greyd greyd-pg postgrey sqlgrey"
fi

mkdir -p "$dir/postgrey-db" && chown postgrey "$dir/postgrey-db"
postgrey --unix="$dir/postgrey.sock" --dbdir="$dir/postgrey-db" --delay=300 --user=postgrey \
    --pidfile="$dir/postgrey.pid" >"$dir/postgrey.log" 2>&1 & pids+=($!)

mkdir -p "$dir/sqlgrey" && chown sqlgrey "$dir/sqlgrey"
cat > "$dir/sqlgrey.conf" <<CONF
user = sqlgrey
group = sqlgrey
inet = 2501
pidfile = $dir/sqlgrey/sqlgrey.pid
db_type = SQLite
db_name = $dir/sqlgrey/sqlgrey.db
reconnect_delay = 5
admin_mail = root@localhost
CONF
sqlgrey -f "$dir/sqlgrey.conf" >"$dir/sqlgrey.log" 2>&1 & pids+=($!)
sleep 3

target() {
    case $1 in
        sqlgrey) echo "inet:127.0.0.1:2501" ;;
        *) echo "unix:$dir/$1.sock" ;;
    esac
}
for c in 1 10 50; do
    for s in $servers; do
        # Each cell starts with the earlier cells' database writes on disk, so the kernel's
        # writeback of one server's files does not land in the next server's cell.
        sync
        $bin/postward-bench policy --target "$(target "$s")" --workload greylist --connections "$c" \
            --duration "${secs}s" --warmup 1s --seed 7 --json-out "$dir/$s-$c.json" >/dev/null || true
    done
done

python3 - "$dir" "$servers" <<'PY'
import json, sys, os
d, servers = sys.argv[1], sys.argv[2].split()
def load(s, c):
    p = f"{d}/{s}-{c}.json"
    return json.load(open(p)) if os.path.exists(p) else None
print(f"{'conns':>5} {'server':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'new p99':>8} {'rep p99':>8} {'errors':>7}  answers")
for c in (1, 10, 50):
    for s in servers:
        r = load(s, c)
        if not r:
            print(f"{c:>5} {s:>9}   (no result)"); continue
        ans = " ".join(f"{k}={v}" for k, v in sorted(r["answers"].items()))
        by = r.get("latency_by_class_ms", {})
        cls = lambda k: f"{by[k]['p99']:>8.3f}" if k in by else f"{'-':>8}"
        print(f"{c:>5} {s:>9} {r['requests_per_s']:>9.0f} {r['latency_ms']['p50']:>8.3f} {r['latency_ms']['p99']:>8.3f} {cls('new')} {cls('repeat')} {r['errors']:>7}  {ans}")
    g, f, pg, sq = load("greyd", c), load("floor", c), load("postgrey", c), load("sqlgrey", c)
    if g and f and pg and sq:
        print(f"{c:>5}  greyd/postgrey {g['requests_per_s']/pg['requests_per_s']:.1f}x   greyd/sqlgrey {g['requests_per_s']/sq['requests_per_s']:.1f}x   greyd/floor {g['requests_per_s']/f['requests_per_s']:.2f}")
PY

# Memory: a fresh greyd, `keys` distinct triplets, then its resident memory.
cleanup; pids=()
greyd_conf greyd-mem "sqlite://$dir/greyd-mem.sqlite"
$bin/postward-greyd --config "$dir/greyd-mem.toml" 2>/dev/null & pids+=($!)
mem_pid=$!
sleep 1
$bin/postward-bench policy --target "unix:$dir/greyd-mem.sock" --workload greylist --new-fraction 1 \
    --connections 10 --requests $((keys / 10)) --seed 11 --pid "$mem_pid" | grep -E "result|memory|rss|RSS" || true
echo "rows stored: $($bin/postward-greyd dump --config "$dir/greyd-mem.toml" | wc -l)"
[[ -n "$schema" ]] && psql "$POSTWARD_TEST_POSTGRES_URL" -q -c "DROP SCHEMA $schema CASCADE"
echo "logs and results in $dir"
