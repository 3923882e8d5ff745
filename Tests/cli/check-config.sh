#!/usr/bin/env bash
# The configuration file on the real binary: check-config on a file with three different mistakes
# (exit 1, each with its FILE:LINE), on the example (exit 0), an environment file readable by
# others (refused), and `run --config` with a file that sets the echo provider and the listen
# address, answering `clawchat ask`. Usage: check-config.sh BIN_DIR
set -uo pipefail
bin="${1:?usage: check-config.sh BIN_DIR}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d /tmp/clawchat-config.XXXXXX)"
daemon_pid=""
source "$(dirname "$0")/lib.sh"
cleanup() {
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then kill -KILL "$daemon_pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/clawchatd" bootstrap-key > "$work/bk"
chmod 600 "$work/bk"
printf '# secrets\nCLAWCHAT_BOOTSTRAP_KEY="%s"\n' "$(cat "$work/bk")" > "$work/clawchatd.env"
chmod 600 "$work/clawchatd.env"

# Three different mistakes on three lines: an unknown key, a wrong type, an invalid value.
cat > "$work/bad.toml" <<TOML
env_file = "$work/clawchatd.env"
[server]
listen = "127.0.0.1:47400"
rekey_intervall = 3600
session_timeout = "180"

[assistant]
provider = "opena"
TOML
"$bin/clawchatd" check-config --config "$work/bad.toml" > "$work/bad.out" 2>&1
status=$?
cat "$work/bad.out"
check "check-config on three mistakes exits 1" test "$status" -eq 1
check "it reports three FILE:LINE: problems" bash -c "[ \$(grep -c '^$work/bad.toml:[0-9]*: ' '$work/bad.out') -eq 3 ]"
check "the unknown key at line 4, with a suggestion" grep -qF "$work/bad.toml:4: server.rekey_intervall: unknown key (did you mean rekey_interval?)" "$work/bad.out"
check "the wrong type at line 5" grep -qF "$work/bad.toml:5: server.session_timeout: must be an integer" "$work/bad.out"
check "the invalid provider at line 8" grep -qF "$work/bad.toml:8: assistant.provider: unknown provider \"opena\" (did you mean \"openai\"?)" "$work/bad.out"
check "run refuses the same file" bash -c "! '$bin/clawchatd' run --config '$work/bad.toml' 2> '$work/run.err' && grep -q 'rekey_intervall' '$work/run.err'"

check "check-config on the example exits 0" bash -c \
  "CLAWCHAT_BOOTSTRAP_KEY=x '$bin/clawchatd' check-config --config '$repo/packaging/clawchatd.toml' --env-file '' > '$work/example.out'"
check "it says OK and shows defaults" bash -c "grep -q '^configuration OK' '$work/example.out' && grep -q '^server.listen = \"0.0.0.0:47400\" .*# default' '$work/example.out'"

# The file for run: echo provider, a loopback listen address, the state under the work dir.
cat > "$work/clawchatd.toml" <<TOML
# written by check-config.sh
env_file = "$work/clawchatd.env"

[server]
listen = "127.0.0.1:0"
state_dir = "$work/state"
log_level = "debug"

[assistant]
provider = "echo"
TOML
"$bin/clawchatd" check-config --config "$work/clawchatd.toml" --log-level info > "$work/good.out"
check "check-config shows each source and the secret only as set" bash -c "
  grep -q '^server.listen = \"127.0.0.1:0\" .*# file $work/clawchatd.toml:5' '$work/good.out' &&
  grep -q '^server.log_level = \"info\" .*# flag --log-level' '$work/good.out' &&
  grep -q '^server.rekey_interval = 3600 .*# default' '$work/good.out' &&
  grep -qx '  CLAWCHAT_BOOTSTRAP_KEY: set (env file $work/clawchatd.env)' '$work/good.out' &&
  ! grep -qF \"\$(cat '$work/bk')\" '$work/good.out'"

chmod 644 "$work/clawchatd.env"
check "an environment file readable by others is refused" bash -c "
  ! '$bin/clawchatd' check-config --config '$work/clawchatd.toml' > '$work/open.out' &&
  grep -q '^$work/clawchatd.env: mode 0644' '$work/open.out'"
chmod 600 "$work/clawchatd.env"

# No bootstrap key in the environment or on the command line: it comes from the env file.
state="$work/state"
sec="$state/security/clawchat-current.sec"
env -u CLAWCHAT_BOOTSTRAP_KEY "$bin/clawchatd" run --config "$work/clawchatd.toml" 2> "$work/daemon.log" &
daemon_pid=$!
check "run --config writes a security file in the file's state_dir" wait_for 10 test -f "$sec"
export CLAWCHAT_CONFIG_DIR="$work/laptop"
check "pair" "$bin/clawchat" pair "$sec" --name laptop --bootstrap-key-file "$work/bk"
check "ask is answered by the file's echo provider" bash -c "[ \"\$('$bin/clawchat' ask hello)\" = 'echo: hello' ]"
check "the file's log level is in force" grep -q '^<7>debug ' "$work/daemon.log"
kill -TERM "$daemon_pid"
check "SIGTERM stops the daemon" wait_for 5 bash -c "! kill -0 $daemon_pid 2>/dev/null"
check "no secret in the daemon's log" bash -c "! grep -qF \"\$(cat '$work/bk')\" '$work/daemon.log'"

if [ "$failed" -gt 0 ]; then echo "daemon log:"; cat "$work/daemon.log"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
