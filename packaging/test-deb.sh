#!/usr/bin/env bash
# Builds the Debian package with cargo-deb, installs it, and checks what the package promises:
# a mamori system user, /var/lib/mamori (0700, theirs), a hardened unit rated OK, an instance
# made by `mamori init` that serves HTTPS, and data that survive removal, purge and
# reinstallation. Needs root and apt (run by .ci/run); it changes the machine it runs on.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "test-deb: FAILED: $*" >&2; exit 1; }
say() { echo "test-deb: $*"; }

command -v cargo-deb >/dev/null 2>&1 || cargo install --locked --quiet cargo-deb
cargo deb -p mamori --strip --quiet
deb=$(ls -t target/debian/mamori_*_amd64.deb | head -1)
say "built $deb ($(du -h "$deb" | cut -f1))"
info=$(dpkg-deb --info "$deb"); contents=$(dpkg-deb --contents "$deb")
grep -q "Depends:.*adduser" <<<"$info" || fail "Depends lacks adduser"
# Signing keys live in SoftHSM2 tokens (issue #24).
grep -q "Depends:.*softhsm2" <<<"$info" || fail "Depends lacks softhsm2"
grep -q "Depends:.*fonts-noto-cjk" <<<"$info" || fail "Depends lacks fonts-noto-cjk (the font signed PDFs embed)"
grep -q "./lib/systemd/system/mamori.service" <<<"$contents" || fail "no unit"

export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq "./$deb" >/dev/null
say "installed"
getent passwd mamori | grep -q ":/var/lib/mamori:/usr/sbin/nologin" || fail "system user"
[ "$(stat -c '%a %U %G' /var/lib/mamori)" = "700 mamori mamori" ] || fail "/var/lib/mamori is $(stat -c '%a %U %G' /var/lib/mamori)"
version=$(/usr/bin/mamori --version)
grep -q "$(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)" <<<"$version" || fail "--version: $version"
exposure=$(systemd-analyze security --offline=true /lib/systemd/system/mamori.service 2>/dev/null \
  | sed -n 's/.*Overall exposure level for mamori.service: \([0-9.]*\).*/\1/p')
say "systemd-analyze security: exposure $exposure"
awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.0) }' || fail "exposure $exposure > 2.0"

# The one documented step after installing: the instance, as the service user.
pw=$(mktemp); echo 'package test passphrase 2026' > "$pw"; chmod 644 "$pw"
port=18443
runuser -u mamori -- mamori init --data /var/lib/mamori --facility 'パッケージ診療所' \
  --admin admin --admin-password-file "$pw" --host localhost --host 127.0.0.1 \
  --listen "127.0.0.1:$port" >/dev/null
rm -f "$pw"
[ "$(stat -c '%a %U' /var/lib/mamori/mamori.db)" = "600 mamori" ] || fail "database mode"
ca=$(mktemp); cp /var/lib/mamori/keys/ca.pem "$ca"
runuser -u mamori -- mamori serve --data /var/lib/mamori >/dev/null 2>&1 &
server=$!
for _ in $(seq 1 100); do
  curl -sf --cacert "$ca" "https://localhost:$port/api/v1/health" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -sf --cacert "$ca" "https://localhost:$port/api/v1/health" >/dev/null || fail "HTTPS health"
say "serves HTTPS as the mamori user"
kill -TERM "$server"; wait "$server" || true
rm -f "$ca"

# Removing and purging keep the records; reinstalling finds them whole.
apt-get remove -y -qq mamori >/dev/null
[ -f /var/lib/mamori/mamori.db ] || fail "remove deleted the data"
apt-get purge -y -qq mamori >/dev/null
[ -f /var/lib/mamori/mamori.db ] || fail "purge deleted the data"
getent passwd mamori >/dev/null || fail "purge removed the user who owns the data"
apt-get install -y -qq "./$deb" >/dev/null
[ "$(stat -c '%a %U' /var/lib/mamori)" = "700 mamori" ] || fail "reinstall changed the directory"
runuser -u mamori -- mamori verify --data /var/lib/mamori >/dev/null || fail "verify after reinstall"
say "data kept through remove, purge and reinstall; verify passes"

# Leave the machine as it was (CI machines are fresh; a developer's is not).
apt-get purge -y -qq mamori >/dev/null
rm -rf /var/lib/mamori
deluser --quiet --system mamori >/dev/null 2>&1 || true
say "ok"
