#!/usr/bin/env bash
# samba.sh up DIR PORT PASSWORD [gocryptfs] | samba.sh down DIR
#
# A private, loopback-only Samba smbd for benchmarks (adapted from the team's
# harness samba-up.sh / samba-down.sh, which CI machines do not have).
# Everything (smb.conf, passdb, tdbs, logs, pid files, share data) lives under
# DIR; nothing in /etc/samba or /var/lib/samba is read or written. Only smbd
# runs: no nmbd, no winbindd.
#
# The configuration is Samba's defaults except what a fair comparison needs:
#   - loopback only, port PORT, no NetBIOS, no printing, log level 0;
#   - server signing = mandatory (smbvault always requires signing);
#   - [data] read-write; [enc] the same directory with "smb encrypt = required".
# No vfs modules beyond the default (DOS attributes in user.DOSATTRIB xattrs).
#
# With "gocryptfs" the share directory is a gocryptfs mount (AES-256-GCM at
# rest, its defaults; apt-get install gocryptfs fuse3): Samba keeping the
# same at-rest promise as smbvault. The gocryptfs daemon runs in the
# foreground under this script's control; `up` prints "GOCRYPTFS_PID=<pid>"
# so its CPU counts with Samba's.
#
# User: alice (a Unix account is created if missing; needs root) with PASSWORD.
# `up` prints "SMBD_PID=<pid>" last. `down` stops every process whose PID file
# is under DIR and whose command line names DIR.
set -euo pipefail

cmd="${1:-}"; DIR="${2:-}"
case "$DIR" in /|"") echo "usage: samba.sh up DIR PORT PASSWORD | samba.sh down DIR" >&2; exit 2;; esac

down() {
    [ -d "$DIR" ] || exit 0
    if [ -f "$DIR/gocryptfs.pid" ]; then
        fusermount3 -u "$DIR/share" 2>/dev/null || fusermount -u "$DIR/share" 2>/dev/null || umount -l "$DIR/share" 2>/dev/null || true
        rm -f "$DIR/gocryptfs.pid"
    fi
    local pids=() p f
    for f in "$DIR/smbd.pid" "$DIR"/pid/*.pid; do
        [ -f "$f" ] || continue
        p="$(tr -dc '0-9' <"$f")"
        [ -n "$p" ] || continue
        if kill -0 "$p" 2>/dev/null && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$DIR"; then
            pids+=("$p")
        fi
    done
    [ "${#pids[@]}" -eq 0 ] && exit 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 1 100); do
        local alive=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null; done
    rm -f "$DIR/smbd.pid"
}

up() {
    local PORT="${3:?port}" PASSWORD="${4:?password}"
    for t in smbd smbpasswd testparm; do
        command -v "$t" >/dev/null 2>&1 || { echo "missing $t (apt-get install samba smbclient)" >&2; exit 3; }
    done
    mkdir -p "$DIR"
    DIR="$(cd "$DIR" && pwd)"
    local CONF="$DIR/etc/smb.conf" SHARE="$DIR/share"
    mkdir -p "$DIR"/{etc,private,lock,state,cache,log,pid,ncalrpc,winbindd} "$SHARE"
    chmod 0755 "$DIR/lock" "$DIR/pid" "$DIR/state" "$DIR/cache"
    chmod 0700 "$DIR/private"
    if [ "${5:-}" = gocryptfs ]; then
        command -v gocryptfs >/dev/null 2>&1 || { echo "missing gocryptfs (apt-get install gocryptfs fuse3)" >&2; exit 3; }
        rm -rf "$DIR/cipher"; mkdir -p "$DIR/cipher"
        printf 'bench\n' >"$DIR/private/gocryptfs.pass"
        gocryptfs -q -init -passfile "$DIR/private/gocryptfs.pass" "$DIR/cipher" >/dev/null
        nohup gocryptfs -fg -q -allow_other -passfile "$DIR/private/gocryptfs.pass" "$DIR/cipher" "$SHARE" \
            >"$DIR/log/gocryptfs.log" 2>&1 </dev/null &
        local GC=$!
        echo "$GC" >"$DIR/gocryptfs.pid"
        for _ in $(seq 1 100); do mountpoint -q "$SHARE" && break; sleep 0.1; done
        mountpoint -q "$SHARE" || { echo "gocryptfs did not mount; see $DIR/log/gocryptfs.log" >&2; exit 6; }
        echo "GOCRYPTFS_PID=$GC"
    fi
    chmod 0777 "$SHARE"
    cat >"$CONF" <<EOF
[global]
	netbios name = SMBBENCH
	workgroup = WORKGROUP
	server role = standalone server
	security = user
	map to guest = never
	passdb backend = tdbsam:$DIR/private/passdb.tdb
	interfaces = 127.0.0.1/8
	bind interfaces only = yes
	smb ports = $PORT
	disable netbios = yes
	server min protocol = SMB2_02
	server max protocol = SMB3_11
	server signing = mandatory
	private dir = $DIR/private
	lock directory = $DIR/lock
	state directory = $DIR/state
	cache directory = $DIR/cache
	pid directory = $DIR/pid
	ncalrpc dir = $DIR/ncalrpc
	winbindd socket directory = $DIR/winbindd
	binddns dir = $DIR/private/bind-dns
	usershare path = $DIR/state/usershares
	log file = $DIR/log/log.%m
	log level = 0
	max log size = 0
	logging = file
	load printers = no
	printing = bsd
	printcap name = /dev/null
	disable spoolss = yes

[data]
	path = $SHARE
	read only = no

[enc]
	path = $SHARE
	read only = no
	smb encrypt = required
EOF
    id alice >/dev/null 2>&1 || useradd -M -N -s /usr/sbin/nologin alice
    printf '%s\n%s\n' "$PASSWORD" "$PASSWORD" | smbpasswd -c "$CONF" -s -a alice >/dev/null
    smbpasswd -c "$CONF" -e alice >/dev/null
    testparm -s "$CONF" >"$DIR/log/testparm.out" 2>&1 || { cat "$DIR/log/testparm.out" >&2; exit 4; }
    rm -f "$DIR"/pid/smbd*.pid
    smbd -D -s "$CONF" -l "$DIR/log"
    local PID="" f
    for _ in $(seq 1 100); do
        for f in "$DIR"/pid/smbd*.pid; do [ -f "$f" ] && PID="$(tr -dc '0-9' <"$f")"; done
        if [ -n "$PID" ] && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
        sleep 0.1
    done
    if [ -z "$PID" ] || ! kill -0 "$PID" 2>/dev/null; then
        echo "smbd failed to start; see $DIR/log" >&2
        exit 5
    fi
    echo "$PID" >"$DIR/smbd.pid"
    echo "SMBD_PID=$PID"
}

case "$cmd" in
    up) up "$@" ;;
    down) down ;;
    *) echo "usage: samba.sh up DIR PORT PASSWORD [gocryptfs] | samba.sh down DIR" >&2; exit 2 ;;
esac
