#!/usr/bin/env bash
# Signals on real binaries, on loopback, no root. SIGHUP with a changed CRON.md and USER.md: the
# new job is scheduled, the next chat carries the new context, the session stays up (no new
# handshake). SIGTERM in the middle of an upload and of a streamed reply: a clean exit; on restart
# the journal is intact, no temporary file is left, the interrupted upload resumes.
# Usage: signals.sh BIN_DIR
set -uo pipefail
bin="${1:?usage: signals.sh BIN_DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d /tmp/clawchat-signals.XXXXXX)"
daemon_pid=""; mock_pid=""; chat_pid=""; put_pid=""; ask_pid=""
source "$(dirname "$0")/lib.sh"
cleanup() {
  exec 7>&- 2>/dev/null
  for p in "$chat_pid" "$put_pid" "$ask_pid" "$daemon_pid" "$mock_pid"; do
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

python3 -u "$here/../mock-llm/mock_llm.py" --no-stdin --log-file "$work/mock.jsonl" > "$work/mock.port" 2> "$work/mock.err" &
mock_pid=$!
wait_for 10 test -s "$work/mock.port"
port="$(head -1 "$work/mock.port")"
"$bin/clawchatd" bootstrap-key > "$work/bk"
state="$work/state"; share="$work/share"
mkdir -p "$share"
export CLAWCHAT_CONFIG_DIR="$work/laptop"
printf '[assistant]\nmax_tokens = 1000\n' > "$work/clawchatd.toml"
start_daemon() {
  "$bin/clawchatd" run --config "$work/clawchatd.toml" --state-dir "$state" --listen 127.0.0.1:47622 --bootstrap-key-file "$work/bk" \
    --provider openai-compatible --model mock --api-key-env '' --files-root "$share" \
    --base-url "http://127.0.0.1:$port/s/ok,slow_match=slowly,slow_delay_ms=400,pieces=20/v1" 2>> "$work/daemon.log" &
  daemon_pid=$!
}
start_daemon
wait_for 10 test -f "$state/security/clawchat-current.sec"
check "pair" "$bin/clawchat" pair "$state/security/clawchat-current.sec" --name sig --bootstrap-key-file "$work/bk"
# A second device for the one-shot commands: one device has one session at a time, and a second
# process with the same identity would take it over from the interactive session.
"$bin/clawchatd" secfile --state-dir "$state" > /dev/null
check "pair a second device" env CLAWCHAT_CONFIG_DIR="$work/other" "$bin/clawchat" pair "$state/security/clawchat-current.sec" --name other --bootstrap-key-file "$work/bk"
other() { CLAWCHAT_CONFIG_DIR="$work/other" "$bin/clawchat" "$@"; }

# An interactive session on a pipe: it stays connected through the SIGHUP.
mkfifo "$work/in"
"$bin/clawchat" chat < "$work/in" > "$work/chat.out" 2>&1 &
chat_pid=$!
exec 7> "$work/in"
check "the session connects" wait_for 10 grep -q "connected to" "$work/chat.out"
echo "before the reload" >&7
check "a chat before SIGHUP" wait_for 10 grep -q "You said: before the reload" "$work/chat.out"

cat >> "$state/context/CRON.md" <<'EOF'

---

## Added By Hand

**Schedule**: 15 4 * * *
**Command**: Say hello
EOF
echo "The owner's name is Grace Hopper." > "$state/context/USER.md"
printf '[assistant]\nmax_tokens = 1234\n' > "$work/clawchatd.toml"
kill -HUP "$daemon_pid"
check "SIGHUP reloads context and CRON.md and keeps the connection" wait_for 5 grep -q "SIGHUP: reloaded .*CRON.md (5 job(s)); 1 connection(s) kept" "$work/daemon.log"
check "the new job is scheduled" bash -c "CLAWCHAT_CONFIG_DIR='$work/other' '$bin/clawchat' cron list | grep -E '^Added By Hand ' | grep -q '15 4 \* \* \*'"
echo "after the reload" >&7
check "the session still answers after SIGHUP" wait_for 10 grep -q "You said: after the reload" "$work/chat.out"
echo "/status" >&7
check "with no new handshake (the session stayed up)" wait_for 5 grep -q "1 handshake(s)" "$work/chat.out"
check "the next chat's system prompt has the new USER.md" python3 -c '
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
last = [r for r in reqs if r["event"] == "request"][-1]
assert "Grace Hopper" in last["body"]["messages"][0]["content"], last["body"]["messages"][0]' "$work/mock.jsonl"
check "and the changed configuration file (max_tokens 1000 -> 1234)" python3 -c '
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
bodies = [r["body"] for r in reqs if r["event"] == "request"]
assert bodies[0]["max_tokens"] == 1000 and bodies[-1]["max_tokens"] == 1234, [b["max_tokens"] for b in bodies]' "$work/mock.jsonl"
exec 7>&-
kill -TERM "$chat_pid" 2>/dev/null; wait "$chat_pid" 2>/dev/null; chat_pid=""

# SIGTERM while an upload and a streamed reply are both in flight.
head -c $((150 * 1000 * 1000)) /dev/urandom > "$work/big"
"$bin/clawchat" put "$work/big" big > "$work/put.out" 2>&1 &
put_pid=$!
other ask "answer slowly please" > "$work/ask.out" 2>&1 &
ask_pid=$!
check "the upload is under way" wait_for 30 bash -c "[ \$(stat -c %s '$share/.big.clawchat-part' 2>/dev/null || echo 0) -gt 20000000 ]"
check "the reply is streaming" wait_for 10 grep -q "You said" "$work/ask.out"
kill -TERM "$daemon_pid"
stopped=0
for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || { stopped=1; break; }; sleep 0.05; done
wait "$daemon_pid"; rc=$?; daemon_pid=""
check "SIGTERM stops the daemon within 5 s, exit status 0" [ $stopped -eq 1 -a $rc -eq 0 ]
kill -KILL "$put_pid" "$ask_pid" 2>/dev/null; wait "$put_pid" "$ask_pid" 2>/dev/null; put_pid=""; ask_pid=""
check "the journal is intact: whole lines, the two chats, not the interrupted one" python3 -c '
import json, sys
data = open(sys.argv[1], "rb").read()
assert data.endswith(b"\n"), "unterminated"
users = [json.loads(l)["user"] for l in data.split(b"\n")[:-1]]
assert users == ["before the reload", "after the reload"], users' "$state/conversation.jsonl"
check "no temporary file is left behind" bash -c "[ -z \"\$(find '$state' '$share' -name '*.tmp-*' -print -quit)\" ]"
check "the pid file is removed" test ! -e "$state/clawchatd.pid"
check "the half upload is only under its hidden part name" bash -c "[ ! -e '$share/big' ] && [ -s '$share/.big.clawchat-part' ]"

start_daemon
check "after the restart the history is there" wait_for 15 bash -c "'$bin/clawchat' history 2>/dev/null | grep -q 'you:  after the reload'"
"$bin/clawchat" put "$work/big" big --json > "$work/put2.json" 2> "$work/put2.err"
check "the upload resumes after the restart and the file is identical" bash -c "
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d[\"resumedFrom\"] > 0, d' '$work/put2.json' && cmp -s '$work/big' '$share/big'"

if [ $failed -gt 0 ]; then
  echo "--- daemon log:"; tail -30 "$work/daemon.log"
  echo "--- chat:"; tail -20 "$work/chat.out"
  for f in put.out ask.out put2.err; do echo "--- $f:"; tail -5 "$work/$f" 2>/dev/null; done
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
