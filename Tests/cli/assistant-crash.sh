#!/usr/bin/env bash
# The assistant on real binaries against the mock LLM (Tests/mock-llm), on loopback, no root:
# kill -9 of the daemon in the middle of a streamed reply, then a restart on the same state:
# the history before that exchange is intact, the interrupted exchange left nothing behind, and
# a new chat works. Also: `ask` exits non-zero with a clear error when the provider fails.
# Usage: assistant-crash.sh BIN_DIR
set -uo pipefail
bin="${1:?usage: assistant-crash.sh BIN_DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d /tmp/clawchat-crash.XXXXXX)"
daemon_pid=""; mock_pid=""; ask_pid=""
source "$(dirname "$0")/lib.sh"
cleanup() {
  for p in "$ask_pid" "$daemon_pid" "$mock_pid"; do
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

python3 -u "$here/../mock-llm/mock_llm.py" --no-stdin --log-file "$work/mock.jsonl" > "$work/mock.port" 2> "$work/mock.err" &
mock_pid=$!
wait_for 10 test -s "$work/mock.port" || { echo "FAIL: the mock LLM did not start"; cat "$work/mock.err"; exit 1; }
port="$(head -1 "$work/mock.port")"

"$bin/clawchatd" bootstrap-key > "$work/bk"
state="$work/state"
export CLAWCHAT_CONFIG_DIR="$work/laptop" MOCK_KEY="sk-crash-SECRET-42424242"
start_daemon() {  # start_daemon SCENARIO [FLAGS...]
  local scenario="$1"; shift
  "$bin/clawchatd" run --state-dir "$state" --listen 127.0.0.1:47611 --bootstrap-key-file "$work/bk" \
    --provider openai-compatible --model mock --api-key-env MOCK_KEY \
    --base-url "http://127.0.0.1:$port/s/$scenario/v1" "$@" 2>> "$work/daemon.log" &
  daemon_pid=$!
}
# Replies take 30 × 100 ms: long enough to kill the daemon in the middle of one.
start_daemon "ok,chunk_delay_ms=100,pieces=30"
check "daemon writes a security file" wait_for 10 test -f "$state/security/clawchat-current.sec"
check "pair" "$bin/clawchat" pair "$state/security/clawchat-current.sec" --name laptop --bootstrap-key-file "$work/bk"
check "a first streamed chat" bash -c "[ \"\$('$bin/clawchat' ask 'the first question')\" = 'You said: the first question' ]"

"$bin/clawchat" ask "the interrupted question" > "$work/ask.out" 2>&1 &
ask_pid=$!
# Wait until the reply is streaming (some pieces on the client's terminal), then kill -9.
check "the second reply is streaming" wait_for 10 grep -q "You said" "$work/ask.out"
kill -KILL "$daemon_pid"; wait "$daemon_pid" 2>/dev/null; daemon_pid=""
kill -KILL "$ask_pid" 2>/dev/null; wait "$ask_pid" 2>/dev/null; ask_pid=""

check "the journal after kill -9 holds exactly the first exchange, every line whole" python3 -c '
import json, sys
lines = open(sys.argv[1], "rb").read().split(b"\n")
assert lines[-1] == b"", "last line unterminated"
records = [json.loads(l) for l in lines[:-1]]
assert [r["user"] for r in records if r["type"] == "exchange"] == ["the first question"], records
assert records[0]["assistant"] == "You said: the first question"' "$state/conversation.jsonl"

start_daemon "ok,chunk_delay_ms=10,pieces=3"
check "after the restart a new chat works" wait_for 15 bash -c "[ \"\$('$bin/clawchat' ask --timeout 5 'after the crash' 2>/dev/null)\" = 'You said: after the crash' ]"
check "history is the first exchange and the new one, in order" python3 -c '
import json, subprocess, sys
d = json.loads(subprocess.run([sys.argv[1] + "/clawchat", "history", "--json"], capture_output=True, check=True).stdout)
assert [e["user"] for e in d["exchanges"]] == ["the first question", "after the crash"], d' "$bin"
check "the provider saw valid role order after the restart" python3 -c '
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1]) if "\"request\"" in l]
last = [r for r in reqs if r["event"] == "request"][-1]
roles = [m["role"] for m in last["body"]["messages"]]
assert roles == ["system", "user", "assistant", "user"], roles
assert last["headers"]["authorization"] == "Bearer sk-crash-SECRET-42424242"' "$work/mock.jsonl"
check "today's daily log has both exchanges and not the interrupted one" bash -c "
  f=\$(ls '$state'/context/memory/*.md) && grep -q 'the first question' \$f && grep -q 'after the crash' \$f && ! grep -q 'interrupted' \$f"

kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null; daemon_pid=""
start_daemon "status-503" --llm-max-retries 1
"$bin/clawchat" ask --timeout 10 "will fail" > "$work/fail.out" 2> "$work/fail.err"; rc=$?
check "ask exits non-zero when the provider fails" [ "$rc" -ne 0 ]
check "with a clear one-line error" grep -q "the provider answered HTTP 503" "$work/fail.err"
check "no secret in the daemon's log" bash -c "! grep -qF 'SECRET' '$work/daemon.log' && ! grep -qF \"\$(cat '$work/bk')\" '$work/daemon.log'"
check "the failure was not stored" python3 -c '
import json, sys
assert not any("will fail" in l for l in open(sys.argv[1]))' "$state/conversation.jsonl"

if [ $failed -gt 0 ]; then echo "daemon log:"; cat "$work/daemon.log"; echo "ask output:"; cat "$work/ask.out"; fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
