#!/usr/bin/env bash
# Build coaps and run the demo server: coap:// on 5683 with the demo
# resources, printing how to reach it. Extra arguments go to 'coaps serve'.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target coaps >/dev/null
exec ./build/coaps serve "$@"
