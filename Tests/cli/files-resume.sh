#!/usr/bin/env bash
# The file manager on real binaries, on loopback, no root: a 200 MB download killed half-way
# (kill -9 of the client) and resumed transfers only the rest and gives an identical file; the
# same for an upload, where the daemon never shows a half file under the final name.
# Usage: files-resume.sh BIN_DIR
set -uo pipefail
bin="${1:?usage: files-resume.sh BIN_DIR}"
work="$(mktemp -d /tmp/clawchat-files.XXXXXX)"
daemon_pid=""; client_pid=""
source "$(dirname "$0")/lib.sh"
cleanup() {
  for p in "$client_pid" "$daemon_pid"; do
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

share="$work/share"; state="$work/state"
mkdir -p "$share" "$work/dl"
total=$((200 * 1000 * 1000)); half=$((total / 2))
head -c "$total" /dev/urandom > "$share/big"
"$bin/clawchatd" bootstrap-key > "$work/bk"
"$bin/clawchatd" run --state-dir "$state" --listen 127.0.0.1:0 --bootstrap-key-file "$work/bk" --provider echo \
  --files-root "$share" 2> "$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 100); do [ -f "$state/security/clawchat-current.sec" ] && break; sleep 0.1; done
export CLAWCHAT_CONFIG_DIR="$work/laptop"
check "pair" "$bin/clawchat" pair "$state/security/clawchat-current.sec" --name files --bootstrap-key-file "$work/bk"

# --- download, killed half-way
"$bin/clawchat" get big "$work/dl/big" > "$work/get1.out" 2>&1 &
client_pid=$!
for _ in $(seq 600); do [ "$(size_of "$work/dl/big.clawchat-part")" -ge "$half" ] && break; sleep 0.05; done
kill -KILL "$client_pid"; wait "$client_pid" 2>/dev/null; client_pid=""
got=$(size_of "$work/dl/big.clawchat-part")
check "the killed download left a part file past half-way ($got bytes) and no final file" \
  bash -c "[ $got -ge $half ] && [ $got -lt $total ] && [ ! -e '$work/dl/big' ]"
"$bin/clawchat" get big "$work/dl/big" --json > "$work/get2.json" 2> "$work/get2.err"
check "the resumed download succeeds" [ -s "$work/get2.json" ]
resumed=$(json_field "$work/get2.json" resumedFrom 2>/dev/null || echo -1)
moved=$(json_field "$work/get2.json" transferred 2>/dev/null || echo -1)
echo "      download resumed from $resumed bytes, transferred $moved of $total"
check "it resumed where the part file ended" [ "$resumed" -ge "$got" ]
check "only the rest crossed the network" [ "$moved" -eq $((total - resumed)) ]
check "the downloaded file is identical" cmp -s "$share/big" "$work/dl/big"
check "its SHA-256 is the one reported" [ "$(json_field "$work/get2.json" sha256)" = "$(sha256sum "$share/big" | cut -d' ' -f1)" ]
check "no part file is left" [ ! -e "$work/dl/big.clawchat-part" ]

# --- upload, killed half-way; the final name must never appear early
head -c "$total" /dev/urandom > "$work/up.bin"
"$bin/clawchat" put "$work/up.bin" up.bin > "$work/put1.out" 2>&1 &
client_pid=$!
early=0
for _ in $(seq 1200); do
  [ -e "$share/up.bin" ] && early=1
  [ "$(size_of "$share/.up.bin.clawchat-part")" -ge "$half" ] && break
  sleep 0.025
done
kill -KILL "$client_pid"; wait "$client_pid" 2>/dev/null; client_pid=""
sleep 0.5
kept=$(size_of "$share/.up.bin.clawchat-part")
check "the daemon kept the interrupted upload ($kept bytes) under its part name only" \
  bash -c "[ $kept -ge $half ] && [ $early -eq 0 ] && [ ! -e '$share/up.bin' ]"
check "the part file is hidden from ls" bash -c "! '$bin/clawchat' ls | grep -q clawchat-part"
"$bin/clawchat" put "$work/up.bin" up.bin --json > "$work/put2.json" 2> "$work/put2.err"
check "the resumed upload succeeds" [ -s "$work/put2.json" ]
resumed=$(json_field "$work/put2.json" resumedFrom 2>/dev/null || echo -1)
moved=$(json_field "$work/put2.json" transferred 2>/dev/null || echo -1)
echo "      upload resumed from $resumed bytes, transferred $moved of $total"
check "it resumed from what the daemon kept" [ "$resumed" -ge "$half" ]
check "only the rest crossed the network" [ "$moved" -eq $((total - resumed)) ]
check "the uploaded file is identical" cmp -s "$work/up.bin" "$share/up.bin"
check "the daemon's part file is gone" [ ! -e "$share/.up.bin.clawchat-part" ]

# --- the small commands
check "mkdir -p, mv, stat, rm -r" bash -c "
  '$bin/clawchat' mkdir -p a/b/c && '$bin/clawchat' mv up.bin a/b/up.bin &&
  '$bin/clawchat' stat a/b/up.bin --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"size\"] == $total, d' &&
  '$bin/clawchat' rm -r a && [ ! -e '$share/a' ]"
check "ls --json lists big" bash -c "'$bin/clawchat' ls --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert any(e[\"name\"] == \"big\" for e in (d[\"entries\"] if isinstance(d, dict) else d)), d'"
check "an existing local file is not replaced without --overwrite" bash -c "! '$bin/clawchat' get big '$work/dl/big' 2>/dev/null"

if [ $failed -gt 0 ]; then
  echo "--- daemon log:"; tail -20 "$work/daemon.log"
  for f in get1.out get2.err put1.out put2.err; do echo "--- $f:"; tail -5 "$work/$f" 2>/dev/null; done
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
