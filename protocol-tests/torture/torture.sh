#!/usr/bin/env bash
# torture.sh HOST PORT SHARE USER PASS [TESTS...]
#
# Runs Samba's smbtorture (package samba-testsuite) test suites one by one against
# //HOST/SHARE on TCP port PORT, each under a wall-clock timeout, and writes a TSV
# summary plus one raw log per test.
#
# TESTS default to the entries of torture-tests-quick.txt (next to this script), or of
# the file named by TORTURE_LIST.  A list entry is one line:
#     <suite-or-test-name> [timeout=SECONDS] [share=SHARE] [as=LABEL] [extra smbtorture args...]
# '#' starts a comment.  Extra args may use {HOST} {PORT} {SHARE} {USER2} {PASS2}.
# as=LABEL names the row/log (lets one suite run twice, e.g. with --client-protection=encrypt).
# share=SHARE runs that entry against another share of the same server.
# Command-line TESTS select list entries by LABEL or name (all matches); a name that
# is not in the list runs plainly with no per-test options.
#
# Environment:
#   TORTURE_TIMEOUT  default per-test timeout in seconds (60)
#   TORTURE_TARGET   smbtorture --target: samba3 (default; Samba-tolerant expectations),
#                    other (= expect Windows behaviour), or "" to omit the flag
#   USER2 / PASS2    second account for tests that need one (torture:user2name/...);
#                    default bob / Secr3t! (the anchor's second user); set USER2= to omit
#   TORTURE_ARGS     extra args appended to every smbtorture invocation
#   TORTURE_LIST     list file (default: torture-tests-quick.txt next to this script)
#   OUT_DIR          output directory (default ./torture-results/<UTC timestamp>)
#   SMBTORTURE       smbtorture binary (default: smbtorture on PATH)
#
# Output (in OUT_DIR):
#   summary.tsv   test, result, seconds, sub_pass, sub_fail, sub_error, sub_skip, rc, failed_subtests
#                 result is one of pass | fail | error | skip | timeout
#   logs/<test>.log   full smbtorture output (subunit-ish)
# Last stdout line:  "torture: N passed, N failed, N skipped"   (fail = fail+error+timeout)
# Exit status: 0 if nothing failed/errored/timed out, 1 otherwise, 2 on usage error.
set -uo pipefail
set -f   # no globbing of list-file words

