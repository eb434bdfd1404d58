#!/usr/bin/env bash
# transport_ab.sh BIN_A BIN_B [SIZE_MIB] [RUNS] -- server CPU of two builds of
# smbvault for the same encrypted transfers (smbclient SMB3_11, AES-128-GCM,
# put and get of a SIZE_MIB file, default 256, RUNS times, default 5),
# alternating between the two servers. CPU is the sum of every thread's
# on-CPU time in /proc/PID/task/*/schedstat (nanoseconds), so other load on a
# shared machine barely moves it. Prints medians in ms per transfer.
set -euo pipefail
A="$1"
B="$2"
SIZE="${3:-256}"
RUNS="${4:-5}"
PASS='Passw0rd!-bench'
W="$(mktemp -d /dev/shm/transport-ab.XXXXXX)"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$W"
}
trap cleanup EXIT

start() { # label binary
    mkdir -p "$W/$1"
    printf '[server]\nlisten = "127.0.0.1:0"\ndata_dir = "%s"\n[security]\nencryption = "off"\n' "$W/$1/data" \
        >"$W/$1/sv.toml"
    RUST_LOG=warn "$2" --config "$W/$1/sv.toml" serve >"$W/$1/out" 2>"$W/$1/err" &
    PIDS+=($!)
    echo $! >"$W/$1/pid"
    for _ in $(seq 1 600); do
        grep -q "smbvault listening on" "$W/$1/out" 2>/dev/null && break
        sleep 0.1
    done
    sed -n 's/^smbvault listening on .*:\([0-9]*\)$/\1/p' "$W/$1/out" >"$W/$1/port"
    printf '%s\n' "$PASS" | "$2" --config "$W/$1/sv.toml" user add 'DEFAULT\alice' --password-stdin >/dev/null
}
cpu_ns() { local t=0 a; for f in /proc/"$1"/task/*/schedstat; do read -r a _ <"$f"; t=$((t + a)); done; echo "$t"; }

start a "$A"
start b "$B"
head -c "$((SIZE << 20))" /dev/urandom >"$W/src.bin"
for _ in $(seq 1 "$RUNS"); do
    for v in a b; do
        port="$(cat "$W/$v/port")"
        pid="$(cat "$W/$v/pid")"
        for op in put get; do
            if [ "$op" = put ]; then cmd="put $W/src.bin ab.bin"; else cmd="get ab.bin $W/back.bin"; fi
            c0="$(cpu_ns "$pid")"
            smbclient //127.0.0.1/share -p "$port" -U "DEFAULT\\alice%$PASS" -m SMB3_11 \
                --client-protection=encrypt -c "$cmd" >"$W/sc.out" 2>&1 || { cat "$W/sc.out" >&2; exit 1; }
            c1="$(cpu_ns "$pid")"
            echo "$v $op $(((c1 - c0) / 1000000))" >>"$W/results"
        done
    done
    cmp -s "$W/src.bin" "$W/back.bin" || { echo "content differs" >&2; exit 1; }
done
python3 - "$W/results" "$SIZE" "$A" "$B" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
size = int(sys.argv[2])
for v, name in (("a", sys.argv[3]), ("b", sys.argv[4])):
    for op in ("put", "get"):
        xs = [int(r[2]) for r in rows if r[0] == v and r[1] == op]
        m = statistics.median(xs)
        print(f"{name} {op}: server CPU {m:.0f} ms per {size} MiB (runs {xs}) = {size * 1.048576 / (m / 1000):.0f} MB per CPU-second")
EOF
