#!/usr/bin/env bash
# Fuzz smoke run (CI's, and the same locally): seeds every corpus from ../shared/oracle, builds
# every target, and runs each for FUZZ_SECONDS (60) seconds, FUZZ_PARALLEL (2) at a time (one
# libFuzzer process per core), under FUZZ_SANITIZER (address). Fails if any target crashes,
# panics, leaks, times out on one input or runs out of memory; the failing target's log tail (with
# the input in Base64 when it is small) is printed, and the input is kept in fuzz/artifacts/.
# Needs cargo-fuzz on PATH (`cargo install cargo-fuzz --locked`).
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"
PARALLEL="${FUZZ_PARALLEL:-2}"
# address (the default: ASan) or none (faster builds and runs; panics and overflows still caught).
SANITIZER="${FUZZ_SANITIZER:-address}"
TARGETS=(pipeline wire_frame table_binary table_json director_config)

# cargo-fuzz builds with -Zsanitizer=address, and the machines have only a stable toolchain (whose
# rust-std ships the ASan runtime): RUSTC_BOOTSTRAP lets stable rustc take the -Z flags. Scoped to
# this script, so the main build never sees it.
export RUSTC_BOOTSTRAP=1

started=$(date +%s)
./seed.sh
cargo fuzz build --sanitizer "$SANITIZER"
echo "fuzz build: done after $(( $(date +%s) - started )) s"

extra_args() {
    case "$1" in
        # Two-table GLBD files are 1 075 272 bytes; libFuzzer's default cap would cut them.
        table_binary) echo "-max_len=1075272" ;;
    esac
}

run_target() {
    local target="$1"
    # shellcheck disable=SC2046 # extra_args is a list of words
    cargo fuzz run --sanitizer "$SANITIZER" "$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=25 -print_final_stats=1 $(extra_args "$target") \
        >"target/smoke-$target.log" 2>&1
}

failed=()
report() {
    local target="$1" status="$2" log="target/smoke-$1.log"
    if [[ "$status" -eq 0 ]]; then
        local done_line
        done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
        echo "fuzz $target: ok, $(ls "corpus/$target" | wc -l) corpus files; ${done_line:-no DONE line}"
    else
        failed+=("$target")
        echo "fuzz $target: FAILED (exit $status); last lines of $log:" >&2
        tail -n 80 "$log" >&2
    fi
}

mkdir -p target
for ((i = 0; i < ${#TARGETS[@]}; i += PARALLEL)); do
    batch=("${TARGETS[@]:i:PARALLEL}")
    pids=()
    for target in "${batch[@]}"; do
        run_target "$target" &
        pids+=("$!")
    done
    for j in "${!batch[@]}"; do
        status=0
        wait "${pids[$j]}" || status=$?
        report "${batch[$j]}" "$status"
    done
done

echo "fuzz smoke: ${#TARGETS[@]} targets, ${SECONDS_PER_TARGET} s each, $(( $(date +%s) - started )) s in all"
echo "fuzz: $(( ${#TARGETS[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz smoke failed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