if [ $# -lt 5 ]; then
    sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
HOST="$1"; PORT="$2"; SHARE="$3"; USER_="$4"; PASS_="$5"; shift 5
ARGS_TESTS=("$@")

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIST="${TORTURE_LIST:-$HERE/torture-tests-quick.txt}"
TMO_DEFAULT="${TORTURE_TIMEOUT:-60}"
TARGET="${TORTURE_TARGET-samba3}"
USER2="${USER2-bob}"
PASS2="${PASS2-Secr3t!}"
SMBTORTURE="${SMBTORTURE:-smbtorture}"
OUT_DIR="${OUT_DIR:-$PWD/torture-results/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT_DIR/logs"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
SUMMARY="$OUT_DIR/summary.tsv"

command -v "$SMBTORTURE" >/dev/null || { echo "smbtorture not found (apt-get install samba-testsuite)" >&2; exit 2; }
command -v timeout >/dev/null || { echo "timeout(1) not found" >&2; exit 2; }

# --- read list file: ordered entries of "label|name|opts" ----------------------
ENTRIES=()
add_entry() { # name opts...
    local name="$1"; shift
    local label="$name" o opts=()
    for o in "$@"; do
        case "$o" in as=*) label="${o#as=}";; *) opts+=("$o");; esac
    done
    ENTRIES+=("$label|$name|${opts[*]:-}")
}
if [ -f "$LIST" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
        line="${line%%#*}"
        # shellcheck disable=SC2086
        set -- $line
        [ $# -gt 0 ] || continue
        add_entry "$@"
    done <"$LIST"
fi
if [ ${#ARGS_TESTS[@]} -gt 0 ]; then
    SEL=()
    for want in "${ARGS_TESTS[@]}"; do
        found=0
        for e in "${ENTRIES[@]}"; do
            IFS='|' read -r l n _ <<<"$e"
            if [ "$l" = "$want" ] || [ "$n" = "$want" ]; then SEL+=("$e"); found=1; fi
        done
        [ $found = 1 ] || SEL+=("$want|$want|")
    done
    ENTRIES=("${SEL[@]}")
fi
if [ ${#ENTRIES[@]} -eq 0 ]; then echo "no tests (list file $LIST empty/missing)" >&2; exit 2; fi

expand() { # substitute placeholders
    local s="$1"
    s="${s//\{HOST\}/$HOST}"; s="${s//\{PORT\}/$PORT}"; s="${s//\{SHARE\}/$SHARE}"
    s="${s//\{USER2\}/$USER2}"; s="${s//\{PASS2\}/$PASS2}"
    printf '%s' "$s"
}

# Parse smbtorture --format=subunit output: count success/failure/error/skip lines,
# ignoring the bracketed detail blocks "failure: x [ ... ]".
parse_log() { # file -> "pass fail error skip failed_names"
    awk '
        inblock { if ($0 == "]") inblock = 0; next }
        /^(success|successful|failure|fail|error|skip|xfail|uxsuccess): / {
            kind = $1; sub(/:$/, "", kind)
            name = $0; sub(/^[a-z]+: /, "", name)
            if (name ~ / \[$/) { inblock = 1; sub(/ \[$/, "", name) }
            else if (name ~ / \[ multipart$/) { inblock = 1; sub(/ \[ multipart$/, "", name) }
            if (kind == "success" || kind == "successful" || kind == "xfail") p++
            else if (kind == "failure" || kind == "fail" || kind == "uxsuccess") { f++; fn = fn (fn == "" ? "" : ",") name }
            else if (kind == "error") { e++; fn = fn (fn == "" ? "" : ",") name "(error)" }
            else if (kind == "skip") s++
        }
        END { printf "%d %d %d %d %s\n", p, f, e, s, (fn == "" ? "-" : fn) }
    ' "$1"
}

printf 'test\tresult\tseconds\tsub_pass\tsub_fail\tsub_error\tsub_skip\trc\tfailed_subtests\n' >"$SUMMARY"
n_pass=0; n_fail=0; n_skip=0

COMMON=(-p "$PORT" -U "$USER_%$PASS_" --format=subunit --option=torture:progress=no
        --option=torture:sharedelay=100000 --option=torture:writetimeupdatedelay=500000)
[ -n "$TARGET" ] && COMMON+=("--target=$TARGET")
[ -n "$USER2" ] && COMMON+=("--option=torture:user2name=$USER2" "--option=torture:user2password=$PASS2")

echo "smbtorture against //$HOST/$SHARE port $PORT, ${#ENTRIES[@]} tests, results in $OUT_DIR"
for e in "${ENTRIES[@]}"; do
    IFS='|' read -r label t opts <<<"$e"
    opts="$(expand "$opts")"
    tmo="$TMO_DEFAULT"
    share="$SHARE"
    extra=()
    for o in $opts; do
        case "$o" in
            timeout=*) tmo="${o#timeout=}";;
            share=*) share="${o#share=}";;
            *) extra+=("$o");;
        esac
    done
    # shellcheck disable=SC2206
    [ -n "${TORTURE_ARGS:-}" ] && extra+=(${TORTURE_ARGS})
    log="$OUT_DIR/logs/$label.log"
    start=$(date +%s.%N)
    # run from a scratch dir: some tests write local files into the cwd
    ( cd "$OUT_DIR" && timeout -k 10 "$tmo" "$SMBTORTURE" "//$HOST/$share" "${COMMON[@]}" "${extra[@]}" "$t" ) >"$log" 2>&1 </dev/null
    rc=$?
    end=$(date +%s.%N)
    # smbtorture leaves an (empty) smbtortureXXXXXX scratch dir in the cwd
    find "$OUT_DIR" -maxdepth 1 -type d -name 'smbtorture*' -empty -delete 2>/dev/null
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}')
    read -r sp sf se ss fnames <<<"$(parse_log "$log")"
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        res=timeout
    elif [ "$se" -gt 0 ] && [ "$sp" -eq 0 ] && [ "$sf" -eq 0 ]; then
        res=error
    elif [ "$sf" -gt 0 ] || [ "$se" -gt 0 ]; then
        res=fail
    elif [ $rc -ne 0 ]; then
        res=error
    elif [ "$sp" -eq 0 ] && [ "$ss" -gt 0 ]; then
        res=skip
    elif [ "$sp" -eq 0 ]; then
        res=error
    else
        res=pass
    fi
    case $res in pass) n_pass=$((n_pass+1));; skip) n_skip=$((n_skip+1));; *) n_fail=$((n_fail+1));; esac
    [ ${#fnames} -gt 2000 ] && fnames="${fnames:0:2000}..."
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$res" "$secs" "$sp" "$sf" "$se" "$ss" "$rc" "$fnames" >>"$SUMMARY"
    printf '%-36s %-8s %7ss  sub: %3s pass %3s fail %2s err %2s skip\n' "$label" "$res" "$secs" "$sp" "$sf" "$se" "$ss"
done

echo "summary: $SUMMARY"
echo "torture: $n_pass passed, $n_fail failed, $n_skip skipped"
[ $n_fail -eq 0 ]
