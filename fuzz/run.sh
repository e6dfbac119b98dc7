#!/usr/bin/env bash
# Runs every fuzz target (or those named) for a while, then merges what it found into the
# kept corpus (fuzz/corpus/<target>/, replayed by `cargo test`).
#
#   fuzz/run.sh [--time SECONDS] [target...]      default: 600 s each, every target
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and the machine's stable toolchain:
# RUSTC_BOOTSTRAP=1 lets it take the nightly-only flags cargo-fuzz passes. No sanitizer
# (`-s none`): the code is safe Rust, and the speed goes into coverage instead; debug
# assertions stay on (`-a`) so arithmetic overflow is a finding.
#
# A crash leaves its input in fuzz/artifacts/<target>/ and ends the run with a non-zero
# status; copy the input into fuzz/corpus/<target>/ once fixed, so the replay test keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=600
if [ "${1:-}" = "--time" ]; then secs=$2; shift 2; fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/targets/Cargo.toml | grep -v '^postward')
fi
export RUSTC_BOOTSTRAP=1
# The same flags for build and run, so run does not rebuild.
opts=(--fuzz-dir fuzz/targets -O -a -s none)
cargo fuzz build "${opts[@]}" >/dev/null

work=$(mktemp -d /tmp/postward-fuzz.XXXXXX)
status=0
printf '%-16s %12s %9s %10s %s\n' target executions exec/s corpus+ result
for t in "${targets[@]}"; do
    mkdir -p "$work/$t" "fuzz/artifacts/$t"
    cp fuzz/corpus/"$t"/* "$work/$t/"
    log="$work/$t.log"
    result=ok
    cargo fuzz run "${opts[@]}" "$t" "$work/$t" -- -max_total_time="$secs" -max_len=4096 \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1 || { result="CRASH (see $log)"; status=1; }
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    before=$(ls "fuzz/corpus/$t" | wc -l)
    # Keep only inputs that add coverage to the kept corpus.
    cargo fuzz run "${opts[@]}" "$t" "fuzz/corpus/$t" "$work/$t" -- -merge=1 >>"$log" 2>&1 || true
    after=$(ls "fuzz/corpus/$t" | wc -l)
    printf '%-16s %12s %9s %10s %s\n' "$t" "${runs:-?}" "${rate:-?}" "+$((after - before))" "$result"
done
echo "logs in $work"
# To shrink a grown corpus (seed-* and crash-* files are kept by hand):
#   cargo fuzz run --fuzz-dir fuzz/targets -O -a -s none T NEWDIR fuzz/corpus/T -- -set_cover_merge=1
exit $status
