#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks drive for real
# (HAProxy for golden outputs and the benchmark, nginx as a fast backend,
# wrk as the load generator, socat as the admins' usual socket client,
# resource-agents (ocf-tester, IPaddr2) and stunnel4 for the cluster,
# nagios4 to run the shipped checks under a real Nagios, chromium to load
# the stats page in a real browser, nftables to cut links between cluster
# namespaces in the partition tests).
# Idempotent: packages already present are not touched, and apt-get update
# runs only when something is missing. Needs root (CI runs as root).
set -euo pipefail
PACKAGES=(haproxy nginx-light wrk socat iproute2 curl resource-agents libxml2-utils procps stunnel4 nagios4 snmptrapd snmp smitools snmptt chromium nftables)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
bash "$(dirname "$0")/fetch-base-mibs.sh"  # IETF base MIBs for smilint/snmptrapd (Debian ships none)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install-debian-deps: missing ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packaged services must not hold ports or run beside our tests.
for svc in haproxy nginx stunnel4 nagios4 snmpd snmptrapd snmptt; do
    (command -v systemctl >/dev/null && systemctl disable --now "$svc" >/dev/null 2>&1) || true
    (command -v service >/dev/null && service "$svc" stop >/dev/null 2>&1) || true
done
