#!/usr/bin/env bash
# Tests scripts/install, scripts/uninstall and packaging/clawchatd.service, as root:
#  (a) `systemd-analyze verify` passes on the unit (and catches a planted mistake); its offline
#      security score stays low;
#  (b) install into a scratch root (its own /etc/passwd, group, shadow, gshadow, login.defs)
#      creates every path with the right numeric owner (the scratch root's clawchat), mode and
#      content, and a valid bootstrap key that is never printed; a second run changes nothing
#      (owners, modes, sizes, modification times, contents) and keeps the key; uninstall keeps
#      the key for a reinstall; uninstall --purge removes everything, the user included;
#  (c) the daemon run exactly as the unit would run it (ExecStart, as the clawchat user with no
#      groups, capabilities or new privileges, umask 0077, memory-deny-write-execute, the env
#      file, NOTIFY_SOCKET and WATCHDOG_USEC on a socket this test listens on): READY=1 arrives,
#      `clawchat pair` and `ask` work, WATCHDOG=1 comes every WATCHDOG_USEC/2, SIGTERM gives
#      STOPPING=1 and exit status 0;
#  (d) the unit really starts under systemd: this machine's PID 1 is not systemd, so the test
#      boots a private one in namespaces (Tests/install/systemd-ns.sh) and runs scripts/install
#      there with real systemctl: active with the READY status, pair and ask, watchdog pings
#      reach systemd, a stopped (stuck) daemon is killed by the watchdog and restarted, SIGTERM
#      stops it with status 0, scripts/uninstall --purge removes it.
# Usage: install.sh BIN_DIR (debug binaries are fine)
set -uo pipefail
bin="$(cd "${1:?usage: install.sh BIN_DIR}" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [ "$(id -u)" -ne 0 ]; then
  echo "WARNING: not root: the install test (Tests/install/install.sh) was NOT run." >&2
  echo "Run scripts/test as root (CI does) to include it." >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  exit 0
fi
work="$(mktemp -d /tmp/clawchat-install.XXXXXX)"
chmod 0755 "$work"   # the scratch clawchat user must reach its state directory below it
daemon_pid=""; listener_pid=""; ns=""
source "$(dirname "$0")/../cli/lib.sh"
cleanup() {
  for p in "$daemon_pid" "$listener_pid"; do
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; fi
  done
  if [ -n "$ns" ]; then "$here/systemd-ns.sh" stop "$ns"; fi
  rm -rf "$work"
}
trap cleanup EXIT
if ! command -v systemd-analyze >/dev/null 2>&1; then "$repo/scripts/setup" >/dev/null; fi

# --- (b) a scratch root ----------------------------------------------------------------------
root="$work/root"
mkdir -p "$root/etc"
chmod 0755 "$root"
printf 'root:x:0:0:root:/root:/bin/bash\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
printf 'root:*:19000:0:99999:7:::\n' > "$root/etc/shadow"
printf 'root:*::\n' > "$root/etc/gshadow"
chmod 0640 "$root/etc/shadow" "$root/etc/gshadow"
# System ids 400-499 here, so they cannot be mistaken for a clawchat user of the host.
printf 'SYS_UID_MIN 400\nSYS_UID_MAX 499\nSYS_GID_MIN 400\nSYS_GID_MAX 499\nUID_MIN 1000\nGID_MIN 1000\n' > "$root/etc/login.defs"

sha256sum /etc/passwd /etc/group /etc/shadow /etc/gshadow > "$work/host-accounts"
"$repo/scripts/install" --root "$root" --bin-dir "$bin" --no-systemctl --public-address 127.0.0.1 > "$work/install1.log" 2>&1
check "install --root exits 0" test $? -eq 0
uid="$(awk -F: '$1 == "clawchat" { print $3 }' "$root/etc/passwd")"
gid="$(awk -F: '$1 == "clawchat" { print $3 }' "$root/etc/group")"
check "the system user and group clawchat exist in the scratch root with system ids" \
  bash -c "[ -n '$uid' ] && [ '$uid' -ge 400 ] && [ '$uid' -le 499 ] && [ '$gid' -ge 400 ] && [ '$gid' -le 499 ]"
check "clawchat: primary group clawchat, home /var/lib/clawchat, shell /usr/sbin/nologin, locked password" \
  bash -c "grep -qx 'clawchat:x:$uid:$gid:ClawChat daemon:/var/lib/clawchat:/usr/sbin/nologin' '$root/etc/passwd' \
           && grep -q '^clawchat:!' '$root/etc/shadow' && grep -q '^clawchat:' '$root/etc/gshadow'"
