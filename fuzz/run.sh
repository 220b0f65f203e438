#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] [TARGET...]: runs each cargo-fuzz target for SECONDS
# (default 600) on one core, from fuzz/seeds/<target> and the growing corpus
# fuzz/corpus/<target>, and prints a Markdown table of what each run did.
# Needs the nightly toolchain and cargo-fuzz (cargo install cargo-fuzz).
# A crash is written to fuzz/artifacts/<target>/: copy it to
# fuzz/regressions/<target>/ once fixed, so that tests/fuzz_corpus.rs keeps it.
# Afterwards, `cargo +nightly fuzz cmin -s none TARGET` shrinks a corpus before
# it is committed.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(check mime openpgp contact config directory)
cargo +nightly fuzz build -s none "${targets[@]/#/}" >/dev/null 2>&1 || cargo +nightly fuzz build -s none
mkdir -p logs
rows=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="logs/$t.log"
    status=0
    cargo +nightly fuzz run -s none "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -max_len=262144 -timeout=20 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    runs=$(grep -oP 'stat::number_of_executed_units:\s*\K\d+' "$log" | tail -1 || true)
    speed=$(grep -oP 'stat::average_exec_per_sec:\s*\K\d+' "$log" | tail -1 || true)
    cov=$(grep -oP '\bcov: \K\d+' "$log" | tail -1 || true)
    ft=$(grep -oP '\bft: \K\d+' "$log" | tail -1 || true)
    crashes=$(find "artifacts/$t" -type f | wc -l)
    rows+=("| $t | $seconds | ${runs:-?} | ${speed:-?} | ${cov:-?} | ${ft:-?} | $(find "corpus/$t" -type f | wc -l) | $crashes | $status |")
done
echo "| target | seconds | executions | exec/s | coverage (edges) | features | corpus | crash artifacts | exit |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
