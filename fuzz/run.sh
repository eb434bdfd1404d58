#!/usr/bin/env bash
# Builds the fuzz targets and runs each for SECONDS (default 30) from its
# committed corpus; fails on the first crash, panic, RSS above 2 GiB
# or input slower than 1 s. Usage: fuzz/run.sh [SECONDS] [TARGET...]
# (docs/fuzzing.md). Needs the nightly toolchain and cargo-fuzz. The build
# goes to SMBVAULT_FUZZ_TARGET_DIR (default ~/.cache/smbvault/fuzz-target).
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-30}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(security_descriptor ntlm_server rpc_pipe engine_frame)
# -s none: the crate forbids `unsafe`, and without AddressSanitizer the
# targets run 2-3x faster; -a: overflow checks and debug assertions on.
opts=(-s none -a)
# The instrumented build is kept outside the checkout, so that CI on a clean
# clone rebuilds only smbvault and the targets, not the ~200 dependencies
# (a cache like Garage's binary in ~/.cargo/bin).
target_dir="${SMBVAULT_FUZZ_TARGET_DIR:-$HOME/.cache/smbvault/fuzz-target}"
opts+=(--target-dir "$target_dir")
cargo +nightly fuzz build "${opts[@]}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t"
    # Inputs of crashes fixed in src/, replayed in order in one process
    # (engine_frame's are sequences: the state one input leaves matters).
    if [ -d "regressions/$t" ]; then
        mapfile -t inputs < <(find "regressions/$t" -type f | sort)
        echo "replaying ${#inputs[@]} regression inputs of $t"
        if ! cargo +nightly fuzz run "${opts[@]}" "$t" "${inputs[@]}" -- -timeout=1 -rss_limit_mb=2048 \
            >"$scratch/$t.regressions.log" 2>&1; then
            tail -n 60 "$scratch/$t.regressions.log"
            echo "a regression input of $t fails again (fuzz/regressions/$t/)"
            exit 1
        fi
    fi
    echo "fuzzing $t for ${secs}s"
    status=0
    cargo +nightly fuzz run "${opts[@]}" "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=1 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$scratch/$t.log" 2>&1 || status=$?
    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$scratch/$t.log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$scratch/$t.log"
        echo "fuzz target $t failed (exit $status); the input is in fuzz/artifacts/$t/"
        exit 1
    fi
done
