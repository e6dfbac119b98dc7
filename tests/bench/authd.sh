#!/usr/bin/env bash
# authd against Dovecot's auth server (dovecot-core), in one run on this machine:
#   authd    postward-authd, passwd-file store
#   dovecot  Dovecot 2.3's auth service (a private instance: own base_dir, protocols = none),
#            passwd-file passdb
# Both read the same 1,000-user passwd-file (userN / passN), once with SHA512-CRYPT hashes
# (5,000 rounds, as `doveadm pw` makes them) and once with {PLAIN}. Failure delays and
# penalties off in both; caches off (authd cache.size = 0, Dovecot auth_cache_size = 0) and
# on (authd 10,000 entries, Dovecot 10M), 1 h TTL. Workload: postward-bench auth, PLAIN,
# every attempt with the right password, the same seed for both servers. Connections 1,
# 10, 50; SECS seconds each after a 2 s warm-up, the two servers interleaved.
#
#   tests/bench/authd.sh [SECS]      (default 10)
# Needs root and the Debian package dovecot-core.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
command -v dovecot >/dev/null || { echo "dovecot-core is not installed" >&2; exit 1; }
cargo build --release --workspace --bins >/dev/null 2>&1
bin=$PWD/target/release
dir=$(mktemp -d /var/tmp/pwauthbench.XXXXXX)
chmod 755 "$dir"
pids=()
stop_all() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}
trap stop_all EXIT

echo "making the passwd-files in $dir"
: > "$dir/users-plain"
: > "$dir/users-sha512"
for i in $(seq 0 999); do
    echo "user$i:{PLAIN}pass$i::::::" >> "$dir/users-plain"
    echo "user$i:$($bin/postward-authd pw -s SHA512-CRYPT -p "pass$i")::::::" >> "$dir/users-sha512"
done
chmod 644 "$dir"/users-*

start_authd() {  # scheme cache_size
    cat > "$dir/authd.toml" <<TOML
[server]
listen = ["unix:$dir/authd.sock"]
allow_root = true
max_connections = 200
[auth]
failure_delay = "0s"
[throttle]
enabled = false
[cache]
size = $2
[passdb]
path = "$dir/users-$1"
TOML
    rm -f "$dir/authd.sock"
    $bin/postward-authd --config "$dir/authd.toml" 2>>"$dir/authd.log" & pids+=($!)
    authd_pid=$!
}

start_dovecot() {  # scheme cache_size
    mkdir -p "$dir/dovecot-run" "$dir/dovecot-state"
    cat > "$dir/dovecot.conf" <<CONF
base_dir = $dir/dovecot-run
state_dir = $dir/dovecot-state
instance_name = pwauthbench
protocols = none
ssl = no
log_path = $dir/dovecot.log
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_cache_size = $2
auth_cache_ttl = 1 hour
auth_cache_negative_ttl = 0
passdb {
  driver = passwd-file
  args = scheme=CRYPT $dir/users-$1
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}
service auth {
  unix_listener auth-bench {
    mode = 0666
  }
}
CONF
    dovecot -F -c "$dir/dovecot.conf" & pids+=($!)
    dovecot_pid=$!
}

wait_socket() {
    for _ in $(seq 100); do [[ -S $1 ]] && return 0; sleep 0.1; done
    echo "no socket $1" >&2; return 1
}

runs=()
for scheme in sha512 plain; do
    for cache in off on; do
        if [[ $cache == on ]]; then authd_cache=10000 dovecot_cache=10M; else authd_cache=0 dovecot_cache=0; fi
        start_authd "$scheme" "$authd_cache"
        start_dovecot "$scheme" "$dovecot_cache"
        wait_socket "$dir/authd.sock"
        wait_socket "$dir/dovecot-run/auth-bench"
        sleep 1
        for c in 1 10 50; do
            for s in authd dovecot; do
                if [[ $s == authd ]]; then target="unix:$dir/authd.sock"; else target="unix:$dir/dovecot-run/auth-bench"; fi
                name="$s-$scheme-$cache"
                $bin/postward-bench auth --target "$target" --connections "$c" --duration "${secs}s" \
                    --warmup 2s --seed 7 --users 1000 --wrong-fraction 0 --mech plain \
                    --json-out "$dir/$name-$c.json" >/dev/null || true
            done
        done
        # Resident memory after the runs.
        for s in authd dovecot; do
            if [[ $s == authd ]]; then p=$authd_pid; else p=$(pgrep -f "dovecot/auth$" -n || echo "$dovecot_pid"); fi
            echo "$(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)" > "$dir/$s-$scheme-$cache.hwm"
        done
        stop_all
        runs+=("$scheme-$cache")
    done
done

python3 - "$dir" "${runs[@]}" <<'PY'
import json, os, sys
d, runs = sys.argv[1], sys.argv[2:]
def load(name, c):
    p = f"{d}/{name}-{c}.json"
    return json.load(open(p)) if os.path.exists(p) else None
def hwm(name):
    p = f"{d}/{name}.hwm"
    return int(open(p).read().strip() or 0) if os.path.exists(p) else 0
print(f"{'run':>12} {'conns':>5} {'server':>8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}  answers")
for run in runs:
    for c in (1, 10, 50):
        rows = {}
        for s in ("authd", "dovecot"):
            r = load(f"{s}-{run}", c)
            rows[s] = r
            if not r:
                print(f"{run:>12} {c:>5} {s:>8}   (no result)"); continue
            ans = " ".join(f"{k}={v}" for k, v in sorted(r["answers"].items()))
            lat = r["latency_ms"]
            print(f"{run:>12} {c:>5} {s:>8} {r['requests_per_s']:>9.0f} {lat['p50']:>8.3f} {lat['p99']:>8.3f} {r['errors']:>7}  {ans}")
        a, v = rows["authd"], rows["dovecot"]
        if a and v:
            print(f"{run:>12} {c:>5}   authd/dovecot {a['requests_per_s'] / v['requests_per_s']:.2f}x   "
                  f"p99 authd {a['latency_ms']['p99']:.3f} vs dovecot {v['latency_ms']['p99']:.3f} ms")
    print(f"{run:>12}  peak RSS: authd {hwm('authd-' + run) / 1024:.1f} MiB, dovecot auth {hwm('dovecot-' + run) / 1024:.1f} MiB")
# The cache target: authd with its cache on, against Dovecot's SHA512-CRYPT rate (cache off).
for c in (1, 10, 50):
    a, v = load("authd-sha512-on", c), load("dovecot-sha512-off", c)
    if a and v:
        print(f"cache: {c:>2} conns  authd sha512 cache on / dovecot sha512 cache off "
              f"{a['requests_per_s'] / v['requests_per_s']:.1f}x")
PY
echo "logs and results in $dir"