check "the host's own account files are untouched" bash -c "sha256sum /etc/passwd /etc/group /etc/shadow /etc/gshadow | cmp -s - '$work/host-accounts'"
expect_stat() {  # expect_stat PATH UID GID MODE TYPE
  [ "$(stat -c '%u %g %a %F' "$1" 2>/dev/null)" = "$2 $3 $4 $5" ] || { echo "  $1: $(stat -c '%u %g %a %F' "$1" 2>&1), want $2 $3 $4 $5"; return 1; }
}
check "usr/local/bin/clawchatd 0755 root:root, the given binary" bash -c "$(declare -f expect_stat); expect_stat '$root/usr/local/bin/clawchatd' 0 0 755 'regular file' && cmp -s '$bin/clawchatd' '$root/usr/local/bin/clawchatd'"
check "usr/local/bin/clawchat 0755 root:root, the given binary" bash -c "$(declare -f expect_stat); expect_stat '$root/usr/local/bin/clawchat' 0 0 755 'regular file' && cmp -s '$bin/clawchat' '$root/usr/local/bin/clawchat'"
check "etc/clawchat 0750 root:clawchat" expect_stat "$root/etc/clawchat" 0 "$gid" 750 directory
check "etc/clawchat/clawchatd.env 0640 root:clawchat" expect_stat "$root/etc/clawchat/clawchatd.env" 0 "$gid" 640 "regular file"
check "etc/clawchat/clawchatd.toml 0640 root:clawchat" expect_stat "$root/etc/clawchat/clawchatd.toml" 0 "$gid" 640 "regular file"
check "var/lib/clawchat 0700 clawchat:clawchat" expect_stat "$root/var/lib/clawchat" "$uid" "$gid" 700 directory
check "etc/systemd/system/clawchatd.service 0644 root:root, the packaged unit" bash -c "$(declare -f expect_stat); expect_stat '$root/etc/systemd/system/clawchatd.service' 0 0 644 'regular file' && cmp -s '$repo/packaging/clawchatd.service' '$root/etc/systemd/system/clawchatd.service'"
check "nothing else was created (no temporary file left)" bash -c "[ \"\$(cd '$root' && find . -mindepth 1 | sort | grep -v '^./etc/\(passwd\|group\|shadow\|gshadow\|login.defs\)-\?$' | tr '\n' ' ')\" = \
  './etc ./etc/clawchat ./etc/clawchat/clawchatd.env ./etc/clawchat/clawchatd.toml ./etc/systemd ./etc/systemd/system ./etc/systemd/system/clawchatd.service ./usr ./usr/local ./usr/local/bin ./usr/local/bin/clawchat ./usr/local/bin/clawchatd ./var ./var/lib ./var/lib/clawchat ' ]"
key="$(sed -n 's/^CLAWCHAT_BOOTSTRAP_KEY=//p' "$root/etc/clawchat/clawchatd.env")"
check "the env file holds one bootstrap key: Base64 of 32 random bytes" \
  bash -c "[ \$(grep -c '^CLAWCHAT_BOOTSTRAP_KEY=' '$root/etc/clawchat/clawchatd.env') -eq 1 ] && [ \"\$(printf %s '$key' | base64 -d 2>/dev/null | wc -c)\" -eq 32 ]"
check "the key is never printed" bash -c "[ -n '$key' ] && ! grep -qF '$key' '$work/install1.log'"
check "the configuration names the public address" grep -qx 'public_addresses = \["127.0.0.1"\]' "$root/etc/clawchat/clawchatd.toml"
check "clawchatd check-config accepts the installed configuration and env file" \
  bash -c "'$bin/clawchatd' check-config --config '$root/etc/clawchat/clawchatd.toml' --state-dir '$root/var/lib/clawchat' \
           --env-file '$root/etc/clawchat/clawchatd.env' > '$work/check.out' 2>&1 && ! grep -qF '$key' '$work/check.out'"
check "install prints where the security file is and that the key is in the env file" \
  bash -c "grep -q '/var/lib/clawchat/security/clawchat-current.sec' '$work/install1.log' && grep -q 'bootstrap key is in there' '$work/install1.log'"
