#!/usr/bin/env bash
# policyd's DNS list check against policyd-weight, in one run on this machine:
#   floor      postward-bench serve-trivial (the protocol floor on postward's runtime)
#   policyd    postward-policyd, SPF off, three lists, default cache (warmed up first)
#   policyd-nc the same with the list cache off ("cold": every request queries every list;
#              concurrent identical queries are still shared)
#   policyd-nc1 the same with only bl1
# Then the cold latency with lists that take time to answer, at 1 connection: a second
# fixture on 127.0.0.3 answers every list after DELAY_MS (default 5 ms), as lists across the
# Internet would; policyd with one list (lat-1) and with three (lat-3), cache off, against
# policyd-weight with three ($USE_NET_DNS, $NS = 127.0.0.3, caches off). Three lists should
# cost policyd one DELAY, not three.
#   weight     Debian's policyd-weight 0.1.15.2 in daemon mode (inet:127.0.0.1:12525),
#              $dnsbl_checks_only = 1 (no HELO/MX heuristics), the same three lists and
#              weights, rejecting above score 1 ($MAXDNSBLSCORE, the only reject in that
#              mode; policyd: reject_threshold = 2, the same decisions), its result caches
#              sized to hold every client (warmed up first)
#   weight-nc  the same with its result caches off
# The lists (generated below, served by `postward-bench serve-dns` on 127.0.0.2:53):
#   bl1.bench.test   every 10th client listed (127.0.0.2), weight 2
#   bl2.bench.test   every 7th client listed (127.0.0.4), weight 2
#   wl.bench.test    every 13th client allowlisted (127.0.10.1), weight -3
# policyd-weight reads /etc/resolv.conf, so the script runs in its own mount namespace with
# a resolv.conf naming 127.0.0.2 bind-mounted over the real one (the host's file is never
# touched). Workload: postward-bench --workload dnsbl over the 1,024 clients of
# 198.18.0.0/22 (a server's regular clients), a fresh message per request, the same seed for
# every server; connections 1, 10, 50; SECS seconds each, servers interleaved. The cached
# servers are first warmed with 10 connections for WARM seconds (default 10), enough to
# have seen every client. DNS queries per request come from the
# fixture's own counter.
#
#   tests/bench/dnsbl.sh [SECS [WARM]]      (default 10 10)
# Needs root (mount namespace, port 53) and the Debian package policyd-weight.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ -z "${PW_DNSBL_NS:-}" ]]; then
    exec unshare --mount --propagation private env PW_DNSBL_NS=1 bash "$0" "$@"
fi
secs=${1:-10}
warm_secs=${2:-10}
cargo build --release --workspace --bins >/dev/null 2>&1
bin=$PWD/target/release
dir=$(mktemp -d /var/tmp/pwdnsbl.XXXXXX)
chmod 755 "$dir"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    pkill -f "policyd-weight.*$dir" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

echo "nameserver 127.0.0.2" > "$dir/resolv.conf"
mount --bind "$dir/resolv.conf" /etc/resolv.conf

python3 - "$dir" <<'PY'
import sys
d = sys.argv[1]
lists = {"bl1": (10, "127.0.0.2"), "bl2": (7, "127.0.0.4"), "wl": (13, "127.0.10.1")}
for name, (every, code) in lists.items():
    with open(f"{d}/{name}.zone", "w") as f:
        f.write(f"$ORIGIN {name}.bench.test.\n$TTL 3600\n")
        f.write(f"@ IN SOA ns.bench.test. hostmaster.bench.test. 1 3600 600 86400 3600\n@ IN NS ns.bench.test.\n")
        f.write("2.0.0.127 IN A 127.0.0.2\n2.0.0.127 IN TXT \"test point\"\n")
        for i in range(1024):
            if i % every == 0:
                a, b = 198, 18
                c, e = i // 256, i % 256
                f.write(f"{e}.{c}.{b}.{a} IN A {code}\n")
                f.write(f"{e}.{c}.{b}.{a} IN TXT \"listed, see https://{name}.bench.test/{a}.{b}.{c}.{e}\"\n")
PY

$bin/postward-bench serve-dns --listen 127.0.0.2:53 --zone-file "$dir/bl1.zone" --zone-file "$dir/bl2.zone" \
    --zone-file "$dir/wl.zone" > "$dir/dns.log" 2>&1 &
dns_pid=$!; pids+=($dns_pid)
delay=${DELAY_MS:-5}ms
$bin/postward-bench serve-dns --listen 127.0.0.3:53 --zone-file "$dir/bl1.zone" --zone-file "$dir/bl2.zone" \
    --zone-file "$dir/wl.zone" --delay "bl1.bench.test=$delay" --delay "bl2.bench.test=$delay" \
    --delay "wl.bench.test=$delay" > "$dir/dns-delay.log" 2>&1 & pids+=($!)
$bin/postward-bench serve-trivial --listen "unix:$dir/floor.sock" & pids+=($!)

