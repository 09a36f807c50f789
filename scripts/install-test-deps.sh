#!/usr/bin/env bash
# Installs the Debian packages Fleetroot's tests talk to (real peers: OpenSSL, SoftHSM2, GnuTLS, PostgreSQL, ...)
# and makes sure PostgreSQL is running on 127.0.0.1:5432. Installs only what is missing; runs apt-get update once.
set -euo pipefail

# package -> a file or command that proves it is installed
declare -A probes=(
  [openssl]=/usr/bin/openssl
  [softhsm2]=/usr/lib/softhsm/libsofthsm2.so
  [opensc]=/usr/bin/pkcs11-tool
  [gnutls-bin]=/usr/bin/certtool
  [mosquitto]=/usr/sbin/mosquitto
  [mosquitto-clients]=/usr/bin/mosquitto_pub
  [postgresql]=/usr/lib/postgresql
  [in-toto]=/usr/bin/in-toto-verify
  [python3-hvac]=/usr/lib/python3/dist-packages/hvac
  [cyclonedds-tools]=/usr/bin/ddsperf
  [libxml2-utils]=/usr/bin/xmllint
  [libengine-pkcs11-openssl]=/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
)

missing=()
for pkg in "${!probes[@]}"; do
  [ -e "${probes[$pkg]}" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-test-deps: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# PostgreSQL: start the cluster if it is not answering.
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$version" ]; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
fi
# A fresh install has no `test` database and requires passwords on TCP; make it match the test setup.
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
    su postgres -c "psql -q -c 'create database test'" >/dev/null 2>&1 || true
  fi
fi
echo "install-test-deps: ok"
