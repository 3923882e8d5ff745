#!/usr/bin/env bash
# nat-roaming.sh — ClawChat through a real Linux NAT (network namespaces, iptables MASQUERADE).
#
#   bash Tests/netns/nat-roaming.sh BIN_DIR        (BIN_DIR holds clawchatd and clawchat)
#
# Topology (all addresses live only inside namespaces this script creates):
#
#   client ns  10.77.1.2/24 --veth-- 10.77.1.1  router ns  10.77.2.1 --veth-- 10.77.2.2/24  server ns
#   (default route via 10.77.1.1)    ip_forward=1, MASQUERADE --random      (no route back to 10.77.1.0/24)
#
# The router's UDP conntrack timeout is 5 s. Checks:
#   1. pairing works through the NAT; the server sees the router's address (10.77.2.1), not the client's
#   2. chat works (ping1 -> echo: ping1)
#   3. after 12 s idle, keepalives (every 2 s) kept the mapping: ping2 echoes, no [reconnecting
#   4. after `conntrack -F` on the router the client's packets get a NEW external port; ping3 echoes,
#      the server logs "moved from 10.77.2.1:P1 to 10.77.2.1:P2" with P1 != P2, and no new pairing
#
# Needs root and network namespaces; if they are not available the script FAILS loudly (never passes).
# The four checks make up one test: the last line is "1 passed, 0 failed" or "0 passed, 1 failed";
# exit status 0 only if everything passed. Runtime about 13 s (a failing run at most ~1 min).

set -u

