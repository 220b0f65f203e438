#!/usr/bin/env bash
# The Debian package on this machine, as an operator meets it (tests/package.rs):
#   install -> the user, directories and files are there, the service is
#   neither enabled nor started, the man pages and completions work;
#   first start as README's "Install on a server" says (configuration from the
#   installed example, a key made by the installed binary, `migrate`,
#   `config check` as the service user);
#   the demo network on the installed binary;
#   remove (configuration and store stay), purge (both gone), and purge with
#   NFP_GATEWAY_KEEP_DATA=1 (both kept).
# Usage: tests/package/install.sh PACKAGE.deb   (root or sudo; changes this machine)
set -euo pipefail
cd "$(dirname "$0")/../.."
deb=$(realpath "$1")
sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
apt=("${sudo[@]}" apt-get -y -q -o Dpkg::Use-Pty=0)
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo; echo "=== $* ==="; }

if dpkg-query -W -f='${Status}' nfp-gateway 2>/dev/null | grep -q installed; then
  fail "nfp-gateway is installed on this machine already; this test installs and purges it"
fi
trap '"${apt[@]}" purge nfp-gateway >/dev/null 2>&1 || true; "${sudo[@]}" rm -rf /etc/nfp-gateway /var/lib/nfp-gateway' EXIT

step "install $(basename "$deb")"
"${apt[@]}" install "$deb"
[ "$(command -v nfp-gateway)" = /usr/bin/nfp-gateway ] || fail "no /usr/bin/nfp-gateway"
/usr/bin/nfp-gateway --version
getent passwd nfp-gateway | grep -q ':/var/lib/nfp-gateway:/usr/sbin/nologin$' || fail "no system user nfp-gateway: $(getent passwd nfp-gateway)"
[ "$(stat -c '%a %U %G' /var/lib/nfp-gateway)" = "700 nfp-gateway nfp-gateway" ] || fail "/var/lib/nfp-gateway: $(stat -c '%a %U %G' /var/lib/nfp-gateway)"
[ "$(stat -c '%a %U %G' /etc/nfp-gateway)" = "750 root nfp-gateway" ] || fail "/etc/nfp-gateway: $(stat -c '%a %U %G' /etc/nfp-gateway)"
[ -z "$(ls -A /etc/nfp-gateway)" ] || fail "the package put a configuration in place"
for f in /usr/lib/systemd/system/nfp-gateway.service /usr/lib/sysusers.d/nfp-gateway.conf \
  /usr/lib/tmpfiles.d/nfp-gateway.conf /usr/share/doc/nfp-gateway/README.md \
  /usr/share/doc/nfp-gateway/copyright /usr/share/doc/nfp-gateway/examples/gateway.toml \
  /usr/share/nfp-gateway/templates/ru/acknowledgement.hbs /usr/share/nfp-gateway/rules/classify.toml \
  /usr/share/man/man1/nfp-gateway.1.gz /usr/share/man/man1/nfp-gateway-keys-generate.1.gz; do
  [ -f "$f" ] || fail "missing $f"
done
# Not enabled, not started: no wants link, whatever the init system.
if ls /etc/systemd/system/*.wants/nfp-gateway.service >/dev/null 2>&1; then fail "the service was enabled"; fi
# (/proc read directly: procps, which has pgrep, is not on every Debian machine.)
if grep -qsx nfp-gateway /proc/[0-9]*/comm; then fail "a gateway runs after installation"; fi
# The unit passes systemd's own check of its directives and paths.
systemd-analyze verify /usr/lib/systemd/system/nfp-gateway.service
# Every installed man page is valid roff that names its command; the
# completions load and complete the subcommands.
for page in /usr/share/man/man1/nfp-gateway*.1.gz; do
  zcat "$page" | grep -q '^\.SH NAME' || fail "$page has no NAME section"
