#!/usr/bin/env bash
# Runs molt's fuzz targets under cargo-fuzz (libFuzzer) and prints one line per target from
# libFuzzer's final stats: executions, seconds, executions per second, crashes.
#
#   tests/fuzz/run.sh [-runs=N | -max_total_time=S] [TARGET...]   (default: every target)
#
# The committed corpus (tests/fuzz/corpus/TARGET) seeds each run; new inputs go to
# tests/fuzz/scratch/TARGET (not committed). A crash stops the target, leaves its input in
# tests/fuzz/artifacts/TARGET and makes the script exit 1. Needs cargo-fuzz
# (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP=1 lets the stable toolchain take the -Z flags
# cargo-fuzz passes. No sanitizer (-s none): the code under test is safe Rust, where what a
# fuzzer can find is a panic (an assertion, an overflow with debug assertions on (-a), an
# out-of-bounds index), and libFuzzer catches those without ASan's 2-3x slowdown.
set -euo pipefail
cd "$(dirname "$0")/../.."
export RUSTC_BOOTSTRAP=1
limit="-max_total_time=10"
if [[ "${1:-}" == -* ]]; then limit="$1"; shift; fi
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    mapfile -t targets < <(cargo fuzz list --fuzz-dir tests/fuzz)
fi
# One build of every target (cheap once built).
cargo fuzz build --fuzz-dir tests/fuzz -s none -a >/dev/null 2>&1 ||
    { cargo fuzz build --fuzz-dir tests/fuzz -s none -a; exit 1; }
failed=0
for t in "${targets[@]}"; do
    mkdir -p "tests/fuzz/scratch/$t"
    log="tests/fuzz/scratch/$t.log"
    if cargo fuzz run --fuzz-dir tests/fuzz -s none -a "$t" "tests/fuzz/scratch/$t" "tests/fuzz/corpus/$t" -- \
        "$limit" -print_final_stats=1 >"$log" 2>&1; then
        crashes=0
    else
        crashes=1
        failed=1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    echo "fuzz $t: ${runs:-?} executions in ${secs:-?} s (${rate:-?}/s), crashes: $crashes"
    if [[ $crashes -ne 0 ]]; then
        grep -E "panicked|ERROR|SUMMARY" "$log" | head -5 || true
        ls "tests/fuzz/artifacts/$t" 2>/dev/null || true
    fi
done
# The upload target's streaming directories (empty once each run ends).
rmdir /dev/shm/molt-fuzz-upload-* "${TMPDIR:-/tmp}"/molt-fuzz-upload-* 2>/dev/null || true
exit $failed
