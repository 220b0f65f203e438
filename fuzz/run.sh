#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] [TARGET...]: runs each cargo-fuzz target for SECONDS
# (default 600) on one core, from fuzz/seeds/<target> and the growing corpus
# fuzz/corpus/<target>, and prints a Markdown table of what each run did.
# Needs the nightly toolchain and cargo-fuzz (cargo install cargo-fuzz).
# The targets are built once, first: edits made while the campaign runs do
# not reach it. A crash is written to fuzz/artifacts/<target>/: once fixed,
# copy it to fuzz/regressions/<target>/, where tests/fuzz_corpus.rs keeps it.
# Afterwards, fuzz/pack.sh shrinks each corpus and packs it as
# corpus/<target>.tar.gz, the form that is committed.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(check mime openpgp contact config directory)
cargo +nightly fuzz build -s none >/dev/null
bin=target/x86_64-unknown-linux-gnu/release
mkdir -p logs
echo "built at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- ../gateway || echo ' (with uncommitted changes)')" >&2
rows=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    # Start from the committed corpus (fuzz/pack.sh made it).
    if [ -f "corpus/$t.tar.gz" ] && [ -z "$(ls -A "corpus/$t")" ]; then
        tar -xzf "corpus/$t.tar.gz" -C "corpus/$t"
    fi
    log="logs/$t.log"
    status=0
    "$bin/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$seconds" -max_len=262144 \
        -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 "corpus/$t" "seeds/$t" \
        >"$log" 2>&1 || status=$?
    runs=$(grep -oP 'stat::number_of_executed_units:\s*\K\d+' "$log" | tail -1 || true)
    speed=$(grep -oP 'stat::average_exec_per_sec:\s*\K\d+' "$log" | tail -1 || true)
    cov=$(grep -oP '\bcov: \K\d+' "$log" | tail -1 || true)
    ft=$(grep -oP '\bft: \K\d+' "$log" | tail -1 || true)
    caught=$(grep -c 'panicked at' "$log" || true)
    crashes=$(find "artifacts/$t" -type f | wc -l)
    rows+=("| $t | $seconds | ${runs:-?} | ${speed:-?} | ${cov:-?} | ${ft:-?} | $(find "corpus/$t" -type f | wc -l) | $caught | $crashes | $status |")
done
echo "| target | seconds | executions | exec/s | coverage (edges) | features | corpus | dependency panics caught | crash artifacts | exit |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
