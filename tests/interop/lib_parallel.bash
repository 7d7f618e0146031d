# Independent parts of one shell test, run side by side (sourced after
# lib.bash, not a test itself). A test whose parts mostly wait (timers,
# retransmissions, a lossy path) takes as long as its longest part instead
# of their sum. Each part runs in a subshell of its own, with its own
# background processes (cleaned up when it ends) and its own output, shown
# whole and in the order the parts were started once all have ended, so
# the log reads as if they had run one after the other.
#
# A part must not share files or ports with another: give each its own
# work directory and its own servers.

declare -a PART_NAMES=() PART_PIDS=()
PARTS_DIR=""

# start_part NAME COMMAND...: COMMAND in the background as part NAME. A
# `fail` inside it ends that part only; wait_parts reports it.
start_part() {
  local name=$1
  shift
  [ -n "$PARTS_DIR" ] || PARTS_DIR=$(mktemp -d)
  (
    BG_PIDS=()
    trap cleanup_bg EXIT
    SECONDS=0
    "$@"
    echo "  ($name took $SECONDS s)"
  ) >"$PARTS_DIR/$name.out" 2>&1 &
  PART_NAMES+=("$name")
  PART_PIDS+=($!)
  BG_PIDS+=($!) # the test ended early: its parts end too
}

# wait_parts: wait for every part started, print each one's output in
# order; PARTS_FAILED is the number of parts that exited non-zero (each
# named after its output).
wait_parts() {
  local k rc
  PARTS_FAILED=0
  for k in "${!PART_NAMES[@]}"; do
    rc=0
    wait "${PART_PIDS[$k]}" || rc=$?
    cat "$PARTS_DIR/${PART_NAMES[$k]}.out"
    if [ "$rc" != 0 ]; then
      echo "--- part ${PART_NAMES[$k]} failed (exit $rc)"
      PARTS_FAILED=$((PARTS_FAILED + 1))
    fi
  done
  PART_NAMES=() PART_PIDS=()
}
