#!/usr/bin/env bash
# The README's main command, scripts/demo, driven in tmux up to where a person takes over: it
# sets up, starts the daemon, pairs, opens the chat; a question gets the echo provider's answer;
# /quit ends it and the demo cleans up (no daemon left). The binaries are the test build's
# (CLAWCHAT_BIN_DIR), so CI does not build release binaries twice. Usage: demo-tmux.sh BIN_DIR
set -uo pipefail
bin="$(cd "${1:?usage: demo-tmux.sh BIN_DIR}" && pwd)"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d /tmp/clawchat-demo-test.XXXXXX)"
sock="$work/tmux.sock"; session="demo$$"
source "$(dirname "$0")/lib.sh"
cleanup() { tmux -S "$sock" kill-server 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
pane() { tmux -S "$sock" capture-pane -p -S -200 -t "$session" 2>/dev/null; }
wait_pane() {
  local end=$((SECONDS + $1))
  until pane | grep -qF -- "$2"; do [ $SECONDS -ge $end ] && return 1; sleep 0.1; done
}
tmux -S "$sock" new-session -d -s "$session" -x 160 -y 50 \
  "cd '$repo' && CLAWCHAT_BIN_DIR='$bin' HOME='$work' bash scripts/demo; echo DEMO-EXITED \$?; sleep 30"
check "the demo pairs a client" wait_pane 60 'paired as "demo-laptop"'
check "and opens the chat" wait_pane 20 "[connected to 127.0.0.1:"
tmux -S "$sock" send-keys -t "$session" -l "hello from the demo test"; tmux -S "$sock" send-keys -t "$session" Enter
check "a question gets the echo reply" wait_pane 10 "echo: hello from the demo test"
tmux -S "$sock" send-keys -t "$session" -l "/quit"; tmux -S "$sock" send-keys -t "$session" Enter
check "/quit ends the demo cleanly" wait_pane 20 "DEMO-EXITED 0"
check "the demo's daemon is gone" bash -c "! pgrep -f 'clawchat-demo\.' >/dev/null"
if [ $failed -gt 0 ]; then echo "--- pane:"; pane | tail -40; fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
