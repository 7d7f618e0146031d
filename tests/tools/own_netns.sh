#!/bin/sh
# own_netns.sh COMMAND...: run COMMAND in a network namespace of its own,
# with only a loopback interface (up), when run as root and the machine
# allows it (unshare -n); else as it is, sharing the host's loopback.
#
# CTest runs the shell tests side by side (scripts/test.sh). In one
# namespace they would share the ports of one loopback: a "free" port one
# test picked could be bound by another before it is used, and two
# 'coaps serve --port 0' with more than one worker (SO_REUSEPORT) can be
# given the same port by the kernel, each then getting part of the other's
# datagrams (seen: lossy_handshakes' two servers on one coaps:// port, half
# of one's POSTs stored by the other). A namespace per test ends all that,
# and any clash with tests of another checkout running on the machine.
#
# Not as another user through a user namespace (unshare -rn): its root
# may write where the user cannot, and only that one user exists in it,
# which the tests that drop privileges (setpriv) or check permissions need.
#
# The test also gets a TMPDIR of its own, removed when it ends: mktemp
# files and directories a test (or a peer it ran) leaves behind, after a
# failure or by oversight, go with it instead of piling up in /tmp.
if [ -z "${COAPS_OWN_NETNS:-}" ] && [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
  exec unshare -n env COAPS_OWN_NETNS=1 sh -c 'ip link set lo up && exec sh "$0" "$@"' "$0" "$@"
fi
[ -n "${COAPS_OWN_NETNS:-}" ] ||
  echo "own_netns.sh: not root or no unshare -n: the test shares the host's loopback" >&2
test_tmp=$(mktemp -d "${TMPDIR:-/tmp}/coaps-test.XXXXXX") || exec "$@"
chmod 1777 "$test_tmp" # as /tmp: the tests that drop privileges write there too
TMPDIR=$test_tmp "$@"
rc=$?
rm -rf "$test_tmp"
exit $rc
