#!/usr/bin/env bash
# Builds postward and runs its three daemons on built-in defaults, with their sockets, state
# and log in ./run/ of the checkout, then prints the Postfix lines to paste.
#
#   contrib/run-local.sh            run until Ctrl-C
#   contrib/run-local.sh --for 5    run 5 seconds, check each daemon answers, stop (used by CI)
#
# It sets up what the build needs first: a missing C compiler or PAM library (authd links
# libpam) is installed with apt-get or dnf when run as root; otherwise it stops before
# building, naming the package and the command. The daemons refuse to run as root; started
# as root, this script has each daemon bind its socket as root (group postfix, mode 0660,
# so Postfix's smtpd can connect) and then switch to user nobody, as the packaged services
# switch to their own users. POSTWARD_PROFILE=dev uses the debug build (CI, which has built
# it for the tests already); the default is the optimised release build.
#
# For the test that proves the printed lines work (tests/tests/run_local.rs):
# POSTWARD_RUN_DIR replaces ./run, POSTWARD_DNS (host:port) is the only nameserver, and
# POSTWARD_BIN_DIR names built binaries to use without building (cargo holds its lock
# while the tests run).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
run_for=""
if [[ "${1:-}" == "--for" ]]; then run_for=${2:?--for needs seconds}; fi

# --- build prerequisites -------------------------------------------------------------------
if [[ -n ${POSTWARD_BIN_DIR:-} ]]; then
    :
elif ! command -v cargo >/dev/null; then
    echo "run-local.sh: cargo is missing: install the Rust toolchain (1.94 or newer, https://rustup.rs)" >&2
    exit 1
fi
if command -v apt-get >/dev/null; then
    pm=apt-get cc_pkg=gcc pam_pkg=libpam0g-dev
elif command -v dnf >/dev/null; then
    pm=dnf cc_pkg=gcc pam_pkg=pam-devel
else
    pm="" cc_pkg=gcc pam_pkg="the PAM development library (libpam.so)"
fi
missing=()
command -v cc >/dev/null || missing+=("$cc_pkg")
if command -v cc >/dev/null; then
    probe=$(mktemp)
    printf 'int main(void) { return 0; }\n' | cc -x c - -lpam -o "$probe" 2>/dev/null || missing+=("$pam_pkg")
    rm -f "$probe"
else
    missing+=("$pam_pkg")
