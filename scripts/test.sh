#!/usr/bin/env bash
# Runs every test of nfp-gateway on this machine, after installing what a
# fresh Debian machine lacks (scripts/install-deps.sh). CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo test --workspace --locked "$@"