snapshot() { (cd "$root" && find . -printf '%p %U %G %m %s %T@\n' | sort && find . -type f -exec sha256sum {} + | sort); }
snapshot > "$work/snap1"
"$repo/scripts/install" --root "$root" --bin-dir "$bin" --no-systemctl --public-address 192.0.2.99 > "$work/install2.log" 2>&1
check "a second install exits 0" test $? -eq 0
snapshot > "$work/snap2"
check "a second install changes nothing (owners, modes, sizes, times, contents; the key is kept)" cmp -s "$work/snap1" "$work/snap2"
check "a second install reports nothing created or written" bash -c "! grep -Eq '(created|installed|wrote) ' '$work/install2.log'"

# --- (a) systemd-analyze verify -------------------------------------------------------------
# verify wants ExecStart's binary to exist: the copy rewrites that one path to the binary the
# scratch install put in place, and nothing else.
mkdir -p "$work/verify"
sed "s|^ExecStart=/usr/local/bin/clawchatd |ExecStart=$root/usr/local/bin/clawchatd |" \
  "$repo/packaging/clawchatd.service" > "$work/verify/clawchatd.service"
check "the verify copy differs from the unit in the ExecStart path only" \
  bash -c "[ \"\$(diff '$repo/packaging/clawchatd.service' '$work/verify/clawchatd.service' | grep -c '^[<>]')\" -eq 2 ]"
(cd "$work/verify" && systemd-analyze verify "$work/verify/clawchatd.service") > "$work/verify.out" 2>&1
check "systemd-analyze verify passes, without a single warning" bash -c "[ $? -eq 0 ] && [ ! -s '$work/verify.out' ]"
[ -s "$work/verify.out" ] && cat "$work/verify.out"
sed 's/^ProtectSystem=strict$/ProtectSystem=strictt/' "$work/verify/clawchatd.service" > "$work/verify/broken.service"
# It exits 0 on a line it ignores, so the test above wants no output at all; this shows it would speak.
check "systemd-analyze verify does report a planted mistake" bash -c "(cd '$work/verify' && systemd-analyze verify '$work/verify/broken.service' 2>&1) | grep -q 'Failed to parse protect system value'"
systemd-analyze security --offline=true "$work/verify/clawchatd.service" > "$work/security.out" 2>&1
score="$(sed -n 's/.*Overall exposure level for clawchatd.service: \([0-9.]*\).*/\1/p' "$work/security.out")"
echo "systemd-analyze security: exposure ${score:-?} (0 = locked down, 10 = exposed)"
check "systemd-analyze security rates the unit below 2.0" python3 -c "import sys; sys.exit(0 if float('${score:-99}') < 2.0 else 1)"

# --- (c) the daemon as the unit runs it -----------------------------------------------------
port=$((47400 + RANDOM % 2000 + 100))
toml="$root/etc/clawchat/clawchatd.toml"
sed -i -e "s|^# listen = \"0.0.0.0:47400\"$|listen = \"127.0.0.1:$port\"|" -e 's|^# provider = "none"$|provider = "echo"|' "$toml"
check "the test's settings went into the installed configuration" bash -c "grep -q '^listen = \"127.0.0.1:$port\"' '$toml' && grep -q '^provider = \"echo\"' '$toml'"
exec_start="$(sed -n 's/^ExecStart=//p' "$root/etc/systemd/system/clawchatd.service")"
read -r -a argv <<< "$(printf '%s' "$exec_start" | sed -e "s|/usr/local/bin/|$root/usr/local/bin/|g" -e "s|/etc/clawchat/|$root/etc/clawchat/|g" -e "s|/var/lib/clawchat|$root/var/lib/clawchat|g")"
argv+=(--env-file "$root/etc/clawchat/clawchatd.env")   # its default is the host's /etc/clawchat
echo "running as the unit would: ${argv[*]}"
envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8)
while IFS= read -r line; do envs+=("$line"); done < <(grep -E '^[A-Za-z_][A-Za-z0-9_]*=' "$root/etc/clawchat/clawchatd.env")
envs+=("$(sed -n 's/^Environment=//p' "$root/etc/systemd/system/clawchatd.service")")
envs+=(NOTIFY_SOCKET="$work/notify.sock" WATCHDOG_USEC=1000000 HOME=/var/lib/clawchat USER=clawchat LOGNAME=clawchat)
python3 "$here/notify_listener.py" "$work/notify.sock" "$work/notify.log" &
listener_pid=$!
wait_for 5 test -S "$work/notify.sock"
(
  cd "$root/var/lib/clawchat" || exit 1
  umask 0077
  # exec keeps the pid, so WATCHDOG_PID is the daemon's, as systemd sets it.
  exec env -i "${envs[@]}" WATCHDOG_PID="$BASHPID" python3 "$here/mdwe_exec.py" \
    setpriv --reuid="$uid" --regid="$gid" --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all -- "${argv[@]}"
) 2> "$work/daemon.log" &
daemon_pid=$!
notified() { python3 -c '
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1])]
want = sys.argv[2]
sys.exit(0 if any(m == want or m.startswith(want + "\n") for m in msgs) else 1)' "$work/notify.log" "$1"; }
check "READY=1 arrives on NOTIFY_SOCKET" wait_for 15 notified READY=1
check "with STATUS=listening on the configured address" grep -qF '"READY=1\nSTATUS=listening on 127.0.0.1:'"$port"', 0 paired device(s)"' "$work/notify.log"
check "the daemon runs as clawchat, no supplementary groups, no capabilities, no_new_privs, umask 0077" \
  bash -c "s=/proc/$daemon_pid/status; grep -q '^Uid:[[:space:]]*$uid[[:space:]]*$uid[[:space:]]*$uid' \$s && grep -q '^Gid:[[:space:]]*$gid[[:space:]]' \$s \
           && grep -qE '^Groups:[[:space:]]*$' \$s && grep -q '^CapEff:[[:space:]]*0000000000000000' \$s && grep -q '^CapBnd:[[:space:]]*0000000000000000' \$s \
           && grep -q '^NoNewPrivs:[[:space:]]*1' \$s && grep -q '^Umask:[[:space:]]*0077' \$s"