# Individual checks are counted here; the script reports them as ONE test (nat-roaming) that
# passes only if every check passed and at least one ran.
PASSED=0
FAILED=0
pass() { echo "PASS: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
info() { echo "      $*"; }
summary() {
    if [ "$FAILED" = 0 ] && [ "$PASSED" -gt 0 ]; then
        echo "PASS: nat-roaming ($PASSED checks passed)"
        echo "1 passed, 0 failed"
    else
        echo "FAIL: nat-roaming ($FAILED check(s) failed, $PASSED passed)"
        echo "0 passed, 1 failed"
    fi
}

START_TIME=$(date +%s)

if [ $# -ne 1 ]; then
    echo "usage: bash $0 BIN_DIR   (BIN_DIR holds clawchatd and clawchat)" >&2
    exit 2
fi
BIN=$(cd "$1" 2>/dev/null && pwd) || { echo "FAIL: $1 is not a directory"; FAILED=1; summary; exit 1; }
for b in clawchatd clawchat; do
    if [ ! -x "$BIN/$b" ]; then
        echo "FAIL: $BIN/$b not found or not executable (build with: swift build --scratch-path .build-nat)"
        FAILED=1; summary; exit 1
    fi
done

# ---------------------------------------------------------------------------------------------
# State and cleanup (runs on every exit path, including failures and signals)

NS_C="ccnat-cli-$$"
NS_R="ccnat-rtr-$$"
NS_S="ccnat-srv-$$"
CREATED_NS=()
PIDS=()
TMP=""
FIFO_OPEN=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    trap '' PIPE
    if [ "$FIFO_OPEN" = 1 ]; then
        # Ask the client to leave politely, then close our end of its stdin.
        { echo "/quit" >&9; } 2>/dev/null
        sleep 0.3
        exec 9>&- 2>/dev/null
        FIFO_OPEN=0
    fi
    local pid i
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        for i in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    # Anything still running inside our namespaces was started by this script.
    local ns
    for ns in "${CREATED_NS[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null
        done
    done
    for ns in "${CREATED_NS[@]}"; do
        ip netns del "$ns" 2>/dev/null
    done
    if [ -n "$TMP" ] && [ -d "$TMP" ]; then
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
# Writing to the chat FIFO after the client died must not kill this script (and skip the cleanup).
trap '' PIPE
trap 'echo "interrupted"; FAILED=$((FAILED + 1)); summary; exit 1' INT TERM HUP

# Fatal setup problem: say so, count a failure, print the summary, exit 1 (cleanup runs via trap).
die() {
    echo "FAIL: $*"
    FAILED=$((FAILED + 1))
    summary
    exit 1
}

show_logs() {
    echo "----- server log (clawchatd, $NS_S) -----"
    sed 's/^/  | /' "$TMP/server.log" 2>/dev/null | tail -n 40
    echo "----- client log (clawchat chat, $NS_C) -----"
    sed 's/^/  | /' "$TMP/client.log" 2>/dev/null | tail -n 40
    echo "----- router conntrack (udp) -----"
    ip netns exec "$NS_R" conntrack -L -p udp 2>&1 | sed 's/^/  | /' | head -n 20
    echo "-----------------------------------------"
}

# wait_for FILE EXTENDED-REGEX SECONDS [PID]: polls every 0.1 s; 0 if the pattern shows up in
# time. With PID, gives up early once that process has exited.
wait_for() {
    local file=$1 pattern=$2 secs=$3 pid=${4:-} i
    for i in $(seq 1 $((secs * 10))); do
        if grep -Eq -- "$pattern" "$file" 2>/dev/null; then return 0; fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    grep -Eq -- "$pattern" "$file" 2>/dev/null
}

# send TEXT: one line to the chat client's stdin.
send() {
    if ! { echo "$1" >&9; } 2>/dev/null; then
        info "could not write '$1' to the chat client (has it exited?)"
    fi
}

# ---------------------------------------------------------------------------------------------
# Preconditions: root and network namespaces. Never pass silently without them.

NS_MSG="THIS MACHINE DOES NOT PERMIT NETWORK NAMESPACES (need root with CAP_NET_ADMIN/CAP_SYS_ADMIN and 'ip netns'); the NAT test cannot run and therefore FAILS"
if [ "$(id -u)" != 0 ]; then
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    echo "!!! not running as root: $NS_MSG"
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    die "namespaces unavailable (not root)"
fi
for tool in ip conntrack sysctl ss; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "required tool '$tool' missing (apt-get install -y --no-install-recommends nftables iptables conntrack iproute2 procps)"
done
command -v iptables >/dev/null 2>&1 || command -v nft >/dev/null 2>&1 ||
    die "neither iptables nor nft is installed (apt-get install -y --no-install-recommends nftables iptables)"

TMP=$(mktemp -d /tmp/ccnat.XXXXXX) || die "mktemp failed"
chmod 755 "$TMP"

for ns in "$NS_C" "$NS_R" "$NS_S"; do
    if ! ip netns add "$ns" 2>"$TMP/netns.err"; then
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        echo "!!! 'ip netns add $ns' failed: $(cat "$TMP/netns.err")"
        echo "!!! $NS_MSG"
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        die "namespaces unavailable (ip netns add failed)"
    fi
    CREATED_NS+=("$ns")
done

# ---------------------------------------------------------------------------------------------
# Topology. The veth ends are created directly inside the namespaces (nothing in the host ns).

setup_net() {
    set -e
    ip link add cveth netns "$NS_C" type veth peer name rc netns "$NS_R"
    ip link add sveth netns "$NS_S" type veth peer name rs netns "$NS_R"
    local ns
    for ns in "$NS_C" "$NS_R" "$NS_S"; do ip -n "$ns" link set lo up; done

    ip -n "$NS_C" addr add 10.77.1.2/24 dev cveth
    ip -n "$NS_C" link set cveth up
    ip -n "$NS_C" route add default via 10.77.1.1

    ip -n "$NS_R" addr add 10.77.1.1/24 dev rc
    ip -n "$NS_R" addr add 10.77.2.1/24 dev rs
    ip -n "$NS_R" link set rc up
    ip -n "$NS_R" link set rs up
    ip netns exec "$NS_R" sysctl -qw net.ipv4.ip_forward=1

    # The server knows only its own /24: replies to the client can only come back through the NAT.
    ip -n "$NS_S" addr add 10.77.2.2/24 dev sveth
    ip -n "$NS_S" link set sveth up
    set +e
}
( setup_net ) >"$TMP/setup.log" 2>&1 || { cat "$TMP/setup.log"; die "could not build the namespace topology"; }

# NAT with random source-port mapping: after a conntrack flush the next packet gets a new port.
if ! ip netns exec "$NS_R" iptables -t nat -A POSTROUTING -o rs -j MASQUERADE --random 2>"$TMP/nat.err"; then
    # Fall back to nft directly (same rule: masquerade with random port mapping).
    if ! { ip netns exec "$NS_R" nft add table ip ccnat &&
           ip netns exec "$NS_R" nft add chain ip ccnat post '{ type nat hook postrouting priority 100 ; }' &&
           ip netns exec "$NS_R" nft add rule ip ccnat post oifname rs masquerade random; } 2>>"$TMP/nat.err"; then
        cat "$TMP/nat.err"
        die "could not install MASQUERADE --random (iptables or nft) in the router namespace"
    fi
fi
# Short UDP conntrack timeouts (per-netns sysctls; they exist once conntrack is active in the ns).
if ! ip netns exec "$NS_R" sysctl -w net.netfilter.nf_conntrack_udp_timeout=5 \
        net.netfilter.nf_conntrack_udp_timeout_stream=5 >"$TMP/sysctl.out" 2>&1; then
    cat "$TMP/sysctl.out"
    die "cannot set net.netfilter.nf_conntrack_udp_timeout{,_stream}=5 in the router namespace"
fi
info "topology: $NS_C 10.77.1.2 -> $NS_R 10.77.1.1|10.77.2.1 (MASQUERADE --random, udp timeout 5 s) -> $NS_S 10.77.2.2"

# ---------------------------------------------------------------------------------------------
# Server

K=$("$BIN/clawchatd" bootstrap-key) || die "clawchatd bootstrap-key failed"
export CLAWCHAT_BOOTSTRAP_KEY="$K"

mkdir -p "$TMP/state" "$TMP/client"
ip netns exec "$NS_S" "$BIN/clawchatd" run --state-dir "$TMP/state" --listen 10.77.2.2:47400 --provider echo \
    --public-address 10.77.2.2 --log-level info >"$TMP/server.log" 2>&1 </dev/null &
SERVER_PID=$!
PIDS+=("$SERVER_PID")

SEC="$TMP/state/security/clawchat-current.sec"
for i in $(seq 1 100); do
    [ -s "$SEC" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
if [ ! -s "$SEC" ]; then
    show_logs
    die "clawchatd did not write $SEC within 10 s"
fi

# ---------------------------------------------------------------------------------------------
# 1. Pairing through the NAT

PAIR_OUT=$(CLAWCHAT_CONFIG_DIR="$TMP/client" timeout 30 ip netns exec "$NS_C" \
    "$BIN/clawchat" pair "$SEC" --name natbox 2>&1)
PAIR_RC=$?
info "pair: $PAIR_OUT"

# The long-lived chat client, stdin from a FIFO we keep open, stdout+stderr to a log.
mkfifo "$TMP/chat.in"
CLAWCHAT_CONFIG_DIR="$TMP/client" ip netns exec "$NS_C" "$BIN/clawchat" chat --keepalive 2 \
    <"$TMP/chat.in" >"$TMP/client.log" 2>&1 &
CLIENT_PID=$!
PIDS+=("$CLIENT_PID")
exec 9>"$TMP/chat.in"
FIFO_OPEN=1

CONNECTED=0
wait_for "$TMP/client.log" '\[connected to' 15 "$CLIENT_PID" && CONNECTED=1
wait_for "$TMP/server.log" 'established from 10\.77\.2\.1:' 5

if [ "$PAIR_RC" = 0 ] && grep -q '^paired as' <<<"$PAIR_OUT" && [ "$CONNECTED" = 1 ] &&
   grep -Eq 'established from 10\.77\.2\.1:[0-9]+' "$TMP/server.log" &&
   ! grep -q '10\.77\.1\.' "$TMP/server.log"; then
    pass "1. paired through the NAT; the server sees the router's address: $(grep -Eo 'session with device .* established from 10\.77\.2\.1:[0-9]+' "$TMP/server.log" | tail -n1)"
else
    fail "1. pairing/connecting through the NAT (pair rc=$PAIR_RC, connected=$CONNECTED; expected 'established from 10.77.2.1:PORT' and no 10.77.1.x in the server log)"
    show_logs
fi
if [ "$CONNECTED" != 1 ]; then
    # Without a connected client the remaining checks cannot succeed; do not spend a minute on them.
    fail "2.-4. not run: the chat client never connected through the NAT"
    echo "      elapsed: $(( $(date +%s) - START_TIME )) s"
    summary
    exit 1
fi

# The chat client's local UDP port (for finding its conntrack entry in the router).
client_local_port() {
    ip netns exec "$NS_C" ss -Huanp 2>/dev/null | grep "pid=$CLIENT_PID," |
        awk '{ n = split($4, a, ":"); print a[n] }' | head -n1
}
# External (post-NAT) source port of the chat client's flow, from the router's conntrack table:
# the reply tuple's dport (second dport= on the line).
conntrack_ext_port() {
    local lport
    lport=$(client_local_port)
    [ -n "$lport" ] || return 0
    ip netns exec "$NS_R" conntrack -L -p udp --orig-src 10.77.1.2 --orig-port-src "$lport" 2>/dev/null |
        awk '{ n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^dport=/) { n++; if (n == 2) { sub("dport=", "", $i); print $i } } }' |
        head -n1
}
# The server's current idea of the client's external port: the last "established from"/"moved ... to".
server_seen_port() {
    grep -Eo '(established from|to) 10\.77\.2\.1:[0-9]+' "$TMP/server.log" | tail -n1 | sed 's/.*://'
}

# ---------------------------------------------------------------------------------------------
# 2. Chat works

send "ping1"
if wait_for "$TMP/client.log" '^.?echo: ping1$' 10 "$CLIENT_PID"; then
    pass "2. chat through the NAT: sent ping1, got 'echo: ping1'"
else
    fail "2. no 'echo: ping1' within 10 s"
    show_logs
fi

# ---------------------------------------------------------------------------------------------
# 3. Idle longer than the conntrack timeout; keepalives must keep the mapping alive

PORT_BEFORE_IDLE=$(conntrack_ext_port)
SERVER_PORT_BEFORE_IDLE=$(server_seen_port)
info "before idle: conntrack external port ${PORT_BEFORE_IDLE:-?}, server sees 10.77.2.1:${SERVER_PORT_BEFORE_IDLE:-?}"
info "idling 12 s (conntrack UDP timeout 5 s, keepalive 2 s)..."
sleep 12 &           # in the background so that a signal is handled at once
IDLE_PID=$!
PIDS+=("$IDLE_PID")
wait "$IDLE_PID"
PORT_AFTER_IDLE=$(conntrack_ext_port)
info "after idle:  conntrack external port ${PORT_AFTER_IDLE:-?}, server sees 10.77.2.1:$(server_seen_port)"

send "ping2"
GOT2=0
wait_for "$TMP/client.log" '^.?echo: ping2$' 10 "$CLIENT_PID" && GOT2=1
if [ "$GOT2" = 1 ] && ! grep -q '\[reconnecting' "$TMP/client.log" &&
   [ -n "$PORT_BEFORE_IDLE" ] && [ "$PORT_BEFORE_IDLE" = "$PORT_AFTER_IDLE" ] &&
   ! grep -q 'moved from' "$TMP/server.log"; then
    pass "3. after 12 s idle the mapping survived (external port $PORT_BEFORE_IDLE kept, no reconnect, no move): got 'echo: ping2'"
else
    fail "3. after 12 s idle: echo2=$GOT2, reconnecting=$(grep -c '\[reconnecting' "$TMP/client.log"), external port before=${PORT_BEFORE_IDLE:-?} after=${PORT_AFTER_IDLE:-?}, moves=$(grep -c 'moved from' "$TMP/server.log")"
    show_logs
fi

# ---------------------------------------------------------------------------------------------
# 4. Flush the NAT: the next packet gets a new external port; the session must follow

PAIRED_BEFORE=$(grep -c 'paired; the security file is spent' "$TMP/server.log")
ESTABLISHED_BEFORE=$(grep -c 'established from' "$TMP/server.log")
MOVES_BEFORE=$(grep -c 'moved from' "$TMP/server.log")
P_OLD=$(server_seen_port)
if ! ip netns exec "$NS_R" conntrack -F >"$TMP/flush.out" 2>&1; then
    info "conntrack -F: $(cat "$TMP/flush.out")"
fi
info "flushed the router's conntrack table ($(tr '\n' ' ' <"$TMP/flush.out"))"

send "ping3"
GOT3=0
wait_for "$TMP/client.log" '^.?echo: ping3$' 15 "$CLIENT_PID" && GOT3=1
wait_for "$TMP/server.log" 'moved from 10\.77\.2\.1:[0-9]+ to 10\.77\.2\.1:[0-9]+' 2
PORT_AFTER_FLUSH=$(conntrack_ext_port)
# The first move logged after the flush.
MOVE_LINE=$(grep -Eo 'moved from 10\.77\.2\.1:[0-9]+ to 10\.77\.2\.1:[0-9]+' "$TMP/server.log" | sed -n "$((MOVES_BEFORE + 1))p")
P1=$(sed -E 's/moved from 10\.77\.2\.1:([0-9]+) to .*/\1/' <<<"$MOVE_LINE")
P2=$(sed -E 's/.* to 10\.77\.2\.1:([0-9]+)$/\1/' <<<"$MOVE_LINE")
PAIRED_AFTER=$(grep -c 'paired; the security file is spent' "$TMP/server.log")
ESTABLISHED_AFTER=$(grep -c 'established from' "$TMP/server.log")
RECONNECTS=$(grep -c '\[reconnecting' "$TMP/client.log")
info "after flush: conntrack external port ${PORT_AFTER_FLUSH:-?}; server: '${MOVE_LINE:-no move line}'"
info "pairings before/after: $PAIRED_BEFORE/$PAIRED_AFTER; handshakes (established) before/after: $ESTABLISHED_BEFORE/$ESTABLISHED_AFTER; client reconnects: $RECONNECTS"

if [ "$GOT3" = 1 ] && [ -n "$MOVE_LINE" ] && [ -n "$P1" ] && [ -n "$P2" ] && [ "$P1" != "$P2" ] &&
   [ "$P1" = "$P_OLD" ] &&
   [ "$PAIRED_AFTER" = "$PAIRED_BEFORE" ] && [ "$(grep -c '^paired as' <<<"$PAIR_OUT")" = 1 ]; then
    pass "4. after conntrack -F the session followed the NAT to a new port (10.77.2.1:$P1 -> 10.77.2.1:$P2), 'echo: ping3' arrived, no new pairing"
else
    fail "4. after conntrack -F: echo3=$GOT3, move='${MOVE_LINE:-none}' (old port ${P_OLD:-?}), pairings $PAIRED_BEFORE -> $PAIRED_AFTER"
    show_logs
fi

# ---------------------------------------------------------------------------------------------

echo "      elapsed: $(( $(date +%s) - START_TIME )) s"
summary
[ "$FAILED" = 0 ] && [ "$PASSED" -gt 0 ]