policyd_conf() {  # name, extra TOML, sites
    local sites=${3:-'"bl1.bench.test=127.0.0.[2..11]*2", "bl2.bench.test=127.0.0.[2..11]*2", "wl.bench.test=127.0.[0..255].[1..3]*-3"'}
    cat > "$dir/$1.toml" <<TOML
[server]
listen = ["unix:$dir/$1.sock"]
allow_root = true
max_connections = 200
[log]
level = "warn"
[dns]
nameservers = ["127.0.0.2:53"]
[spf]
enabled = false
[dnsbl]
reject_threshold = 2
sites = [$sites]
$2
TOML
}
policyd_conf policyd ""
policyd_conf policyd-nc "cache_size = 0"
policyd_conf policyd-nc1 "cache_size = 0" '"bl1.bench.test=127.0.0.[2..11]*2"'
policyd_conf lat-1 "cache_size = 0" '"bl1.bench.test=127.0.0.[2..11]*2"'
policyd_conf lat-3 "cache_size = 0"
sed -i 's/127.0.0.2:53/127.0.0.3:53/' "$dir/lat-1.toml" "$dir/lat-3.toml"
$bin/postward-policyd --config "$dir/lat-1.toml" 2>"$dir/lat-1.log" & pids+=($!)
$bin/postward-policyd --config "$dir/lat-3.toml" 2>"$dir/lat-3.log" & pids+=($!)
$bin/postward-policyd --config "$dir/policyd-nc1.toml" 2>"$dir/policyd-nc1.log" & pids+=($!)
$bin/postward-policyd --config "$dir/policyd.toml" 2>"$dir/policyd.log" & pids+=($!)
$bin/postward-policyd --config "$dir/policyd-nc.toml" 2>"$dir/policyd-nc.log" & pids+=($!)

weight_conf() {  # name, port, cache size, extra
    mkdir -p "$dir/$1.lock"; chown polw "$dir/$1.lock"
    cat > "$dir/$1.conf" <<PERL
\$dnsbl_checks_only = 1;
@dnsbl_score = (
    'bl1.bench.test', 2, 0, 'BL1',
    'bl2.bench.test', 2, 0, 'BL2',
    'wl.bench.test', -3, 0, 'WL',
);
@rhsbl_score = ();
\$REJECTLEVEL = 1;
\$MAXDNSBLSCORE = 1;
\$MAXDNSBLHITS = 10;
\$TCP_PORT = $2;
\$BIND_ADDRESS = '127.0.0.1';
\$LOCKPATH = '$dir/$1.lock/';
\$SPATH = '$dir/$1.lock/polw.sock';
\$PIDFILE = '$dir/$1.pid';
\$CACHESIZE = $3; \$CACHEMAXSIZE = $(( $3 * 2 ));
\$POSCACHESIZE = $3; \$POSCACHEMAXSIZE = $(( $3 * 2 ));
\$MAX_PROC = 60;
\$syslog_socktype = 'udp';
${4:-}
PERL
    policyd-weight -f "$dir/$1.conf" start >"$dir/$1.log" 2>&1
}
# policyd-weight logs every request to syslog; this machine has no /dev/log, so it sends to
# UDP 127.0.0.1:514, where a sink counts and discards the lines.
python3 -c '
import socket, signal, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 514)); n = 0
signal.signal(signal.SIGTERM, lambda *a: (print("syslog lines", n, flush=True), sys.exit(0)))
while True:
    s.recv(65536); n += 1
' > "$dir/syslog.log" 2>&1 & pids+=($!)
weight_conf weight 12525 10000
weight_conf weight-nc 12526 0
weight_conf weight-lat 12527 0 '$USE_NET_DNS = 1; $NS = q{127.0.0.3};'
sleep 1

queries() {  # the fixture's running total
    kill -USR1 "$dns_pid"; sleep 0.2
    grep '^queries ' "$dir/dns.log" | tail -1 | cut -d' ' -f2
}
run() {  # server conns
    local s=$1 c=$2 how warm=0s
    case $s in
        weight) how=(--target inet:127.0.0.1:12525); warm=1s ;;
        weight-nc) how=(--target inet:127.0.0.1:12526) ;;
        weight-lat) how=(--target inet:127.0.0.1:12527) ;;
        policyd) how=(--target "unix:$dir/$s.sock"); warm=1s ;;
        *) how=(--target "unix:$dir/$s.sock") ;;
    esac
    local before; before=$(queries)
    $bin/postward-bench policy "${how[@]}" --workload dnsbl --clients 198.18.0.0/22 \
        --connections "$c" --duration "${secs}s" --warmup "$warm" --seed 7 --json-out "$dir/$s-$c.json" \
        >/dev/null 2>>"$dir/bench.err" || true
    echo $(( $(queries) - before )) > "$dir/$s-$c.queries"
}
servers="floor policyd policyd-nc policyd-nc1 weight weight-nc"
for target in "unix:$dir/policyd.sock" inet:127.0.0.1:12525; do
    $bin/postward-bench policy --target "$target" --workload dnsbl --clients 198.18.0.0/22 --connections 10 \
        --duration "${warm_secs}s" --seed 1 >/dev/null 2>>"$dir/bench.err" || true
done
for c in 1 10 50; do
    for s in $servers; do run "$s" "$c"; done
done
policyd-weight -f "$dir/weight.conf" stop >/dev/null 2>&1 || true
for s in lat-1 lat-3 weight-lat; do run "$s" 1; done
policyd-weight -f "$dir/weight-nc.conf" stop >/dev/null 2>&1 || true
policyd-weight -f "$dir/weight-lat.conf" stop >/dev/null 2>&1 || true

python3 tests/bench/table.py "$dir" "$servers" "warm/policyd-weight=policyd/weight" "warm/floor=policyd/floor" \
    "cold/policyd-weight=policyd-nc/weight-nc" "cold/floor=policyd-nc/floor"
python3 - "$dir" <<'PY'
import json, os, sys
d = sys.argv[1]
print()
print("cold latency, lists answering after a delay, 1 connection:")
for s in ("lat-1", "lat-3", "weight-lat"):
    p = f"{d}/{s}-1.json"
    if os.path.exists(p):
        r = json.load(open(p))
        print(f"{s:>10} {r['requests_per_s']:>9.0f} req/s  p50 {r['latency_ms']['p50']:.3f} ms  p99 {r['latency_ms']['p99']:.3f} ms  errors {r['errors']}")
PY
echo "logs and results in $dir"
