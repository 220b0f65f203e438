#!/usr/bin/env bash
# The demo network of nfp-gateway (examples/README.md): installs what a fresh
# Debian machine lacks, builds the gateway, writes sample mail as the demo NFPs
# with GnuPG (examples/make_samples.py, into target/demo/), and prints the
# gateway's decision on each. Exits non-zero when any decision differs from
# what the sample generator declared: the demo is also a smoke test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --locked

target="${CARGO_TARGET_DIR:-target}"
gateway="$target/debug/nfp-gateway"
out="$target/demo"

start=$(date +%s%N)
python3 examples/make_samples.py "$out"
echo
status=0
python3 examples/make_samples.py --check "$gateway" "$out" || status=$?
elapsed=$((($(date +%s%N) - start) / 1000000))

cat <<EOF

Samples made and judged in $((elapsed / 1000)).$(printf %03d $((elapsed % 1000))) s. To see a whole decision:
  $gateway --config examples/gateway.toml check --pretty $out/messages/assistance-AT.eml
EOF
exit "$status"
