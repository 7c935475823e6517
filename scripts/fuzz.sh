#!/usr/bin/env bash
# fuzz.sh - run the cargo-fuzz targets in fuzz/ ("Fuzzing" in README.md).
#
# Usage: scripts/fuzz.sh --smoke           every target for FUZZ_SMOKE_SECONDS
#                                          (default 15) each; fails on a crash
#                                          (or on unformatted fuzz/ code)
#        scripts/fuzz.sh TARGET [SECONDS]  one target for SECONDS (default
#                                          600; 0 runs until interrupted)
#        scripts/fuzz.sh --list            the targets
#
# Runs on the stable toolchain: cargo-fuzz with --sanitizer none needs no
# nightly (AddressSanitizer would, and popferry forbids unsafe code, so it
# would have little to find). cargo-fuzz is installed with `cargo install
# --locked` when missing; libFuzzer is built from source and needs a C++
# compiler.
#
# Each target's corpus grows in fuzz/corpus/TARGET (git-ignored), seeded
# from fuzz/seeds/TARGET. A crash stops the run and leaves the input in
# fuzz/artifacts/TARGET/; replay it with
#   cd fuzz && cargo fuzz run --sanitizer none TARGET artifacts/TARGET/crash-...
set -euo pipefail

SELF=$(realpath "${BASH_SOURCE[0]}")
cd "$(dirname "$SELF")/../fuzz"

CARGO_FUZZ_VERSION=0.13
SANITIZER=(--sanitizer none)

usage() {
    sed -n '4,10s/^# \{0,1\}//p' "$SELF" >&2
    exit 2
}

ensure_cargo_fuzz() {
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
        cargo install --locked cargo-fuzz --version "^$CARGO_FUZZ_VERSION"
    fi
}

# Fuzz TARGET for SECONDS; libFuzzer's own output goes to stderr.
run_target() {
    local target=$1 seconds=$2
    mkdir -p "corpus/$target"
    cargo fuzz run "${SANITIZER[@]}" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1
}

smoke() {
    local seconds=${FUZZ_SMOKE_SECONDS:-15} target log failed=()
    log=$(mktemp)
    trap 'rm -f "$log"' RETURN
    cargo fmt -- --check
    cargo fuzz build "${SANITIZER[@]}"
    while read -r target; do
        if run_target "$target" "$seconds" 2>"$log"; then
            printf '%-16s %s\n' "$target" "$(grep -m1 -E '^#[0-9]+[[:space:]]+DONE' "$log" || echo finished)"
        else
            printf '%-16s CRASHED\n' "$target"
            tail -n 60 "$log"
            failed+=("$target")
        fi
    done < <(cargo fuzz list)
    if ((${#failed[@]})); then
        echo "fuzz smoke: crash in ${failed[*]}; inputs in fuzz/artifacts/" >&2
        return 1
    fi
    echo "fuzz smoke: no crash; ${SECONDS} s including the install and build"
}

case ${1:-} in
    --smoke)
        ensure_cargo_fuzz
        smoke
        ;;
    --list)
        ensure_cargo_fuzz
        cargo fuzz list
        ;;
    "" | -*) usage ;;
    *)
        ensure_cargo_fuzz
        run_target "$1" "${2:-600}"
        ;;
esac