done
zcat /usr/share/man/man1/nfp-gateway-check.1.gz | grep -q -- 'now' || fail "check's man page does not describe --now"
zcat /usr/share/man/man1/nfp-gateway.1.gz | grep -q 'NFP_GATEWAY_LOG_FORMAT' || fail "nfp-gateway(1) does not name the environment"
words=$(bash -c 'source /usr/share/bash-completion/completions/nfp-gateway
  COMP_WORDS=(nfp-gateway ro); COMP_CWORD=1; COMP_LINE="nfp-gateway ro"; COMP_POINT=${#COMP_LINE}
  $(complete -p nfp-gateway | sed -n "s/.*-F \\([^ ]*\\).*/\\1/p") nfp-gateway ro nfp-gateway
  echo "${COMPREPLY[*]}"')
[ "$words" = rollcall ] || fail "bash completion of 'nfp-gateway ro': '$words'"
grep -q 'rollcall' /usr/share/zsh/vendor-completions/_nfp-gateway || fail "zsh completion"
grep -q 'rollcall' /usr/share/fish/vendor_completions.d/nfp-gateway.fish || fail "fish completion"

step "first start, as README's 'Install on a server' says"
etc=/etc/nfp-gateway
# The example configuration, and the demo network's directory and certificates
# standing in for the real ones the Secretariat publishes.
"${sudo[@]}" install -m 0640 -g nfp-gateway /usr/share/doc/nfp-gateway/examples/gateway.toml "$etc/gateway.toml"
"${sudo[@]}" install -m 0640 -g nfp-gateway examples/directory.toml "$etc/directory.toml"
"${sudo[@]}" install -d -m 0750 -g nfp-gateway "$etc/certs" "$etc/keys"
"${sudo[@]}" install -m 0640 -g nfp-gateway examples/certs/*.asc "$etc/certs/"
"${sudo[@]}" rm "$etc/certs/gateway.asc"
"${sudo[@]}" python3 - "$etc/gateway.toml" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = s.replace('database = "sqlite://nfp-gateway.db"', 'database = "sqlite:///var/lib/nfp-gateway/nfp-gateway.db"')
# The [imap] and [smtp] sections, uncommented as an operator would.
for section in ("imap", "smtp"):
    block = re.search(r"^# \[%s\]\n((?:# .*\n)+)" % section, s, re.M).group(0)
    lines = [l[2:] for l in block.splitlines(True) if not l.startswith("# # ")]
    s = s.replace(block, "".join(lines))
open(p, "w").write(s)
PY
for f in imap-password smtp-password; do
  echo "not-a-real-password" | "${sudo[@]}" install -m 0640 -g nfp-gateway /dev/stdin "$etc/$f"
done
as_service=("${sudo[@]}" runuser -u nfp-gateway --)
[ "$(id -u)" = 0 ] || as_service=(sudo -u nfp-gateway)
# The key: made by the installed binary, as root, then given to the service.
"${sudo[@]}" nfp-gateway --config "$etc/gateway.toml" keys generate --out "$etc/keys/gateway.sec.asc"
"${sudo[@]}" chgrp nfp-gateway "$etc/keys/gateway.sec.asc"
"${sudo[@]}" chmod 0640 "$etc/keys/gateway.sec.asc"
"${as_service[@]}" nfp-gateway --config "$etc/gateway.toml" migrate
[ "$(stat -c '%U' /var/lib/nfp-gateway/nfp-gateway.db)" = nfp-gateway ] || fail "the store is not the service's"
"${as_service[@]}" nfp-gateway --config "$etc/gateway.toml" config check

step "the demo network on the installed binary"
NFP_GATEWAY_BIN=/usr/bin/nfp-gateway scripts/demo.sh >/tmp/nfp-gateway-package-demo.log 2>&1 \
  || { tail -40 /tmp/nfp-gateway-package-demo.log; fail "the demo on /usr/bin/nfp-gateway"; }
grep "every mail arrived where it should" /tmp/nfp-gateway-package-demo.log

step "remove: the configuration and the store stay"
"${apt[@]}" remove nfp-gateway
[ ! -e /usr/bin/nfp-gateway ] || fail "/usr/bin/nfp-gateway is left after remove"
[ ! -e /usr/share/man/man1/nfp-gateway.1.gz ] || fail "man pages left after remove"
[ -f "$etc/gateway.toml" ] && [ -f /var/lib/nfp-gateway/nfp-gateway.db ] || fail "remove deleted the configuration or the store"

step "purge: the configuration, its key and the store are deleted"
"${apt[@]}" purge nfp-gateway
[ ! -e /etc/nfp-gateway ] && [ ! -e /var/lib/nfp-gateway ] || fail "purge left files: $(ls -d /etc/nfp-gateway /var/lib/nfp-gateway 2>/dev/null)"
! dpkg-query -W -f='${Status}' nfp-gateway 2>/dev/null | grep -q "installed" || fail "still installed"
left=$(dpkg-query -W -f='${db:Status-Abbrev}' nfp-gateway 2>/dev/null || true)
case "$left" in ""|"un "*|"pn "*) ;; *) fail "dpkg still knows nfp-gateway: '$left'" ;; esac

step "purge with NFP_GATEWAY_KEEP_DATA=1: both kept"
"${apt[@]}" install "$deb" >/dev/null
echo 'role = "secretariat"' | "${sudo[@]}" install -m 0640 -g nfp-gateway /dev/stdin "$etc/gateway.toml"
"${sudo[@]}" touch /var/lib/nfp-gateway/nfp-gateway.db
"${sudo[@]}" env NFP_GATEWAY_KEEP_DATA=1 apt-get -y -q purge nfp-gateway
[ -f "$etc/gateway.toml" ] && [ -f /var/lib/nfp-gateway/nfp-gateway.db ] || fail "NFP_GATEWAY_KEEP_DATA=1 purge deleted data"
[ ! -e /usr/bin/nfp-gateway ] || fail "binary left after purge"

echo
echo "the package installs, starts as documented, runs the demo, removes and purges cleanly"
