#!/usr/bin/env bash
# Exercises the README's commands on real binaries, on loopback, without root:
# bootstrap-key, run, pair, ask (plain and --json), history, reload, clear, devices list/revoke, secfile, a wrong
# bootstrap key, a spent security file, and a graceful SIGTERM. Usage: cli-commands.sh BIN_DIR
set -uo pipefail
bin="${1:?usage: cli-commands.sh BIN_DIR}"
work="$(mktemp -d /tmp/clawchat-cli.XXXXXX)"
daemon_pid=""
source "$(dirname "$0")/lib.sh"
cleanup() {
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then kill -KILL "$daemon_pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/clawchatd" bootstrap-key > "$work/bk"
chmod 600 "$work/bk"
state="$work/state"
sec="$state/security/clawchat-current.sec"
"$bin/clawchatd" run --state-dir "$state" --listen 127.0.0.1:0 --bootstrap-key-file "$work/bk" --provider echo 2> "$work/daemon.log" &
daemon_pid=$!
check "daemon writes a security file" wait_for 10 test -f "$sec"
cp "$sec" "$work/first.sec"

export CLAWCHAT_CONFIG_DIR="$work/laptop"
check "pair with a wrong bootstrap key fails with a clear error" \
  bash -c "! CLAWCHAT_BOOTSTRAP_KEY=\$('$bin/clawchatd' bootstrap-key) '$bin/clawchat' pair '$sec' 2> '$work/err' && grep -q 'wrong bootstrap key' '$work/err'"
check "pair" "$bin/clawchat" pair "$sec" --name laptop --bootstrap-key-file "$work/bk"
check "ask" bash -c "[ \"\$('$bin/clawchat' ask hello)\" = 'echo: hello' ]"
"$bin/clawchat" ask --json 'say "hi"' > "$work/json.out"
check "ask --json escapes quotes" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["reply"] == "echo: say \"hi\"" and d["provider"] == "echo" and d["stored"] == "true", d' "$work/json.out"
check "history shows both exchanges" bash -c "'$bin/clawchat' history | grep -c '^claw: echo: ' | grep -qx 2"
check "history --json" python3 -c '
import json, subprocess, sys
d = json.loads(subprocess.run([sys.argv[1] + "/clawchat", "history", "--json"], capture_output=True, check=True).stdout)
assert [e["user"] for e in d["exchanges"]] == ["hello", "say \"hi\""], d' "$bin"
check "reload names the context files" bash -c "'$bin/clawchat' reload | grep -q 'SOUL.md, AGENTS.md, USER.md, MEMORY.md'"
check "clear empties the history" bash -c "'$bin/clawchat' clear | grep -q 'cleared (2' && '$bin/clawchat' history | grep -q 'no history'"
check "cron list shows the template's four jobs" bash -c "'$bin/clawchat' cron list | grep -c -E '^(Daily Summary|Security Check|Weekly Architecture Review|Daily Memory Update) ' | grep -qx 4"
cp "$state/context/CRON.md" "$work/cron.before"
check "cron add" "$bin/clawchat" cron add --name "Standup" --schedule "0 9 * * 1-5" --command "Plan my day" --context "Short."
check "cron list --json has it, enabled, with a next run" python3 -c '
import json, subprocess, sys
d = json.loads(subprocess.run([sys.argv[1] + "/clawchat", "cron", "list", "--json"], capture_output=True, check=True).stdout)
j = [j for j in d["jobs"] if j["name"] == "Standup"][0]
assert j["enabled"] and j["schedule"] == "0 9 * * 1-5" and j["nextRun"] > 0, j' "$bin"
check "cron disable, enable" bash -c "'$bin/clawchat' cron disable Standup && '$bin/clawchat' cron list | grep -E '^Standup ' | grep -q ' no$' && '$bin/clawchat' cron enable Standup"
check "cron remove leaves CRON.md byte for byte as before" bash -c "'$bin/clawchat' cron remove Standup && cmp -s '$state/context/CRON.md' '$work/cron.before'"
check "cron add with a bad schedule fails clearly" bash -c "! '$bin/clawchat' cron add --name X --schedule '61 * * * *' --command y 2> '$work/err' && grep -q 'minute' '$work/err'"
check "cron run, then cron results shows the result once" bash -c "
  '$bin/clawchat' cron run 'Daily Summary' >/dev/null &&
  for i in \$(seq 50); do '$bin/clawchat' cron results > '$work/results' && grep -q 'Daily Summary' '$work/results' && break; sleep 0.1; done &&
  grep -q 'echo: Scheduled task' '$work/results' && '$bin/clawchat' cron results | grep -q 'no new cron results'"
check "clawchatd status shows the session" bash -c "'$bin/clawchatd' status --state-dir '$state' | grep -q ' laptop '"
check "clawchatd status --json" python3 -c '
import json, subprocess, sys
d = json.loads(subprocess.run([sys.argv[1] + "/clawchatd", "status", "--state-dir", sys.argv[2], "--json"], capture_output=True, check=True).stdout)
assert any(x.get("name") == "laptop" for x in d["sessions"]), d["sessions"]' "$bin" "$state"
check "the control socket is 0600" bash -c "[ \"\$(stat -c %a '$state/control.sock')\" = 600 ]"
check "devices list shows the device" bash -c "'$bin/clawchatd' devices list --state-dir '$state' | grep -q ' laptop '"
check "the spent file cannot pair a second device" \
  bash -c "! CLAWCHAT_CONFIG_DIR='$work/other' '$bin/clawchat' pair '$work/first.sec' --bootstrap-key-file '$work/bk' 2>/dev/null"

check "secfile makes a fresh file" "$bin/clawchatd" secfile --state-dir "$state"
check "the fresh file pairs a second device" \
  env CLAWCHAT_CONFIG_DIR="$work/phone" "$bin/clawchat" pair "$sec" --name phone --bootstrap-key-file "$work/bk"
check "revoke the second device" "$bin/clawchatd" devices revoke phone --state-dir "$state"
check "the revoked device gets no answer" \
  bash -c "! CLAWCHAT_CONFIG_DIR='$work/phone' '$bin/clawchat' ask --timeout 3 hi 2>/dev/null"
check "the first device still works" bash -c "[ \"\$('$bin/clawchat' ask still)\" = 'echo: still' ]"

kill -TERM "$daemon_pid"
check "SIGTERM stops the daemon" wait_for 5 bash -c "! kill -0 $daemon_pid 2>/dev/null"
check "the pid file is removed" test ! -f "$state/clawchatd.pid"
check "no secret in the daemon's log" bash -c "! grep -qF \"\$(cat '$work/bk')\" '$work/daemon.log'"

if [ $failed -gt 0 ]; then echo "daemon log:"; cat "$work/daemon.log"; fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
