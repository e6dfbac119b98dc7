#!/usr/bin/env bash
# Builds postward and runs its daemons on built-in defaults (no configuration file), with
# their sockets in ./run/ of the checkout, then prints the Postfix lines to paste.
#
#   contrib/run-local.sh            run until Ctrl-C
#   contrib/run-local.sh --for 5    run 5 seconds, check each daemon answers, stop (used by CI)
#
# The daemons refuse to run as root without being told to; when this script is started as
# root it runs them as user nobody instead. POSTWARD_PROFILE=dev uses the debug build (CI,
# which has built it for the tests already); the default is the optimised release build.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
run_for=""
if [[ "${1:-}" == "--for" ]]; then run_for=${2:?--for needs seconds}; fi

if [[ "${POSTWARD_PROFILE:-release}" == dev ]]; then
    cargo build --workspace --bins
    bin=$top/target/debug
else
    cargo build --release --workspace --bins
    bin=$top/target/release
fi
rundir=$top/run
mkdir -p "$rundir"

as_user=()
if [[ $(id -u) == 0 ]]; then
    chown nobody "$rundir"
    as_user=(setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups --)
fi

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

for d in greyd policyd; do
    rm -f "$rundir/postward-$d.sock"
    extra=()
    if [[ -n "$run_for" && $d == policyd ]]; then
        # The smoke check (CI) must send nothing beyond loopback: policyd's SPF lookups go to
        # a closed loopback port and end at once as temperror (an answer, not an error).
        printf '[dns]\nnameservers = ["127.0.0.1:9"]\nattempts = 1\n' > "$rundir/policyd-smoke.toml"
        chmod 644 "$rundir/policyd-smoke.toml"
        extra=(--config "$rundir/policyd-smoke.toml")
    fi
    # greyd keeps its SQLite file in $STATE_DIRECTORY, as under systemd's StateDirectory=.
    STATE_DIRECTORY=$rundir "${as_user[@]}" "$bin/postward-$d" --listen "unix:$rundir/postward-$d.sock" \
        "${extra[@]}" &
    pids+=($!)
done
# authd needs accounts: a passwd-file in the run directory with one demo user, whose
# password is made up on the first run and kept in $rundir/demo-password.
if [[ ! -s "$rundir/passwd" ]]; then
    head -c 12 /dev/urandom | base64 | tr -d '/+=' > "$rundir/demo-password"
    printf 'demo@localhost:%s::::::\n' "$("$bin/postward-authd" pw -s SHA512-CRYPT -p "$(cat "$rundir/demo-password")")" \
        > "$rundir/passwd"
fi
printf '[passdb]\npath = "%s/passwd"\n' "$rundir" > "$rundir/authd.toml"
chmod 644 "$rundir/passwd" "$rundir/authd.toml"
rm -f "$rundir/postward-auth.sock"
"${as_user[@]}" "$bin/postward-authd" --config "$rundir/authd.toml" --listen "unix:$rundir/postward-auth.sock" &
pids+=($!)
for d in greyd policyd auth; do
    for _ in $(seq 100); do [[ -S "$rundir/postward-$d.sock" ]] && break; sleep 0.1; done
    [[ -S "$rundir/postward-$d.sock" ]] || { echo "postward-$d did not start" >&2; exit 1; }
done

cat <<TXT

postward is running on built-in defaults:
  postward-greyd    unix:$rundir/postward-greyd.sock   (greylist in $rundir/greyd.sqlite)
  postward-policyd  unix:$rundir/postward-policyd.sock (SPF; resolver from /etc/resolv.conf)
  postward-authd    unix:$rundir/postward-auth.sock    (SMTP AUTH; accounts in $rundir/passwd,
                    demo@localhost with the password in $rundir/demo-password)

Paste into /etc/postfix/main.cf (smtpd must not be chrooted to reach these paths; the
packaged sockets live in /var/spool/postfix/private/ instead, see README):

smtpd_recipient_restrictions =
    permit_mynetworks,
    permit_sasl_authenticated,
    reject_unauth_destination,
    check_policy_service unix:$rundir/postward-policyd.sock,
    check_policy_service unix:$rundir/postward-greyd.sock
smtpd_policy_service_default_action = DUNNO
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $rundir/postward-auth.sock

Try authd: $bin/postward-authd test -a unix:$rundir/postward-auth.sock demo@localhost
Add users: $bin/postward-authd pw -s SHA512-CRYPT   (then user@domain:{SHA512-CRYPT}…:::::: in $rundir/passwd)

TXT

if [[ -n "$run_for" ]]; then
    for d in greyd policyd; do
        "$bin/postward-bench" policy --target "unix:$rundir/postward-$d.sock" --workload trivial \
            --connections 2 --requests 50 | tee "$rundir/check-$d.txt"
        grep -q ", 0 errors" "$rundir/check-$d.txt" || { echo "postward-$d did not answer cleanly" >&2; exit 1; }
    done
    "$bin/postward-authd" test -a "unix:$rundir/postward-auth.sock" demo@localhost "$(cat "$rundir/demo-password")" \
        || { echo "postward-authd did not accept the demo user" >&2; exit 1; }
    sleep "$run_for"
    echo "stopping after ${run_for}s"
    exit 0
fi
echo "Ctrl-C stops the daemons."
wait
