#!/usr/bin/env bash
# fuzz/pack.sh [TARGET...]: after a campaign (fuzz/run.sh), shrinks each
# target's corpus (cargo fuzz cmin: the fewest inputs with the same coverage)
# and packs it as corpus/<target>.tar.gz, the committed form that
# tests/fuzz_corpus.rs runs in CI and fuzz/run.sh unpacks to start from.
set -euo pipefail
cd "$(dirname "$0")"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(check mime openpgp contact config directory)
for t in "${targets[@]}"; do
    [ -d "corpus/$t" ] || continue
    cargo +nightly fuzz cmin -s none "$t" "corpus/$t" >/dev/null 2>&1
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
        -czf "corpus/$t.tar.gz" -C "corpus/$t" .
    echo "$t: $(find "corpus/$t" -type f | wc -l) inputs, $(stat -c %s "corpus/$t.tar.gz") bytes packed"
done