sec="$root/var/lib/clawchat/security/clawchat-current.sec"
wait_for 10 test -f "$sec"
check "the security file is written, 0600 clawchat" expect_stat "$sec" "$uid" "$gid" 600 "regular file"
export CLAWCHAT_CONFIG_DIR="$work/laptop"
check "clawchat pair against it" bash -c "CLAWCHAT_BOOTSTRAP_KEY='$key' '$bin/clawchat' pair '$sec' --name install-test > '$work/pair.out' 2>&1 || { cat '$work/pair.out'; false; }"
check "clawchat ask against it" bash -c "[ \"\$('$bin/clawchat' ask 'hello from the unit')\" = 'echo: hello from the unit' ]"
sleep 2.2
pings="$(grep -cx '"WATCHDOG=1"' "$work/notify.log")"
check "WATCHDOG=1 every WATCHDOG_USEC/2 (0.5 s): $pings so far" test "$pings" -ge 3
kill -TERM "$daemon_pid"
wait "$daemon_pid"; status=$?
daemon_pid=""
check "SIGTERM: exit status 0" test "$status" -eq 0
check "SIGTERM: STOPPING=1 arrives" notified STOPPING=1
check "every file the daemon made is clawchat's" bash -c "[ -z \"\$(find '$root/var/lib/clawchat' ! -uid $uid -o ! -gid $gid)\" ]"
check "no secret in the daemon's log" bash -c "! grep -qF '$key' '$work/daemon.log'"
if [ $failed -gt 0 ]; then echo "daemon log:"; cat "$work/daemon.log"; echo "notifications:"; cat "$work/notify.log"; fi
kill "$listener_pid" 2>/dev/null; wait "$listener_pid" 2>/dev/null; listener_pid=""

# --- (b) uninstall ----------------------------------------------------------------------------
"$repo/scripts/uninstall" --root "$root" > "$work/uninstall1.log" 2>&1
check "uninstall removes the unit and the binaries" \
  bash -c "[ ! -e '$root/etc/systemd/system/clawchatd.service' ] && [ ! -e '$root/usr/local/bin/clawchatd' ] && [ ! -e '$root/usr/local/bin/clawchat' ]"
check "uninstall without --purge keeps the user, the key and the state" \
  bash -c "grep -q '^clawchat:' '$root/etc/passwd' && grep -qF '$key' '$root/etc/clawchat/clawchatd.env' && [ -f '$root/var/lib/clawchat/server.key' ]"
