#!/usr/bin/env bash
# Does a failure's answer time tell whether the account exists? postward-authd's failures,
# by class, in one run on this machine:
#   unknown   a user the store does not have
#   wrong     an existing user, wrong password
#   disabled  an existing user with `nologin` (or disabled = 1), right password
# for stores of SHA512-CRYPT (5,000 rounds), BLF-CRYPT cost 12 and ARGON2ID passwd-files, and
# an SQLite store of BLF-CRYPT cost 12 (met only at run time). Failure delay 0 and the
# throttle off, so nothing but the server's own work separates the classes (the default 2 s
# delay adds ±25% jitter on top; it hides nothing from an attacker who takes the minimum).
# Caches off. One connection, N sequential PLAIN attempts per class (postward-bench auth).
#
#   tests/bench/authd-timing.sh [N] [OTHER_AUTHD]     (default 50)
# OTHER_AUTHD: a second postward-authd binary (e.g. an older release) measured beside this
# tree's, with the same files. Needs python3 (for the SQLite file).
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-50}
other=${2:-}
cargo build --release -p postward-authd -p postward-tests --bins >/dev/null 2>&1
bin=$PWD/target/release
dir=$(mktemp -d /var/tmp/pwtiming.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true' EXIT

users=10
echo "making the stores in $dir"
for scheme in SHA512-CRYPT BLF-CRYPT ARGON2ID; do
    rounds=()
    [ "$scheme" = BLF-CRYPT ] && rounds=(-r 12)
    : > "$dir/$scheme"
    for i in $(seq 0 $((users - 1))); do
        echo "user$i:$($bin/postward-authd pw -s "$scheme" "${rounds[@]}" -p "pass$i")::::::" >> "$dir/$scheme"
        echo "off$i:$($bin/postward-authd pw -s "$scheme" "${rounds[@]}" -p "pass$i")::::::nologin" >> "$dir/$scheme"
    done
done
python3 - "$dir/BLF-CRYPT" "$dir/users.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[2])
db.execute("CREATE TABLE users (username TEXT PRIMARY KEY, password TEXT, disabled INTEGER)")
for line in open(sys.argv[1]):
    name, pw = line.split(":")[:2]
    db.execute("INSERT INTO users VALUES (?, ?, ?)", (name, pw, 1 if "nologin" in line else 0))
db.commit()
PY

start() {  # binary passdb-lines state-name
    cat > "$dir/authd.toml" <<TOML
[server]
listen = ["unix:$dir/authd.sock"]
allow_root = true
[auth]
failure_delay = "0s"
[throttle]
enabled = false
[cache]
size = 0
[passdb]
$2
TOML
    rm -f "$dir/authd.sock"
    # A state directory per store: the pad a run learns is kept there (older binaries ignore it).
    mkdir -p "$dir/state-$3"
    STATE_DIRECTORY="$dir/state-$3" "$1" --config "$dir/authd.toml" 2>>"$dir/authd.log" & pid=$!
    for _ in $(seq 100); do [ -S "$dir/authd.sock" ] && return; sleep 0.1; done
    echo "authd did not start: $(tail -3 "$dir/authd.log")" >&2; exit 1
}

measure() {  # label user-format wrong-fraction
    "$bin/postward-bench" auth --target "unix:$dir/authd.sock" --connections 1 --requests "$n" \
        --users "$users" --user-format "$2" --wrong-fraction "$3" --json-out "$dir/r.json" >/dev/null
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); l=r["latency_ms"]; print("%-9s min %8.1f  median %8.1f ms" % (sys.argv[2], l["min"], l["p50"]))' "$dir/r.json" "$1"
}

binaries=("$bin/postward-authd")
[ -n "$other" ] && binaries+=("$other")
for store in SHA512-CRYPT BLF-CRYPT ARGON2ID sql; do
    if [ "$store" = sql ]; then
        lines="driver = \"sql\"
url = \"sqlite://$dir/users.db\"
query = \"SELECT password, disabled FROM users WHERE username = :user\""
    else
        lines="path = \"$dir/$store\""
    fi
    runs=("${binaries[@]}")
    # An SQL store's entries are met only at run time: this tree's binary again after a
    # restart, starting from the pad the first run kept.
    [ "$store" = sql ] && runs=("$bin/postward-authd" "$bin/postward-authd" "${binaries[@]:1}")
    i=0
    for b in "${runs[@]}"; do
        label=$b
        [ "$store" = sql ] && [ $i = 1 ] && label="$b (restarted)"
        echo "== $store, $label"
        start "$b" "$lines" "$store-$(basename "$(dirname "$b")")"
        measure unknown "ghost{}" 0
        measure wrong "user{}" 1
        measure disabled "off{}" 0
        kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
        i=$((i + 1))
    done
done
