#!/usr/bin/env bash
# Benchmarks smbvault against Samba on this machine: builds the release
# server and the smbbench client, starts both servers privately on loopback
# (fresh data directories under /dev/shm), runs every workload against each
# and prints a markdown table of medians. See docs/benchmarks.md.
#
#   ./protocol-tests/bench/run.sh                 # full run, 3 runs per workload
#   ./protocol-tests/bench/run.sh --quick         # smoke run: small sizes, 1 run
#   ./protocol-tests/bench/run.sh --only seq,small --modes sign --runs 5
#   ./protocol-tests/bench/run.sh --help
#
# Peers: plain Samba and Samba with its share on a gocryptfs mount (AES-256-GCM
# at rest), side by side in the same run (--servers smbvault,samba to leave
# gocryptfs out). Needs smbd, smbpasswd, testparm and smbclient (Debian: samba
# smbclient), gocryptfs and fuse3 with /dev/fuse, and root (or sudo) for
# Samba's Unix account "alice" and the FUSE mount.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
for t in smbd smbpasswd testparm smbclient; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing samba smbclient (missing: ${missing[*]})"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq samba smbclient >/dev/null
fi
if ! command -v gocryptfs >/dev/null 2>&1 || ! command -v fusermount3 >/dev/null 2>&1; then
    echo "installing gocryptfs fuse3 (Samba-on-gocryptfs peer)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gocryptfs fuse3 >/dev/null
fi
# 1,000 idle connections need more descriptors than some shells allow.
ulimit -n 8192 2>/dev/null || true

cargo build --release --bin smbvault --example smbbench
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    exec sudo -E target/release/examples/smbbench "$@"
fi
exec target/release/examples/smbbench "$@"