"$repo/scripts/install" --root "$root" --bin-dir "$bin" --no-systemctl > "$work/install3.log" 2>&1
check "a reinstall keeps the bootstrap key and the ids" \
  bash -c "grep -qx 'CLAWCHAT_BOOTSTRAP_KEY=$key' '$root/etc/clawchat/clawchatd.env' && [ \"\$(awk -F: '\$1 == \"clawchat\" { print \$3 }' '$root/etc/passwd')\" = '$uid' ]"
"$repo/scripts/uninstall" --root "$root" --purge > "$work/uninstall2.log" 2>&1
check "uninstall --purge exits 0" test $? -eq 0
check "uninstall --purge removes the user, the group, /etc/clawchat, /var/lib/clawchat, the unit, the binaries" \
  bash -c "! grep -q '^clawchat:' '$root/etc/passwd' '$root/etc/group' '$root/etc/shadow' '$root/etc/gshadow' \
           && [ -z \"\$(cd '$root' && find . -name '*clawchat*')\" ]"

# --- (d) under a real systemd -----------------------------------------------------------------
if systemctl is-system-running >/dev/null 2>&1 || [ "$(systemctl is-system-running 2>/dev/null)" = degraded ]; then
  echo "NOTE: this machine runs systemd; the test still uses a private one, to leave the host's services alone."
else
  echo "NOTE: systemctl is-system-running does not work here (PID 1 is $(cat /proc/1/comm)): booting a private systemd in namespaces."
fi
ns="$work/ns"
if ! syspid="$("$here/systemd-ns.sh" start "$ns")"; then
  ns=""
  echo "WARNING: could not boot a private systemd: the unit was NOT started under systemd here;" >&2
  echo "WARNING: only (c) above, the daemon run as the unit would run it, shows that it starts." >&2
  if [ "${CI:-}" = "true" ]; then failed=$((failed + 1)); fi
