#!/usr/bin/env bash
# policyd's SPF check against the SPF policy daemons it replaces, in one run on this machine:
#   floor      postward-bench serve-trivial (the protocol floor on postward's runtime)
#   policyd    postward-policyd on a Unix socket, default caches (warmed up for 10 s)
#   policyd-nc postward-policyd with the result cache and the resolver cache off ("cold":
#              every request resolves what its evaluation needs; in-flight sharing stays on)
#   pyspf      Debian's pypolicyd-spf 3.0.4 (policyd-spf), one process per connection as
#              Postfix spawn(8) runs it, default configuration
#   perlspf    Debian's postfix-policyd-spf-perl 2.011, the same way
# All of them resolve through the same fixture zones (tests/bench/spf.zone) served by
# `postward-bench serve-dns` on 127.0.0.2:53. The anchors only read /etc/resolv.conf, so the
# script runs in its own mount namespace with a resolv.conf naming 127.0.0.2 bind-mounted over
# the real one (the host's file is never touched).
# Workload: postward-bench spf over the 16 fixture domains, 1,000 senders each, from 1,024
# clients (198.18.0.0/23 pass, 198.19.0.0/23 softfail; HELO passes), a fresh message per
# request, the same seed for every server. "Warm" is policyd after a 10 s warm-up pass over
# the same workload: its result cache then holds every (client, domain) pair.
# Connections 1, 10, 50; SECS seconds each, servers interleaved. DNS queries per request come
# from the fixture's own counter.
#
#   tests/bench/spf.sh [SECS]      (default 10)
# Needs root (mount namespace, port 53) and the Debian packages postfix-policyd-spf-python
# and postfix-policyd-spf-perl.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ -z "${PW_SPF_NS:-}" ]]; then
    exec unshare --mount --propagation private env PW_SPF_NS=1 bash "$0" "$@"
fi
secs=${1:-10}
cargo build --release --workspace --bins >/dev/null 2>&1
bin=$PWD/target/release
dir=$(mktemp -d /var/tmp/pwspf.XXXXXX)
chmod 755 "$dir"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "nameserver 127.0.0.2" > "$dir/resolv.conf"
mount --bind "$dir/resolv.conf" /etc/resolv.conf

$bin/postward-bench serve-dns --listen 127.0.0.2:53 --zone-file tests/bench/spf.zone > "$dir/dns.log" 2>&1 &
dns_pid=$!; pids+=($dns_pid)
$bin/postward-bench serve-trivial --listen "unix:$dir/floor.sock" & pids+=($!)

policyd_conf() {  # name, extra TOML
    cat > "$dir/$1.toml" <<TOML
[server]
listen = ["unix:$dir/$1.sock"]
allow_root = true
max_connections = 200
[log]
level = "warn"
[dns]
nameservers = ["127.0.0.2:53"]
$2
TOML
}
policyd_conf policyd ""
policyd_conf policyd-nc $'cache_size = 0\n[spf]\ncache_size = 0'
$bin/postward-policyd --config "$dir/policyd.toml" 2>"$dir/policyd.log" & pids+=($!)
$bin/postward-policyd --config "$dir/policyd-nc.toml" 2>"$dir/policyd-nc.log" & pids+=($!)
sleep 1

queries() {  # the fixture's running total
    kill -USR1 "$dns_pid"; sleep 0.2
    grep '^queries ' "$dir/dns.log" | tail -1 | cut -d' ' -f2
}
domains=$(seq -s, -f 's%g.bench.test' 0 15)
run() {  # server conns
    local s=$1 c=$2 how warm=0s
    case $s in
        pyspf) how=(--spawn /usr/bin/policyd-spf) ;;
        perlspf) how=(--spawn /usr/sbin/postfix-policyd-spf-perl) ;;
        policyd) how=(--target "unix:$dir/$s.sock"); warm=10s ;;
        *) how=(--target "unix:$dir/$s.sock") ;;
    esac
    local before; before=$(queries)
    $bin/postward-bench policy "${how[@]}" --workload spf --sender-domains "$domains" --clients 198.18.0.0/23,198.19.0.0/23 \
        --connections "$c" --duration "${secs}s" --warmup "$warm" --seed 7 --json-out "$dir/$s-$c.json" \
        >/dev/null 2>>"$dir/bench.err" || true
    echo $(( $(queries) - before )) > "$dir/$s-$c.queries"
}
servers="floor policyd policyd-nc pyspf perlspf"
for c in 1 10 50; do
    for s in $servers; do run "$s" "$c"; done
done

python3 tests/bench/table.py "$dir" "$servers" "warm/pyspf=policyd/pyspf" "warm/perlspf=policyd/perlspf" \
    "warm/floor=policyd/floor" "no-cache/pyspf=policyd-nc/pyspf" "no-cache/perlspf=policyd-nc/perlspf"
echo "logs and results in $dir"
