#!/usr/bin/env bash
# Fetches the IETF base MIBs that GPROXY-SUITE-MIB imports (SNMPv2-SMI,
# SNMPv2-TC, SNMPv2-CONF) plus SNMPv2-MIB (sysUpTime, snmpTrapOID), which
# Debian does not ship (libsmi2-common is empty, snmp-mibs-downloader is
# non-free and scrapes RFCs). The npm registry's `net-snmp` package carries
# them in package/lib/mibs; `npm pack` is its ordinary client.
#
# Usage: scripts/fetch-base-mibs.sh [DEST]   (default: .cache/mibs, or $GPROXY_MIB_CACHE)
# Point smilint at DEST with SMIPATH=DEST and snmptrapd/snmptranslate with -M DEST:<nagios dir>.
# Idempotent: nothing is fetched when every file is already there.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${1:-${GPROXY_MIB_CACHE:-$ROOT/.cache/mibs}}"
# Pinned so that every run validates the MIB against the same text.
VERSION="${NET_SNMP_NPM_VERSION:-3.29.2}"
MODULES=(SNMPv2-SMI SNMPv2-TC SNMPv2-CONF SNMPv2-MIB)

have_all() {
    local m
    for m in "${MODULES[@]}"; do
        grep -qs "^$m DEFINITIONS ::= BEGIN" "$DEST/$m.mib" || return 1
    done
}

if have_all; then
    exit 0
fi
command -v npm >/dev/null || { echo "fetch-base-mibs: npm is needed (apt-get install npm)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "net-snmp@$VERSION" >/dev/null 2>"$work/npm.err") || {
    echo "fetch-base-mibs: npm pack net-snmp@$VERSION failed:" >&2
    cat "$work/npm.err" >&2
    exit 1
}
members=()
for m in "${MODULES[@]}"; do
    members+=("package/lib/mibs/$m.mib")
done
tar -xzf "$work"/net-snmp-*.tgz -C "$work" "${members[@]}"
mkdir -p "$DEST"
for m in "${MODULES[@]}"; do
    install -m 0644 "$work/package/lib/mibs/$m.mib" "$DEST/$m.mib"
done
have_all || { echo "fetch-base-mibs: $DEST is incomplete after the download" >&2; exit 1; }
echo "fetch-base-mibs: ${MODULES[*]} in $DEST (net-snmp@$VERSION)"
