#!/usr/bin/env bash
# Runs every smbvault test: unit tests, codec golden tests, store property and
# crash tests, and the end-to-end tests that drive the real binary with
# smbclient, smbtorture and Python smbprotocol. Installs those clients first
# when they are missing (Debian/Ubuntu: apt-get; Python: pip).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v smbclient  >/dev/null 2>&1 || need_apt+=(smbclient)
command -v smbtorture >/dev/null 2>&1 || need_apt+=(samba-testsuite)
# transport.rs captures loopback traffic to prove nothing leaves in clear.
command -v tcpdump    >/dev/null 2>&1 || need_apt+=(tcpdump)
command -v python3    >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
# console.rs drives the web console in headless Chromium (Debian's packages).
command -v chromium     >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! python3 -c 'import smbprotocol' >/dev/null 2>&1; then
    echo "installing Python smbprotocol"
    python3 -m pip install -q smbprotocol 2>/dev/null \
        || python3 -m pip install -q --break-system-packages smbprotocol
fi

if ! python3 -c 'import prometheus_client' >/dev/null 2>&1; then
    echo "installing Python prometheus_client (parses /metrics in protocol-tests/service.rs)"
    python3 -m pip install -q prometheus_client 2>/dev/null \
        || python3 -m pip install -q --break-system-packages prometheus_client
fi
if ! python3 -c 'import selenium' >/dev/null 2>&1; then
    echo "installing Python selenium (drives Chromium in protocol-tests/console.rs)"
    python3 -m pip install -q selenium 2>/dev/null \
        || python3 -m pip install -q --break-system-packages selenium
fi
# `systemd-analyze verify` checks examples/systemd/smbvault.service.
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "installing systemd (for systemd-analyze)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null \
        || echo "systemd is not installable here; the unit file check will say it was skipped"
fi

# protocol-tests/remote_backup.rs backs up to a real S3-compatible server:
# Garage, from the Rust package registry. `cargo install` keeps the binary in
# ~/.cargo/bin, which is the cache: a machine that has it builds it once.
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v garage >/dev/null 2>&1; then
    echo "installing Garage (cargo install garage --locked; 10-20 minutes the first time)"
    cargo install garage --locked --quiet
fi

# The fuzz targets (fuzz/, docs/fuzzing.md) need the nightly toolchain and
# cargo-fuzz; both are cached like Garage (rustup's toolchains, ~/.cargo/bin).
if [ "${SMBVAULT_FUZZ_SECONDS:-30}" != 0 ]; then
    if ! rustup run nightly rustc --version >/dev/null 2>&1; then
        echo "installing the nightly toolchain (for cargo-fuzz)"
        rustup toolchain install nightly --profile minimal
    fi
    if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
        echo "installing cargo-fuzz (cargo install cargo-fuzz --locked; a few minutes the first time)"
        cargo install cargo-fuzz --locked --quiet
    fi
fi

# Lints first: a clippy warning fails CI (Cargo.toml [lints] says what we mean).
cargo clippy --release --all-targets -- -D warnings

# Release build: the end-to-end tests move hundreds of MiB through AES.
cargo test --release --all-targets --no-fail-fast -- --test-threads="${SMBVAULT_TEST_THREADS:-2}" "$@"

# Coverage-guided fuzzing, briefly: every target for SMBVAULT_FUZZ_SECONDS
# (default 30; 0 skips) from its committed corpus. A crash, a panic or an
# input slower than 1 s fails the run (libFuzzer exits non-zero and leaves the
# input in fuzz/artifacts/). New inputs go to a scratch directory, so the
# checkout stays clean. The long runs are in docs/fuzzing.md.
if [ "${SMBVAULT_FUZZ_SECONDS:-30}" != 0 ]; then
    ./fuzz/run.sh "${SMBVAULT_FUZZ_SECONDS:-30}"
fi