else
  in_ns() { nsenter -t "$syspid" -a -r -w "$@"; }
  echo "private systemd: host pid $syspid, $(in_ns systemctl --version | head -n1)"
  # The namespace has its own /tmp, and this checkout or BIN_DIR may live there: copy in what
  # the install needs (it lands in the overlay, like everything written inside).
  stage=/var/tmp/clawchat-install-test
  tar -C "$repo" -cf - scripts/install scripts/uninstall scripts/setup packaging | in_ns sh -c "mkdir -p $stage/repo && tar -C $stage/repo -xf -"
  tar -C "$bin" -cf - clawchatd clawchat | in_ns sh -c "mkdir -p $stage/bin && tar -C $stage/bin -xf -"
  in_ns "$stage/repo/scripts/install" --bin-dir "$stage/bin" --public-address 127.0.0.1 > "$work/ns-install.log" 2>&1
  check "systemd: scripts/install with real systemctl (daemon-reload, enable --now) exits 0" test $? -eq 0
  check "systemd: verify passes on the installed unit, at its real path" \
    bash -c "out=\$(nsenter -t $syspid -a -r -w systemd-analyze verify /etc/systemd/system/clawchatd.service 2>&1) && [ -z \"\$out\" ] || { echo \"\$out\"; false; }"
  show() { in_ns systemctl show clawchatd -p "$1" --value; }
  check "systemd: clawchatd is enabled and active (running), READY's status shown" \
    bash -c "[ \"\$(nsenter -t $syspid -a -r -w systemctl is-enabled clawchatd)\" = enabled ] && [ \"\$(nsenter -t $syspid -a -r -w systemctl is-active clawchatd)\" = active ] \
             && nsenter -t $syspid -a -r -w systemctl show clawchatd -p StatusText --value | grep -q '^listening on 0.0.0.0:47400, 0 paired device(s)$'"
  check "systemd: it runs as clawchat with the unit's sandbox" \
    bash -c "p=\$(nsenter -t $syspid -a -r -w systemctl show clawchatd -p MainPID --value); s=\$(nsenter -t $syspid -a -r -w cat /proc/\$p/status); \
             u=\$(nsenter -t $syspid -a -r -w id -u clawchat); echo \"\$s\" | grep -q \"^Uid:[[:space:]]*\$u[[:space:]]\" && echo \"\$s\" | grep -q '^NoNewPrivs:[[:space:]]*1' \
             && echo \"\$s\" | grep -q '^CapBnd:[[:space:]]*0000000000000000' && echo \"\$s\" | grep -q '^Seccomp:[[:space:]]*2'"
  # The test's own settings: the echo provider, and a 2 s watchdog so that it acts quickly.
  in_ns sed -i 's|^# provider = "none"$|provider = "echo"|' /etc/clawchat/clawchatd.toml
  in_ns mkdir -p /etc/systemd/system/clawchatd.service.d
  printf '[Service]\nWatchdogSec=2\nRestartSec=1\n' | in_ns tee /etc/systemd/system/clawchatd.service.d/test.conf > /dev/null
  in_ns systemctl daemon-reload
  in_ns systemctl restart clawchatd
  check "systemd: restarted with the test's drop-in" bash -c "[ \"\$(nsenter -t $syspid -a -r -w systemctl is-active clawchatd)\" = active ]"
  nskey="$(in_ns sed -n 's/^CLAWCHAT_BOOTSTRAP_KEY=//p' /etc/clawchat/clawchatd.env)"
  check "systemd: clawchat pair with the file the service wrote" \
    in_ns env CLAWCHAT_CONFIG_DIR=/tmp/laptop CLAWCHAT_BOOTSTRAP_KEY="$nskey" clawchat pair /var/lib/clawchat/security/clawchat-current.sec --name ns-laptop
  check "systemd: clawchat ask" bash -c "[ \"\$(nsenter -t $syspid -a -r -w env CLAWCHAT_CONFIG_DIR=/tmp/laptop clawchat ask 'hello systemd')\" = 'echo: hello systemd' ]"
  t1="$(show WatchdogTimestampMonotonic)"; sleep 2.5; t2="$(show WatchdogTimestampMonotonic)"
  check "systemd: receives the watchdog pings ($t1 -> $t2)" test "$t2" -gt "$t1"
  stuck="$(show MainPID)"
  restarted() { local p; p="$(show MainPID)"; [ "$p" != "$stuck" ] && [ "$p" != 0 ] && [ "$(in_ns systemctl is-active clawchatd)" = active ]; }
  if [[ "$stuck" =~ ^[1-9][0-9]*$ ]]; then   # never `kill -STOP 0`: that is this test's own group
    in_ns kill -STOP "$stuck"
    check "systemd: a stuck daemon (SIGSTOP) is killed by the watchdog and restarted" wait_for 20 restarted
  else
    check "systemd: a stuck daemon (SIGSTOP) is killed by the watchdog and restarted (no main pid: $stuck)" false
  fi
  check "systemd: the journal says why" bash -c "nsenter -t $syspid -a -r -w journalctl -u clawchatd --no-pager | grep -q 'Watchdog timeout'"
  check "systemd: after the restart the paired laptop still chats" \
    bash -c "[ \"\$(nsenter -t $syspid -a -r -w env CLAWCHAT_CONFIG_DIR=/tmp/laptop clawchat ask again)\" = 'echo: again' ]"
  in_ns systemctl stop clawchatd
  check "systemd: stop (SIGTERM) ends with status 0 and result success" \
    bash -c "[ \"\$(nsenter -t $syspid -a -r -w systemctl show clawchatd -p ExecMainStatus --value)\" = 0 ] && [ \"\$(nsenter -t $syspid -a -r -w systemctl show clawchatd -p Result --value)\" = success ]"
  check "systemd: the daemon logged its graceful stop" bash -c "nsenter -t $syspid -a -r -w journalctl -u clawchatd --no-pager | grep -q 'stopping (SIGTERM)'"
  in_ns journalctl -u clawchatd --no-pager > "$work/ns-journal.log" 2>&1
  check "systemd: no secret in the journal" bash -c "! grep -qF '$nskey' '$work/ns-journal.log'"
  in_ns "$stage/repo/scripts/uninstall" --purge > "$work/ns-uninstall.log" 2>&1
  check "systemd: scripts/uninstall --purge exits 0" test $? -eq 0
  check "systemd: the unit, binaries, user and directories are gone" \
    bash -c "! nsenter -t $syspid -a -r -w systemctl cat clawchatd >/dev/null 2>&1 && ! nsenter -t $syspid -a -r -w id clawchat >/dev/null 2>&1 \
             && ! nsenter -t $syspid -a -r -w ls -d /etc/clawchat /var/lib/clawchat /usr/local/bin/clawchatd /etc/systemd/system/multi-user.target.wants/clawchatd.service 2>/dev/null"
  if [ $failed -gt 0 ]; then
    echo "install log:"; cat "$work/ns-install.log"; echo "journal:"; cat "$work/ns-journal.log"
  fi
  "$here/systemd-ns.sh" stop "$ns"; ns=""
fi

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
