#!/usr/bin/env bash
# The demo network of nfp-gateway (examples/README.md): installs what a fresh
# Debian machine lacks, builds the gateway (release), writes sample mail as the demo NFPs
# with GnuPG (examples/make_samples.py, into target/demo/), then
#   1. prints `nfp-gateway check`'s decision on each sample;
#   2. runs the network live (examples/demo_network.py): a private Dovecot and
#      Postfix with a mailbox for every party, the Secretariat's gateway and
#      Austria's national gateway as `nfp-gateway run`, the samples sent to them
#      by SMTP, and every party's mailbox read with that party's GnuPG.
# Exits non-zero when anything differs from what the sample generator declared
# (a decision, a mail that should have arrived or should not have, a folder, the
# exit status on SIGTERM): the demo is also a smoke test. The gateways and the
# mail stack are stopped whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step says what it does, then how long it took.
phase=""
phase_started=0
finish() {
  if [ -n "$phase" ]; then
    echo "--- $phase: done in $(($(date +%s) - phase_started)) s" >&2
  fi
  phase=""
}
begin() {
  finish
  phase="$1"
  phase_started=$(date +%s)
  echo "--- $phase ..." >&2
}

begin "installing what this machine lacks (scripts/install-deps.sh)"
scripts/install-deps.sh
target="${CARGO_TARGET_DIR:-target}"
out="$target/demo"
# NFP_GATEWAY_BIN: a gateway binary built already (the test suite passes its own).
if [ -n "${NFP_GATEWAY_BIN:-}" ]; then
  gateway="$NFP_GATEWAY_BIN"
else
  # The release build, as the package has it: about 7 minutes the first
  # time on 2 cores, seconds after that (bench/RESULTS.md, section 7).
  # `scripts/test.sh` builds the test profile on its own.
  begin "building the gateway (cargo build --release; the first build takes about 7 minutes, cargo shows each crate)"
  cargo build --locked --release
  gateway="$target/release/nfp-gateway"
fi
finish

# Dovecot and Postfix switch users: the mail stack needs root.
sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)
live=("${sudo[@]}" python3 examples/demo_network.py)
trap '"${live[@]}" stop "$out" || true' EXIT

start=$(date +%s%N)
echo
begin "writing sample mail as the demo NFPs (GnuPG) and judging it"
echo "=== 1. nfp-gateway check: the decision on each sample ==="
echo
python3 examples/make_samples.py "$out"
echo
status=0
python3 examples/make_samples.py --check "$gateway" "$out" || status=$?

echo
begin "running the network live"
echo "=== 2. The network live: the samples sent by SMTP to the running gateways ==="
echo
"${live[@]}" run "$gateway" "$out" || status=$?
finish
elapsed=$((($(date +%s%N) - start) / 1000000))

cat <<EOF

Demo in $((elapsed / 1000)).$(printf %03d $((elapsed % 1000))) s after the build. One decision in full:
  $gateway --config examples/gateway.toml check --pretty $out/messages/assistance-AT.eml
EOF
exit "$status"
