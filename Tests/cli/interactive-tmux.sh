#!/usr/bin/env bash
# The interactive client on a real terminal: `clawchat` runs in a tmux pane, driven with
# send-keys and read with capture-pane, against a daemon whose provider is the mock LLM.
# Shows: a question gets a reply that streams in (seen part-way), line editing (Ctrl-A, Left),
# history recall (Up), Ctrl-C cancels a reply in progress, /history lists what was stored, and
# /cron lists jobs and a job run from the session pushes its result into it, and Ctrl-C at an
# empty prompt leaves. Usage: interactive-tmux.sh BIN_DIR
set -uo pipefail
bin="${1:?usage: interactive-tmux.sh BIN_DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
command -v tmux >/dev/null || { echo "FAIL: tmux is not installed (scripts/setup installs it)"; exit 1; }
work="$(mktemp -d /tmp/clawchat-tmux.XXXXXX)"
sock="$work/tmux.sock"
session="cc$$"
daemon_pid=""; mock_pid=""
source "$(dirname "$0")/lib.sh"
cleanup() {
  tmux -S "$sock" kill-server 2>/dev/null
  for p in "$daemon_pid" "$mock_pid"; do
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
pane() { tmux -S "$sock" capture-pane -p -t "$session" 2>/dev/null; }
keys() { tmux -S "$sock" send-keys -t "$session" "$@"; }
wait_prompt() {  # wait_prompt SECONDS: the reply is over and an empty prompt is shown
  local end=$((SECONDS + $1))
  until [ "$(pane | grep -v '^$' | tail -1)" = ">" ]; do [ $SECONDS -ge $end ] && return 1; sleep 0.05; done
}
wait_pane() {  # wait_pane SECONDS FIXED-STRING
  local end=$((SECONDS + $1))
  until pane | grep -qF -- "$2"; do [ $SECONDS -ge $end ] && return 1; sleep 0.05; done
}

python3 -u "$here/../mock-llm/mock_llm.py" --no-stdin --log-file "$work/mock.jsonl" > "$work/mock.port" 2> "$work/mock.err" &
mock_pid=$!
for _ in $(seq 100); do [ -s "$work/mock.port" ] && break; sleep 0.1; done
port="$(head -1 "$work/mock.port")"

"$bin/clawchatd" bootstrap-key > "$work/bk"
state="$work/state"
# 16 pieces, 150 ms apart: a reply takes about 2.4 s, long enough to watch it stream and cancel it.
"$bin/clawchatd" run --state-dir "$state" --listen 127.0.0.1:0 --bootstrap-key-file "$work/bk" \
  --provider openai-compatible --model mock --api-key-env '' \
  --base-url "http://127.0.0.1:$port/s/ok,chunk_delay_ms=150,pieces=16/v1" 2> "$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 100); do [ -f "$state/security/clawchat-current.sec" ] && break; sleep 0.1; done
export CLAWCHAT_CONFIG_DIR="$work/laptop"
check "pair" "$bin/clawchat" pair "$state/security/clawchat-current.sec" --name tmux --bootstrap-key-file "$work/bk"

tmux -S "$sock" new-session -d -s "$session" -x 160 -y 50 \
  "env CLAWCHAT_CONFIG_DIR='$work/laptop' HOME='$work' '$bin/clawchat'; echo CLIENT-EXITED \$?; sleep 30"
check "the session connects" wait_pane 10 "[connected to"

keys -l "what is the weather like"
keys Enter
# Streaming: at some moment the reply is on screen but not yet complete.
partial=0
for _ in $(seq 200); do
  screen="$(pane)"
  if grep -qF "You said:" <<<"$screen"; then
    grep -qF "You said: what is the weather like" <<<"$screen" || partial=1
    [ $partial -eq 1 ] && break
  fi
  sleep 0.02
done
check "the reply streams in (seen part-way)" [ $partial -eq 1 ]
check "the whole reply arrives" wait_pane 10 "You said: what is the weather like"
check "then the prompt is back" wait_prompt 10

# Line editing: type "orld", Ctrl-A, "hello w" at the start; End, Left twice, "x".
keys -l "orld"; keys C-a; keys -l "hello w"; keys End; keys Left Left; keys -l "x"
keys Enter
check "line editing (Ctrl-A, End, Left) edits the line" wait_pane 10 "You said: hello worxld"
wait_prompt 10

# History: Up recalls the previous line.
keys Up
check "Up recalls the previous line" wait_pane 5 "> hello worxld"
keys C-u

# Cancel: Ctrl-C while a reply streams.
keys -l "tell me a long story"; keys Enter
check "the long reply starts" wait_pane 10 "You said: tel"
keys C-c
check "Ctrl-C cancels it" wait_pane 5 "[cancelled]"
check "the mock saw the connection closed" bash -c "for i in \$(seq 50); do grep -q '\"closed\"' '$work/mock.jsonl' && exit 0; sleep 0.1; done; exit 1"
sleep 0.3
check "a half-typed line is abandoned with Ctrl-C, the session stays" bash -c "tmux -S '$sock' send-keys -t '$session' -l 'never mind' && sleep 0.2 && tmux -S '$sock' send-keys -t '$session' C-c && sleep 0.3 && tmux -S '$sock' capture-pane -p -t '$session' | grep -qF 'never mind^C'"
check "the cancelled reply did not finish on screen" bash -c "! tmux -S '$sock' capture-pane -p -t '$session' | grep -qF 'You said: tell me a long story'"

keys -l "/history"; keys Enter
check "/history lists the first exchange" wait_pane 5 "claw: You said: what is the weather like"
check "/history lists the edited line" wait_pane 5 "you:  hello worxld"
check "/history has no trace of the cancelled question" bash -c "! tmux -S '$sock' capture-pane -p -t '$session' | grep -qF 'you:  tell me a long story'"

keys -l "/status"; keys Enter
check "/status shows the connection and the provider" wait_pane 5 "assistant: openai-compatible mock"

keys -l "/cron"; keys Enter
check "/cron lists the template's jobs" wait_pane 5 "Weekly Architecture Review"
keys -l '/cron run "Security Check"'; keys Enter
check "/cron run starts the job" wait_pane 5 '"Security Check" started'
check "its result is pushed to the session" wait_pane 10 "[cron] Security Check (manual) done:"
wait_prompt 5

keys -l "/mkdir notes"; keys Enter
sleep 0.3
keys -l "/ls"; keys Enter
check "/mkdir then /ls shows the new directory" wait_pane 5 "notes/"
keys -l "/cd notes"; keys Enter; sleep 0.3
keys -l "/pwd"; keys Enter
check "/cd and /pwd" wait_pane 5 "/notes"
wait_prompt 5

keys C-c
check "Ctrl-C at an empty prompt leaves with status 0" wait_pane 5 "CLIENT-EXITED 0"
check "the line history was saved" grep -qx "hello worxld" "$work/laptop/history"

if [ $failed -gt 0 ]; then echo "--- pane:"; pane; echo "--- daemon log:"; cat "$work/daemon.log"; fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
