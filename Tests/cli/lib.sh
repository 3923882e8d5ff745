# Shared by the shell tests (source it): counters, `check NAME COMMAND...` (PASS/FAIL by the
# command's status), `wait_for SECONDS COMMAND...` (polls until the command succeeds, bounded)
# and `size_of FILE` (0 when missing). The script ends with `[ $failed -eq 0 ]`.
passed=0; failed=0
check() {
  local name="$1"; shift
  if "$@"; then echo "PASS: $name"; passed=$((passed + 1)); else echo "FAIL: $name"; failed=$((failed + 1)); fi
}
wait_for() {
  local end=$((SECONDS + $1)); shift
  until "$@"; do [ $SECONDS -ge $end ] && return 1; sleep 0.05; done
}
size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }
