#!/usr/bin/env bash
# transport_bench.sh [SIZE_MIB] [RUNS] -- cost of SMB3 transport encryption.
#
# Puts and gets a SIZE_MIB random file (default 256) with smbclient at SMB3_11,
# RUNS times (default 5), against our server and a private Samba (from
# /work/shared/harness/samba-up.sh, or HARNESS=...), under the same settings
# in the same run, interleaved so that load from other processes hits every
# configuration alike:
#   sign    signing only (AES-128-GMAC, smbclient's first choice)
#   gcm128  --client-protection=encrypt, AES-128-GCM   (Samba: share `enc`)
#   gcm256  --client-protection=encrypt, AES-256-GCM
# Everything (source file, both servers' data) lives in tmpfs (/dev/shm), so
# disks play no part.
#
# Two measures per transfer:
#   MB/s      wall clock, SIZE / (smbclient run time). Client and server
#             share the machine (and, on a busy host, the CPU with others).
#   srvMB/s   SIZE / server CPU time (user+system of our process; of smbd
#             and its reaped per-connection children): what one core of the
#             server can move. Much less sensitive to other load.
# Prints one line per transfer, then medians and each encrypted configuration
# as a ratio of the same server's signing-only figure.
#
# Needs a release build (cargo build --release; BIN=... for another binary)
# and samba/smbclient.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${BIN:-$ROOT/target/release/smbvault}"
HARNESS="${HARNESS:-/work/shared/harness}"
SIZE="${1:-256}"
RUNS="${2:-5}"
SAMBA_PORT="${SAMBA_PORT:-4477}"
PASS='Passw0rd!'
OUR_PASS='Passw0rd!-bench'
TCK="$(getconf CLK_TCK)"

W="$(mktemp -d /dev/shm/transport-bench.XXXXXX)"
chmod 0755 "$W" # Samba serves a directory inside as user alice
SV_PID=""
cleanup() {
    [ -n "$SV_PID" ] && kill -TERM "$SV_PID" 2>/dev/null && wait "$SV_PID" 2>/dev/null
    "$HARNESS/samba-down.sh" "$W/samba" >/dev/null 2>&1 || true
    rm -rf "$W"
}
trap cleanup EXIT
trap 'echo "transport_bench: stopped by a signal" >&2; exit 1' TERM INT HUP

# --- our server: policy "off" so that the client chooses signing or encryption
cat >"$W/sv.toml" <<EOF
[server]
listen = "127.0.0.1:0"
data_dir = "$W/data"
[security]
encryption = "off"
logon_failure_delay_ms = 200
EOF
RUST_LOG=warn "$BIN" --config "$W/sv.toml" serve >"$W/sv.out" 2>"$W/sv.err" &
SV_PID=$!
for _ in $(seq 1 600); do
    grep -q "smbvault listening on" "$W/sv.out" 2>/dev/null && break
    sleep 0.1
done
SV_PORT="$(sed -n 's/^smbvault listening on .*:\([0-9]*\)$/\1/p' "$W/sv.out")"
[ -n "$SV_PORT" ] || { echo "our server did not start" >&2; cat "$W/sv.err" >&2; exit 1; }
printf '%s\n' "$OUR_PASS" | "$BIN" --config "$W/sv.toml" user add 'DEFAULT\alice' --password-stdin >/dev/null

# --- Samba, data in tmpfs too
SMB_PORT="$SAMBA_PORT" "$HARNESS/samba-up.sh" "$W/samba" >"$W/samba.out"
SMBD_PID="$(sed -n 's/^SMBD_PID=//p' "$W/samba.out")"

head -c "$((SIZE << 20))" /dev/urandom >"$W/src.bin"
WANT="$(sha256sum <"$W/src.bin" | cut -d' ' -f1)"

# server -> "port share user password"
target() {
    case "$1:$2" in
        ours:*) echo "$SV_PORT share DEFAULT\\alice $OUR_PASS" ;;
        samba:sign) echo "$SAMBA_PORT data alice $PASS" ;;
        samba:*) echo "$SAMBA_PORT enc alice $PASS" ;;
    esac
}
# configuration -> smbclient options (in OPTS)
opts() {
    case "$1" in
        sign) OPTS=(--client-protection=sign) ;;
        gcm128) OPTS=(--client-protection=encrypt "--option=client smb3 encryption algorithms=AES-128-GCM") ;;
        gcm256) OPTS=(--client-protection=encrypt "--option=client smb3 encryption algorithms=AES-256-GCM") ;;
    esac
}
now() { date +%s.%N; }
# CPU ticks (user+system, plus reaped children) of a process.
ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"; }
# Server CPU ticks; for Samba after its per-connection child has been reaped.
server_ticks() {
    if [ "$1" = ours ]; then
        ticks "$SV_PID"
    else
        for _ in $(seq 1 100); do
            pgrep -P "$SMBD_PID" -x smbd >/dev/null || break
            sleep 0.05
        done
        ticks "$SMBD_PID"
    fi
}
# transfer SRV CFG OP COMMAND -> appends a result line
transfer() {
    local srv="$1" cfg="$2" op="$3" cmd="$4" port share user pass c0 c1 t0 t1
    read -r port share user pass <<<"$(target "$srv" "$cfg")"
    opts "$cfg"
    c0="$(server_ticks "$srv")"
    t0="$(now)"
    smbclient "//127.0.0.1/$share" -p "$port" -U "$user%$pass" -m SMB3_11 "${OPTS[@]}" -c "$cmd" \
        >"$W/out" 2>&1 || { echo "$srv $cfg $op failed (exit $?)" >&2; cat "$W/out" >&2; exit 1; }
    t1="$(now)"
    c1="$(server_ticks "$srv")"
    python3 -c "import sys; s,t0,t1,c0,c1,tck=map(float,sys.argv[1:]); \
print(f'$srv\t$cfg\t$op\t{s*1.048576/(t1-t0):.1f}\t{s*1.048576/max((c1-c0)/tck,0.01):.1f}')" \
        "$SIZE" "$t0" "$t1" "$c0" "$c1" "$TCK" | tee -a "$W/results.tsv"
}

for _ in $(seq 1 "$RUNS"); do
    for cfg in sign gcm128 gcm256; do
        for srv in ours samba; do
            rm -f "$W/back.bin"
            transfer "$srv" "$cfg" put "put $W/src.bin bench.bin"
            transfer "$srv" "$cfg" get "get bench.bin $W/back.bin"
            got="$(sha256sum <"$W/back.bin" | cut -d' ' -f1)"
            [ "$got" = "$WANT" ] || { echo "$srv $cfg: content differs" >&2; exit 1; }
        done
    done
done

python3 - "$W/results.tsv" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
med = {}
for srv in ("ours", "samba"):
    for cfg in ("sign", "gcm128", "gcm256"):
        for op in ("put", "get"):
            for i, m in ((3, "wall"), (4, "cpu")):
                v = [float(r[i]) for r in rows if r[0] == srv and r[1] == cfg and r[2] == op]
                med[srv, cfg, op, m] = statistics.median(v)
print("\nmedians, MB/s (10^6 B/s); ratio = same server's signing-only figure")
print("                  wall put   get   | srvCPU put    get   | ratio wall put get | ratio cpu put get")
for srv in ("ours", "samba"):
    for cfg in ("sign", "gcm128", "gcm256"):
        w = [med[srv, cfg, op, "wall"] for op in ("put", "get")]
        c = [med[srv, cfg, op, "cpu"] for op in ("put", "get")]
        rw = [w[i] / med[srv, "sign", op, "wall"] for i, op in enumerate(("put", "get"))]
        rc = [c[i] / med[srv, "sign", op, "cpu"] for i, op in enumerate(("put", "get"))]
        print(f"{srv:6} {cfg:7}  {w[0]:8.1f} {w[1]:6.1f}   | {c[0]:8.1f} {c[1]:7.1f}   |"
              f"     {rw[0]:4.2f} {rw[1]:4.2f}     |    {rc[0]:4.2f} {rc[1]:4.2f}")
print()
for cfg in ("gcm128", "gcm256"):
    for op in ("put", "get"):
        w = med["ours", cfg, op, "wall"] / med["samba", cfg, op, "wall"]
        c = med["ours", cfg, op, "cpu"] / med["samba", cfg, op, "cpu"]
        print(f"ours/samba {cfg} {op}: wall {w:.2f}  server CPU {c:.2f}")
EOF
