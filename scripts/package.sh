#!/usr/bin/env bash
# Builds the Debian package of nfp-gateway: target/debian/nfp-gateway_<version>_<arch>.deb.
#
#   scripts/package.sh                         # release build, then the package
#   scripts/package.sh --binary PATH --out DIR # package a binary built already (the tests' own)
#
# The package holds the binary, the systemd unit with its sysusers.d and
# tmpfiles.d files, man pages and bash/zsh/fish completions generated from
# the command line's own definitions (`nfp-gateway generate`), the mail
# templates and classification rules as reference copies (the binary has them
# built in), the annotated example configuration and directory, the README
# and the licence. Its maintainer scripts create the service's user and
# directories with systemd-sysusers and systemd-tmpfiles and never enable or
# start the service: an unconfigured gateway does not run. Purge deletes the
# configuration and the store unless NFP_GATEWAY_KEEP_DATA=1 is set for it
# (README, "Install on a server").
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
out="${CARGO_TARGET_DIR:-target}/debian"
while (($#)); do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "usage: scripts/package.sh [--binary PATH] [--out DIR]" >&2; exit 2 ;;
  esac
done
if [ -z "$binary" ]; then
  echo "package: cargo build --release (a first build takes about 10 minutes on 2 cores)" >&2
  cargo build --locked --release
  binary="${CARGO_TARGET_DIR:-target}/release/nfp-gateway"
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' gateway/Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
name="nfp-gateway_${version}_${arch}"
work=$(mktemp -d /tmp/nfp-gateway-package-XXXXXX)
trap 'rm -rf "$work"' EXIT
root="$work/$name"

# Files, mode 0644 unless said; directories 0755, all owned by root.
install -d "$root/DEBIAN"
install -D -m 0755 "$binary" "$root/usr/bin/nfp-gateway"
# Debug information stays out (the release profile keeps line tables only;
# a test build's binary is ten times the size with it).
strip --strip-debug "$root/usr/bin/nfp-gateway"
install -D -m 0644 systemd/nfp-gateway.service "$root/usr/lib/systemd/system/nfp-gateway.service"
install -D -m 0644 systemd/nfp-gateway.sysusers "$root/usr/lib/sysusers.d/nfp-gateway.conf"
install -D -m 0644 systemd/nfp-gateway.tmpfiles "$root/usr/lib/tmpfiles.d/nfp-gateway.conf"

share="$root/usr/share/nfp-gateway"
for f in templates/*/*.hbs rules/classify.toml rules/states.toml rules/model.tsv; do
  install -D -m 0644 "$f" "$share/$f"
done

doc="$root/usr/share/doc/nfp-gateway"
install -D -m 0644 README.md "$doc/README.md"
install -D -m 0644 examples/gateway.toml "$doc/examples/gateway.toml"
install -D -m 0644 examples/directory.toml "$doc/examples/directory.toml"
install -D -m 0644 keys/README.md "$doc/keys.md"
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: nfp-gateway"
  echo
  echo "Files: *"
  echo "License: AGPL-3.0-or-later"
  echo
  echo "License: AGPL-3.0-or-later"
  sed 's/^$/./; s/^/ /' LICENSE
} >"$doc/copyright"
chmod 0644 "$doc/copyright"

# Man pages and completions from the clap definitions of the binary packaged.
gen="$work/generated"
"$root/usr/bin/nfp-gateway" generate --man "$gen/man" --completions "$gen/completions"
install -d "$root/usr/share/man/man1"
for page in "$gen"/man/*.1; do
  gzip -9n <"$page" >"$root/usr/share/man/man1/$(basename "$page").gz"
done
chmod 0644 "$root"/usr/share/man/man1/*.gz
install -D -m 0644 "$gen/completions/nfp-gateway.bash" "$root/usr/share/bash-completion/completions/nfp-gateway"
install -D -m 0644 "$gen/completions/_nfp-gateway" "$root/usr/share/zsh/vendor-completions/_nfp-gateway"
install -D -m 0644 "$gen/completions/nfp-gateway.fish" "$root/usr/share/fish/vendor_completions.d/nfp-gateway.fish"

# The shared libraries the binary links, as dpkg-shlibdeps names them.
mkdir -p "$work/shlibs/debian"
printf 'Source: nfp-gateway\n\nPackage: nfp-gateway\nArchitecture: any\n' >"$work/shlibs/debian/control"
shlibs=$(cd "$work/shlibs" && dpkg-shlibdeps -O -e"$root/usr/bin/nfp-gateway" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)

cat >"$root/DEBIAN/control" <<EOF
Package: nfp-gateway
Version: $version
Architecture: $arch
Maintainer: nfp-gateway developers <nfp-gateway@nfp-network.example>
Installed-Size: $size
Depends: $shlibs, systemd
Recommends: gnupg
Section: mail
Priority: optional
Description: secure OpenPGP mail gateway of the NFP network
 nfp-gateway watches a mailbox over IMAP, decrypts and verifies OpenPGP mail
 (PGP/MIME and inline), knows its sender only from a good signature by a
 registered certificate, classifies, stores and forwards it re-encrypted to
 each recipient, and keeps the network's directory. Anything it cannot
 authenticate is quarantined with a stable reason code.
 .
 The service is installed, neither enabled nor started: configure
 /etc/nfp-gateway/gateway.toml first (README, "Install on a server").
EOF

cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
# nfp-gateway: the service's user and directories, by systemd's own tools.
# The service is never enabled or started here: it needs a configuration.
# On an upgrade a running gateway is restarted on the new binary (its
# ExecStartPre, `config check`, refuses a store that needs `migrate`).
set -e
if [ "$1" = configure ]; then
  systemd-sysusers nfp-gateway.conf
  systemd-tmpfiles --create nfp-gateway.conf
  if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
    if [ -n "$2" ]; then
      systemctl try-restart nfp-gateway.service >/dev/null || true
    fi
  fi
fi
exit 0
EOF

cat >"$root/DEBIAN/prerm" <<'EOF'
#!/bin/sh
# nfp-gateway: a removed gateway stops first (an upgrade keeps it running
# until postinst restarts it on the new binary).
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl stop nfp-gateway.service >/dev/null 2>&1 || true
  systemctl disable nfp-gateway.service >/dev/null 2>&1 || true
fi
exit 0
EOF

cat >"$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
# nfp-gateway: purge deletes the configuration (its keys among it) and the
# store, unless NFP_GATEWAY_KEEP_DATA=1 is set for the purge. The system user
# stays, as Debian keeps system users: a uid given again to another account
# would own whatever copy of the gateway's files is left elsewhere.
set -e
if [ "$1" = purge ]; then
  if [ "${NFP_GATEWAY_KEEP_DATA:-}" = 1 ]; then
    echo "nfp-gateway: NFP_GATEWAY_KEEP_DATA=1: /etc/nfp-gateway and /var/lib/nfp-gateway are kept" >&2
  else
    rm -rf /etc/nfp-gateway /var/lib/nfp-gateway
  fi
  if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
  fi
fi
exit 0
EOF
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"

mkdir -p "$out"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out/$name.deb" >/dev/null
echo "$out/$name.deb"
