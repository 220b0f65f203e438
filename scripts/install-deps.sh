#!/usr/bin/env bash
# Installs, from Debian's packages, what nfp-gateway's build, demo and tests
# need and this machine lacks. Safe to run again: it installs only what is missing.
#
# The Rust toolchain itself (cargo, rustc >= 1.85) must already be on PATH:
# Debian 12's own rustc is too old, and rustup is how the toolchain arrives.
set -euo pipefail

packages=(
  # build: Sequoia's OpenSSL backend, C compiler for -sys crates
  build-essential pkg-config libssl-dev libclang-dev
  # real OpenPGP peers for the fixtures: GnuPG and Sequoia's sq
  gnupg gpg-agent gpg-wks-client sq
  # rnp (Thunderbird's OpenPGP library): writes the LibrePGP OCB packet that
  # GnuPG 2.4 sends, which the gateway must name precisely (tests/fixtures)
  rnp
  # systemd-analyze, for the service unit's sandbox rating
  systemd
  # the private mail stack of the integration tests, demo and benchmarks
  # (tests/mailstack): a real Dovecot (IMAP, LMTP) and Postfix on loopback
  dovecot-imapd dovecot-lmtpd postfix openssl
  # the store's second engine: a private PostgreSQL cluster per test run on a
  # loopback port of its own (tests/pg/cluster.sh), and psql for the schema
  # check (tests/pg/schema_parity.py). The package also creates its own "main"
  # cluster (port 5432), and may start it where an init system runs; the tests
  # never use it.
  postgresql
  # a real browser for the pages people read (the Secretariat's report):
  # headless, on local files (tests/e2e/browser.py)
  chromium
)
# The fixture generator needs a python3 (3.9 or later); any on PATH will do.
command -v python3 >/dev/null 2>&1 || packages+=(python3)
# pip, for Babel (below): Debian's python3 comes without it.
python3 -m pip --version >/dev/null 2>&1 || packages+=(python3-pip)
# OpenPGP.js 6 (Proton's and Mailvelope's library) makes the RFC 9580 fixtures
# (tests/fixtures/openpgpjs): Node 18 or later and npm; any on PATH will do
# (Debian's nodejs and npm where none is).
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo is not on PATH; install a Rust toolchain >= 1.85 (rustup) first" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Without this answer Postfix's package configures itself as an "Internet Site"
  # listening on every interface. The tests run private instances (postfix -c DIR)
  # and need nothing under /etc/postfix.
  if [[ " ${missing[*]} " == *" postfix "* ]]; then
    echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  fi
  started=$(date +%s)
  echo "install-deps: apt-get update" >&2
  $sudo apt-get update -qq
  # One line per package fetched and set up, so that a long installation
  # shows it is moving.
  $sudo apt-get install -y -q -o Dpkg::Use-Pty=0 --no-install-recommends "${missing[@]}" \
    | { grep --line-buffered -E '^(Get:|Setting up )' || true; } \
    | sed -u -E 's/^Get:([0-9]+) [^ ]+ [^ ]+ [^ ]+ ([^ ]+) .*/install-deps: fetched \2 (\1)/; s/^Setting up ([^ ]+) .*/install-deps: set up \1/' >&2
  echo "install-deps: ${#missing[@]} packages installed in $(($(date +%s) - started)) s" >&2
fi

# OpenPGP.js, exactly as package-lock.json pins it, from the npm registry.
openpgpjs="$(cd "$(dirname "$0")/.." && pwd)/tests/fixtures/openpgpjs"
if [ ! -f "$openpgpjs/node_modules/openpgp/package.json" ]; then
  echo "install-deps: installing OpenPGP.js (npm ci in tests/fixtures/openpgpjs)" >&2
  npm ci --prefix "$openpgpjs" --no-audit --no-fund --loglevel=error >/dev/null
fi

# A Python package, pinned, from PyPI, so that whichever python3 is first on
# PATH has it (Debian's python3-* packages serve /usr/bin/python3 only):
# pypi NAME VERSION WHY.
pypi() {
  local installed
  installed="$(python3 -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || true)"
  if [ "$installed" != "$2" ]; then
    echo "install-deps: installing $1 $2 from PyPI ($3)" >&2
    python3 -m pip install --quiet --disable-pip-version-check "$1==$2" \
      || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$1==$2"
  fi
}

# Babel: its copy of the Unicode CLDR gives the State names of
# rules/states.toml (rules/make_states.py; tests/classify.rs checks the
# committed file against it).
pypi babel 2.19.0 "CLDR 49"
# pycountry: ISO 3166-1's official names of the States and their
# translations (Debian's iso-codes data), the second source of rules/states.toml.
pypi pycountry 26.2.16 "ISO 3166-1 names"
# Prometheus's own Python client: its strict OpenMetrics parser reads the
# gateway's /metrics as a scraper would (tests/e2e/scenarios.py, operations).
pypi prometheus-client 0.26.0 "OpenMetrics parser"
