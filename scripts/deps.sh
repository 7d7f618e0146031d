#!/usr/bin/env bash
# Install what coaps needs to build, test and interoperate, from Debian's
# packages. Skips apt entirely when everything is already there.
# 'deps.sh demo': only what building and running the tool needs
# (scripts/run.sh), not the test toolchain.
set -euo pipefail
demo_packages=(gcc make cmake pkg-config libgnutls28-dev libmicrohttpd-dev)
packages=(
  gcc make cmake pkg-config          # build
  libgnutls28-dev                    # DTLS
  libcmocka-dev                      # unit tests
  clang libclang-rt-14-dev           # libFuzzer and sanitizer runtimes
  clang-format                       # tests/interop/format.sh keeps the C sources formatted
  libcoap3-bin gnutls-bin openssl    # real peers for interop tests
  iproute2 util-linux                # ip, ss, unshare: namespaced tests
  nftables                           # nft: the balancer of tests/cluster/cluster.sh (cluster_nodes.sh)
  conntrack                          # the cluster tests check the balancer tracks no flow (tests/cluster/balancer_ops.sh)
  jq                                 # checks the tools' JSON output
  dpkg-dev file binutils             # Debian packages: dpkg-shlibdeps, cpack's file checks, readelf
  groff-base mandoc                  # man pages: rendered and linted by tests/interop/man_pages.sh
  systemd                            # systemd-analyze verify: contrib/coaps.service (tests/interop/systemd_unit.sh)
  libmicrohttpd-dev                  # coaps serve --metrics (optional for the tool)
  prometheus curl                    # promtool check metrics on /metrics (tests/interop/metrics*.sh)
  chromium                           # the status page in a real browser (status_page_browser.sh)
)
case "${1:-all}" in
  all) ;;
  demo) packages=("${demo_packages[@]}") ;;
  *) echo "usage: scripts/deps.sh [all|demo]" >&2; exit 64 ;;
esac
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
