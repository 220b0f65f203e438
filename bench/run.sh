#!/usr/bin/env bash
# bench/run.sh [OUT]: issue 6's benchmarks in one run, on an otherwise idle
# machine; prints the report in Markdown on stdout (progress on stderr).
#
#   1. judgement throughput: `cargo bench --bench judge` (criterion) on the
#      fixed corpus of bench/corpus.py, against one `gpg --decrypt` subprocess
#      per message (bench/gpg_pipeline.py) and raw Sequoia decrypt+verify;
#   2. the daemon end to end on the real mail stack, against the stack alone,
#      at 10x the input and with a store of 100,000 messages (bench/daemon.py);
#   3. latency from SMTP acceptance to delivery with IMAP IDLE, and the idle
#      daemon's footprint (bench/latency.py).
# Needs what scripts/test.sh installs (GnuPG, Dovecot, Postfix).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench}
mkdir -p "$out"
out=$(cd "$out" && pwd)
log() { echo "== $*" >&2; }

log "building (release)"
cargo build --release --quiet
log "corpus"
rm -rf "$out/corpus"
python3 bench/corpus.py "$out/corpus" >&2
log "criterion: cargo bench --bench judge"
NFP_BENCH_CORPUS="$out/corpus" cargo bench --quiet --bench judge >&2
log "GnuPG pipeline"
python3 bench/gpg_pipeline.py "$out/corpus" >&2
log "the same with an RSA-3072 gateway key (what GnuPG pipelines are slowest at)"
rm -rf "$out/corpus-rsa"
python3 bench/corpus.py "$out/corpus-rsa" --gateway-algo rsa3072 --classes text20k-cv25519,att2m-cv25519 >&2
NFP_BENCH_CORPUS="$out/corpus-rsa" NFP_BENCH_LABEL=rsa-gateway- cargo bench --quiet --bench judge >&2
python3 bench/gpg_pipeline.py "$out/corpus-rsa" >&2

echo "# nfp-gateway benchmarks"
echo
echo "$(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- gateway || echo ' (with uncommitted changes)');"
echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/Mem:/{print $2}') GiB;"
echo "$(gpg --version | head -1), $(rustc --version)."
echo
echo "## 1. Judgement throughput (messages per second)"
echo
python3 bench/judgement_table.py "$out/corpus" target/criterion
echo
echo "With an RSA-3072 gateway key (every message decrypted with RSA):"
echo
python3 bench/judgement_table.py "$out/corpus-rsa" target/criterion --label=rsa-gateway- | head -n -2
echo
echo "## 2. The daemon end to end"
echo
log "daemon (bench/daemon.py: N = 50 and 500, and 500 again with 100,000 messages already stored)"
python3 bench/daemon.py --sizes 50,500 --prefill 100000 --bin target/release/nfp-gateway
echo
echo "## 3. Latency with IMAP IDLE, and the idle daemon"
echo
log "latency (bench/latency.py: 200 messages, one every 0.5 s; 60 s idle)"
python3 bench/latency.py --bin target/release/nfp-gateway | tail -n +3
echo
echo "## 4. Circular fan-out to the whole network"
echo
log "fan-out (bench/fanout.py: 57 NFPs and the Secretariat)"
python3 bench/fanout.py --bin target/release/nfp-gateway | tail -n +3
echo
log "fan-out (bench/fanout.py --recipients 290: the issue's size, with synthetic NFPs)"
python3 bench/fanout.py --bin target/release/nfp-gateway --recipients 290 | tail -n +3
echo
echo "## 5. Several instances on one PostgreSQL store"
echo
log "instances (bench/instances.py: 1, 2, 3 instances on PostgreSQL, 1 on SQLite; 500 messages)"
python3 bench/instances.py --bin target/release/nfp-gateway
echo
echo "## 6. Classification of prose without tags (issue 14)"
echo
log "classification (cargo bench --bench classify: the labelled corpus)"
cargo bench --quiet --bench classify | tail -n +3
