#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/Package.swift and runs each one for
# FUZZ_SECONDS. Exits non-zero when a target finds a crash, a timeout or an
# out-of-memory input, after printing the path of the input that did it.
#
#   bash fuzz/run.sh                          # every target, 60 s each
#   FUZZ_SECONDS=600 bash fuzz/run.sh FuzzFrames
#   bash fuzz/run.sh --reproduce FuzzFrames crash-file   # rerun one input
#
# Environment (all optional):
#   FUZZ_SECONDS   run time per target (default 60)
#   FUZZ_RSS_MB    libFuzzer -rss_limit_mb (default 2048)
#   FUZZ_TIMEOUT   seconds one input may take before it counts as a hang (default 10)
#   FUZZ_BUILD     SwiftPM scratch path (default ${TMPDIR:-/tmp}/wow-fuzz-build)
#   FUZZ_CONFIG    debug or release (default debug: half the build time, see docs/operations.md)
#   FUZZ_CORPUS    a directory to keep each target's corpus in across runs
#                  (default: a fresh temp directory seeded from the repo)
#
# The seeds are Tests/TunnelProtocolTests/Corpus/ plus fuzz/seeds/<target>/;
# they are copied, so a run never writes into the repository.
set -euo pipefail
cd "$(dirname "$0")"
FUZZ_DIR="$(pwd)"
ROOT="$(cd .. && pwd)"

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
FUZZ_RSS_MB="${FUZZ_RSS_MB:-2048}"
FUZZ_TIMEOUT="${FUZZ_TIMEOUT:-10}"
FUZZ_BUILD="${FUZZ_BUILD:-${TMPDIR:-/tmp}/wow-fuzz-build}"
FUZZ_CONFIG="${FUZZ_CONFIG:-debug}"
ALL_TARGETS=(FuzzFrames FuzzLegacy FuzzMemberlist)

# Seeds and dictionary of each target.
seed_dirs() {
    case "$1" in
        FuzzFrames) echo "$ROOT/Tests/TunnelProtocolTests/Corpus $FUZZ_DIR/seeds/frames" ;;
        FuzzLegacy) echo "$ROOT/Tests/TunnelProtocolTests/Corpus $FUZZ_DIR/seeds/legacy" ;;
        FuzzMemberlist) echo "$FUZZ_DIR/seeds/memberlist" ;;
        *) echo "error: unknown fuzz target '$1' (known: ${ALL_TARGETS[*]})" >&2; return 1 ;;
    esac
}
dictionary() {
    case "$1" in
        FuzzFrames) echo "$FUZZ_DIR/dict/frames.dict" ;;
        FuzzLegacy) echo "$FUZZ_DIR/dict/legacy.dict" ;;
        FuzzMemberlist) echo "$FUZZ_DIR/dict/memberlist.dict" ;;
    esac
}

build() {
    # The main package's pins, when there are any, so both build the same
    # dependency versions (Package.resolved is not committed).
    if [ ! -f Package.resolved ] && [ -f "$ROOT/Package.resolved" ]; then
        cp "$ROOT/Package.resolved" Package.resolved
    fi
    echo "== fuzz: building ${ALL_TARGETS[*]} ($FUZZ_CONFIG, --sanitize fuzzer, scratch path $FUZZ_BUILD)"
    local started=$SECONDS
    # SwiftPM's own --sanitize fuzzer, not -Xswiftc -sanitize=fuzzer: only
    # then does it leave the executables' entry point alone, so libFuzzer's
    # main() links (see docs/operations.md, "Fuzzing").
    swift build --package-path "$FUZZ_DIR" --scratch-path "$FUZZ_BUILD" -c "$FUZZ_CONFIG" --sanitize fuzzer
    echo "== fuzz: build took $((SECONDS - started)) s"
    BIN="$(swift build --package-path "$FUZZ_DIR" --scratch-path "$FUZZ_BUILD" -c "$FUZZ_CONFIG" --sanitize fuzzer --show-bin-path)"
}

if [ "${1:-}" = "--reproduce" ]; then
    [ $# -eq 3 ] || { echo "usage: $0 --reproduce TARGET INPUT" >&2; exit 2; }
    seed_dirs "$2" >/dev/null
    build
    # Swift's backtracer stays on here: it prints the symbolicated stack of the trap.
    exec "$BIN/$2" -rss_limit_mb="$FUZZ_RSS_MB" -timeout="$FUZZ_TIMEOUT" "$3"
fi

TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
for target in "${TARGETS[@]}"; do seed_dirs "$target" >/dev/null; done

build

WORK="$(mktemp -d "${TMPDIR:-/tmp}/wow-fuzz.XXXXXX")"
failed=()
for target in "${TARGETS[@]}"; do
    if [ -n "${FUZZ_CORPUS:-}" ]; then
        corpus="$FUZZ_CORPUS/$target"
    else
        corpus="$WORK/corpus-$target"
    fi
    mkdir -p "$corpus" "$WORK/artifacts-$target"
    for dir in $(seed_dirs "$target"); do
        cp "$dir"/* "$corpus"/
    done
    log="$WORK/$target.log"
    echo "== fuzz: $target for ${FUZZ_SECONDS} s ($(ls "$corpus" | wc -l) inputs in $corpus)"
    status=0
    # Swift's backtracer would take the trap's signal first and exit without
    # libFuzzer saving the input; --reproduce keeps it for the stack trace.
    SWIFT_BACKTRACE=enable=no "$BIN/$target" "$corpus" \
        -max_total_time="$FUZZ_SECONDS" \
        -rss_limit_mb="$FUZZ_RSS_MB" \
        -timeout="$FUZZ_TIMEOUT" \
        -dict="$(dictionary "$target")" \
        -artifact_prefix="$WORK/artifacts-$target/" \
        -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    # The last status line: "#N ... cov: C ft: F corp: K/S ... exec/s: E rss: R".
    progress="$(grep -E '^#[0-9]+' "$log" | tail -1 || true)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")"
    echo "   ${progress:-no progress line}"
    echo "   average exec/s: ${rate:-?}"
    if [ "$status" -ne 0 ]; then
        echo "== fuzz: $target FAILED (libFuzzer exit $status); from $log:" >&2
        # Swift's own message (what trapped, where), then libFuzzer's report.
        grep -E 'Fatal error|Precondition failed|Assertion failed|ERROR: libFuzzer|SUMMARY' "$log" >&2 || true
        grep -v '^#[0-9]' "$log" | tail -25 >&2
        for artifact in "$WORK/artifacts-$target"/*; do
            [ -e "$artifact" ] || continue
            echo "== fuzz: FINDING: $artifact" >&2
            echo "   reproduce: bash fuzz/run.sh --reproduce $target $artifact" >&2
        done
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "== fuzz: findings in ${failed[*]}; inputs and logs kept in $WORK" >&2
    exit 1
fi
rm -rf "$WORK"
echo "== fuzz: no findings in ${TARGETS[*]}"