fi
if [[ -z ${POSTWARD_BIN_DIR:-} && ${#missing[@]} -gt 0 ]]; then
    if [[ $(id -u) == 0 && -n $pm ]]; then
        echo "run-local.sh: installing build prerequisites: ${missing[*]}"
        if [[ $pm == apt-get ]]; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
                || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }
        else
            dnf install -y -q "${missing[@]}"
        fi
    else
        how=${pm:+"sudo $pm install -y ${missing[*]}"}
        echo "run-local.sh: missing build prerequisites: ${missing[*]}; install them first${how:+: $how}" >&2
        exit 1
    fi
fi

# --- build, and where cargo put the binaries ----------------------------------------------
if [[ -n ${POSTWARD_BIN_DIR:-} ]]; then
    bin=$POSTWARD_BIN_DIR
else
    if [[ "${POSTWARD_PROFILE:-release}" == dev ]]; then
        cargo build --workspace --bins
        profile=debug
    else
        cargo build --release --workspace --bins
        profile=release
    fi
    # CARGO_TARGET_DIR, .cargo/config.toml's build.target-dir or ./target: cargo knows which.
    target=$(cargo metadata --format-version 1 --no-deps 2>/dev/null | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    bin=${target:-${CARGO_TARGET_DIR:-$top/target}}/$profile
fi
for d in greyd policyd authd; do
    [[ -x $bin/postward-$d ]] || { echo "run-local.sh: $bin/postward-$d was not built" >&2; exit 1; }
done

rundir=${POSTWARD_RUN_DIR:-$top/run}
mkdir -p "$rundir"
log=$rundir/postward.log
: >"$log"

# --- who the daemons run as, and who may connect ------------------------------------------
server_lines=""
run_as="$(id -un)"
reach="Postfix's smtpd runs as user postfix and cannot connect to sockets of user $run_as; run this
script as root, or give the sockets to a group postfix is in (server.socket_group)"
if [[ $(id -u) == 0 ]]; then
    run_as=nobody
    chown nobody "$rundir"
    server_lines='user = "nobody"'
    reach="no postfix group on this machine: sockets are mode 0660 for user nobody only"
    if getent group postfix >/dev/null; then
        server_lines+=$'\nsocket_group = "postfix"'
        reach=""
    fi
fi

# One configuration file per daemon: [server] as above, plus its own sections.
config() { # name socket extra-sections
    local file=$rundir/$1.toml
    printf '[server]\nlisten = ["unix:%s"]\nsocket_mode = "0660"\n%s\n%s' "$2" "$server_lines" "$3" >"$file.tmp"
    chmod 644 "$file.tmp"
    mv -f "$file.tmp" "$file"
    echo "$file"
}

dns_note="DNS from /etc/resolv.conf"
policyd_extra=""
if [[ -n ${POSTWARD_DNS:-} ]]; then
    policyd_extra=$(printf '[dns]\nnameservers = ["%s"]\nattempts = 1\ntimeout = "1s"\n' "$POSTWARD_DNS")
    dns_note="DNS from $POSTWARD_DNS only"
elif [[ -n "$run_for" ]]; then
    # The smoke check (CI) must send nothing beyond loopback: SPF lookups go to a closed
    # loopback port, so every SPF result is temperror (deferred), answered within about 2 s.
    policyd_extra=$'[dns]\nnameservers = ["127.0.0.1:9"]\nattempts = 1\ntimeout = "1s"\n'
    dns_note="DNS sent to the closed port 127.0.0.1:9 (smoke test): SPF answers temperror"
fi

# authd's accounts: a passwd-file with one demo user whose password is made up on the first
# run (kept in demo-password). Both are written whole (temporary file, then rename) and made
# again when either is missing or the entry is not a SHA512-CRYPT hash of a password.
if [[ ! -s $rundir/demo-password ]] || ! grep -q '^demo@localhost:{SHA512-CRYPT}\$6\$' "$rundir/passwd" 2>/dev/null; then
    head -c 12 /dev/urandom | base64 | tr -d '/+=' >"$rundir/demo-password.tmp"
    hash=$("$bin/postward-authd" pw -s SHA512-CRYPT -p "$(cat "$rundir/demo-password.tmp")")
    [[ $hash == '{SHA512-CRYPT}$6$'* ]] || { echo "run-local.sh: postward-authd pw failed: $hash" >&2; exit 1; }
    printf 'demo@localhost:%s::::::\n' "$hash" >"$rundir/passwd.tmp"
    chmod 644 "$rundir/passwd.tmp"
    mv -f "$rundir/passwd.tmp" "$rundir/passwd"
    chmod 600 "$rundir/demo-password.tmp"
    mv -f "$rundir/demo-password.tmp" "$rundir/demo-password"
fi

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

start() { # name socket config
    rm -f "$2"
    # STATE_DIRECTORY as under systemd's StateDirectory=: greyd's SQLite file, authd's secret.
    STATE_DIRECTORY=$rundir/state-$1 "$bin/postward-$1" --config "$3" >>"$log" 2>&1 &
    pids+=($!)
}
for d in greyd policyd authd; do
    mkdir -p "$rundir/state-$d"
    [[ $(id -u) == 0 ]] && chown nobody "$rundir/state-$d"
done
sock_greyd=$rundir/postward-greyd.sock sock_policyd=$rundir/postward-policyd.sock sock_auth=$rundir/postward-auth.sock
start greyd "$sock_greyd" "$(config greyd "$sock_greyd" "")"
start policyd "$sock_policyd" "$(config policyd "$sock_policyd" "$policyd_extra")"
start authd "$sock_auth" "$(config authd "$sock_auth" "$(printf '[passdb]\npath = "%s/passwd"\n' "$rundir")")"
for s in "$sock_greyd" "$sock_policyd" "$sock_auth"; do
    for _ in $(seq 100); do [[ -S $s ]] && break; sleep 0.1; done
    [[ -S $s ]] || { echo "run-local.sh: no socket $s; the log says why:" >&2; tail -20 "$log" >&2; exit 1; }
done
# Can Postfix's smtpd (user postfix) reach the sockets (search on every directory above them)?
if [[ -z $reach ]] && id postfix >/dev/null 2>&1 && command -v setpriv >/dev/null; then
    if ! setpriv --reuid=postfix --regid="$(id -g postfix)" --init-groups -- test -w "$sock_greyd" 2>/dev/null; then
        reach="user postfix cannot reach $rundir (a directory above it is closed to other users);
use a checkout under a directory postfix can search, or the packaged sockets"
    fi
fi

cat <<TXT

postward is running on built-in defaults, as user $run_as, logging to $log:
  postward-greyd    unix:$sock_greyd   (greylist in $rundir/state-greyd/greyd.sqlite)
  postward-policyd  unix:$sock_policyd (SPF; $dns_note)
  postward-authd    unix:$sock_auth    (SMTP AUTH; accounts in $rundir/passwd,
                    demo@localhost with the password in $rundir/demo-password)
TXT
if [[ -n $reach ]]; then
    printf '\nWARNING: %s\n' "$reach"
fi
cat <<TXT

Paste into /etc/postfix/main.cf (smtpd must not be chrooted to reach these paths; the
packaged sockets live in /var/spool/postfix/private/ instead, see README). With a daemon
down, Postfix answers 451 4.3.5 and mail waits: nothing is let through unchecked.

smtpd_recipient_restrictions =
    permit_mynetworks,
    permit_sasl_authenticated,
    reject_unauth_destination,
    check_policy_service unix:$sock_policyd,
    check_policy_service unix:$sock_greyd
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $sock_auth

Try authd: $bin/postward-authd test -a unix:$sock_auth demo@localhost
Add users: $bin/postward-authd pw -s SHA512-CRYPT   (then user@domain:{SHA512-CRYPT}…:::::: in $rundir/passwd)

TXT

if [[ -n "$run_for" ]]; then
    for s in "$sock_greyd" "$sock_policyd"; do
        "$bin/postward-bench" policy --target "unix:$s" --workload trivial \
            --connections 2 --requests 50 | tee "$rundir/check.txt"
        grep -q ", 0 errors" "$rundir/check.txt" || { echo "run-local.sh: $s did not answer cleanly" >&2; exit 1; }
    done
    "$bin/postward-authd" test -a "unix:$sock_auth" demo@localhost "$(cat "$rundir/demo-password")" \
        || { echo "run-local.sh: postward-authd did not accept the demo user" >&2; exit 1; }
    # In the background and waited for, so a SIGTERM is handled at once, not after the sleep.
    sleep "$run_for" &
    pids+=($!)
    wait $!
    echo "stopping after ${run_for}s"
    exit 0
fi
echo "Ctrl-C stops the daemons."
wait
