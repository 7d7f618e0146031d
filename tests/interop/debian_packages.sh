#!/usr/bin/env bash
# The Debian packages: build them from the tree the way a packager would
# (prefix /usr, CPack's DEB generator: 'cmake --build --target package'),
# check their names, metadata and file lists, then, without touching this
# machine's /usr, extract them into a scratch root ('dpkg-deb -x') and
#  - run the packaged 'coaps serve' and 'coaps get' against each other
#    (coap://, coaps:// with a PSK and with keygen's certificates) with
#    LD_LIBRARY_PATH on the packaged library and nothing else;
#  - build an outside program against the packaged libcoaps-dev, with
#    pkg-config and with find_package, and run it.
BUILD=$1 SRC=$2
. "$(dirname "$0")/lib.bash"
need dpkg-deb dpkg
need cpack cmake
need dpkg-shlibdeps dpkg-dev
need file file
need readelf binutils
need pkg-config pkg-config
work=$(mktemp -d)
trap 'cleanup_bg; rm -rf "$work"' EXIT

# ---- build the packages (a plain release build: packages carry no
# sanitizer, whatever $BUILD was configured with)
cmake -S "$SRC" -B "$work/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
  -DCOAPS_TESTS=OFF >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log" >&2; fail "configuring the package build failed"; }
cmake --build "$work/build" -j2 --target package >"$work/package.log" 2>&1 ||
  { tail -40 "$work/package.log" >&2; fail "'cmake --build --target package' failed"; }
pass "'cmake --build --target package' builds the packages"

version=$(grep -m1 -oE 'project\(coaps VERSION [0-9.]+' "$SRC/CMakeLists.txt" | grep -oE '[0-9.]+$')
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
libdir=usr/lib/$multiarch
deb() { echo "$work/build/${1}_${version}-1_${arch}.deb"; }
for p in libcoaps0 libcoaps-dev coaps; do
  [ -f "$(deb $p)" ] || fail "no $(basename "$(deb $p)"); built: $(cd "$work/build" && ls ./*.deb 2>/dev/null)"
done
expect_eq "exactly three packages" 3 "$(find "$work/build" -maxdepth 1 -name '*.deb' | wc -l)"

# ---- metadata
field() { dpkg-deb -f "$(deb "$1")" "$2"; }
for p in libcoaps0 libcoaps-dev coaps; do
  expect_eq "$p: Package" "$p" "$(field $p Package)"
  expect_eq "$p: Version" "$version-1" "$(field $p Version)"
  expect_eq "$p: Architecture" "$arch" "$(field $p Architecture)"
  [ -n "$(field $p Maintainer)" ] || fail "$p has no Maintainer"
  [ "$(field $p Description | wc -l)" -ge 2 ] || fail "$p has no long description"
done
expect_eq "libcoaps0: Section" libs "$(field libcoaps0 Section)"
expect_eq "libcoaps-dev: Section" libdevel "$(field libcoaps-dev Section)"
dep=$(field libcoaps0 Depends)
expect_contains "libcoaps0 depends on GnuTLS (dpkg-shlibdeps)" "libgnutls30 (>=" "$dep"
expect_contains "libcoaps0 depends on libc6 (dpkg-shlibdeps)" "libc6 (>=" "$dep"
expect_not_contains "libcoaps0 does not depend on itself" "libcoaps0" "$dep"
dep=$(field libcoaps-dev Depends)
expect_contains "libcoaps-dev depends on exactly this libcoaps0" "libcoaps0 (= $version-1)" "$dep"
expect_contains "libcoaps-dev depends on GnuTLS's -dev (static library, pkg-config, CMake)" "libgnutls28-dev" "$dep"
dep=$(field coaps Depends)
expect_contains "coaps depends on exactly this libcoaps0" "libcoaps0 (= $version-1)" "$dep"
expect_contains "coaps depends on GnuTLS (it calls it for keygen)" "libgnutls30 (>=" "$dep"
mkdir "$work/control"
dpkg-deb -e "$(deb libcoaps0)" "$work/control"
expect_eq "libcoaps0's shlibs file" "libcoaps 0 libcoaps0 (>= $version-1)" "$(cat "$work/control/shlibs")"
grep -qE '^[[:space:]]*ldconfig$' "$work/control/postinst" || [ -f "$work/control/triggers" ] ||
  fail "libcoaps0 does not run ldconfig (no postinst call, no trigger)"
pass "libcoaps0 runs ldconfig when installed"

# ---- file lists (regular files and symlinks, without the leading '.').
# Listings go to files first: 'dpkg-deb -c | grep -q' would kill dpkg-deb
# with SIGPIPE when grep stops early, and pipefail would call it a failure.
for p in libcoaps0 libcoaps-dev coaps; do
  dpkg-deb -c "$(deb $p)" >"$work/$p.contents" || fail "dpkg-deb -c $p failed"
  awk '$1 !~ /^d/ {print $6}' "$work/$p.contents" | sed 's|^\.||' | sort >"$work/$p.list"
done
expect_eq "libcoaps0 holds the runtime library and nothing else" \
  "/$libdir/libcoaps.so.0 /$libdir/libcoaps.so.$version" "$(tr '\n' ' ' <"$work/libcoaps0.list" | sed 's/ $//')"
grep -q "libcoaps.so.0 -> libcoaps.so.$version" "$work/libcoaps0.contents" ||
  fail "libcoaps.so.0 is not a symlink to libcoaps.so.$version"
headers=$(cd "$SRC/include" && find . -name '*.h' | sed 's|^\.|/usr/include|'; echo /usr/include/coaps/version.h)
for f in $headers /$libdir/libcoaps.so /$libdir/libcoaps.a /$libdir/pkgconfig/coaps.pc \
  /$libdir/cmake/coaps/coapsConfig.cmake /$libdir/cmake/coaps/coapsConfigVersion.cmake \
  /$libdir/cmake/coaps/coapsTargets.cmake; do
  grep -qxF "$f" "$work/libcoaps-dev.list" || fail "libcoaps-dev lacks $f"
done
pass "libcoaps-dev holds the headers, libcoaps.so, libcoaps.a, coaps.pc and the CMake package"
grep -q "libcoaps.so -> libcoaps.so.0" "$work/libcoaps-dev.contents" ||
  fail "libcoaps-dev's libcoaps.so is not the link to libcoaps.so.0"
grep -qxF /usr/bin/coaps "$work/coaps.list" || fail "the coaps package lacks /usr/bin/coaps"
pass "coaps holds /usr/bin/coaps"
grep -qxF /usr/share/man/man1/coaps.1.gz "$work/coaps.list" || fail "the coaps package lacks coaps(1)"
grep -qxF /usr/share/man/man3/coaps.3.gz "$work/libcoaps-dev.list" || fail "libcoaps-dev lacks coaps(3)"
pass "coaps(1) is in coaps, coaps(3) in libcoaps-dev, gzipped"
# Every file 'cmake --install' installs is in exactly one package.
DESTDIR=$work/destdir cmake --install "$work/build" >/dev/null || fail "cmake --install failed"
(cd "$work/destdir" && find . ! -type d | sed 's|^\.||' | sort) >"$work/installed.list"
sort "$work"/libcoaps0.list "$work"/libcoaps-dev.list "$work"/coaps.list >"$work/packaged.list"
dups=$(uniq -d "$work/packaged.list")
[ -z "$dups" ] || fail "in more than one package: $dups"
diff -u "$work/installed.list" "$work/packaged.list" >"$work/lists.diff" ||
  { cat "$work/lists.diff" >&2; fail "the packages and 'cmake --install' disagree (an install() without COMPONENT?)"; }
pass "every installed file is in exactly one package"

# ---- extract into a scratch root, never into this machine's /usr
root=$work/root
for p in libcoaps0 libcoaps-dev coaps; do dpkg-deb -x "$(deb $p)" "$root"; done
for f in "$root/usr/bin/coaps" "$root/$libdir/libcoaps.so.$version"; do
  dyn=$(readelf -d "$f") || fail "readelf -d $f failed"
  if grep -qE 'RPATH|RUNPATH' <<<"$dyn"; then fail "$f carries an RPATH"; fi
done
pass "no RPATH in the packaged tool or library"
export LD_LIBRARY_PATH=$root/$libdir
resolved=$(ldd "$root/usr/bin/coaps" | grep 'libcoaps.so.0' || true)
expect_contains "the packaged tool loads the packaged library" "$root/$libdir/libcoaps.so.0" "$resolved"
expect_eq "the packaged tool's version" "coaps $version" "$("$root/usr/bin/coaps" --version)"
for m in man1/coaps.1 man3/coaps.3; do
  expect_eq "the packaged $m.gz is docs/man's page" "$(cat "$SRC/docs/man/${m#*/}")" \
    "$(gzip -dc "$root/usr/share/man/$m.gz")"
done

# From here on, the helpers' "$BUILD/coaps" is the packaged tool.
BUILD=$root/usr/bin
start_coaps_serve_dtls "$work/serve.log" --psk-identity pkg --psk secret
out=$("$BUILD/coaps" get -v "coap://127.0.0.1:$SERVE_PORT/temp" 2>&1) || fail "packaged coaps get coap:// failed: $out"
expect_contains "packaged coaps get <-> packaged coaps serve over coap://" "coaps: 2.05 Content" "$out"
out=$("$BUILD/coaps" get -v "coaps://127.0.0.1:$DTLS_PORT/temp" --psk-identity pkg --psk secret 2>&1) ||
  fail "packaged coaps get coaps:// (PSK) failed: $out"
expect_contains "packaged coaps get <-> packaged coaps serve over coaps:// with a PSK" "coaps: 2.05 Content" "$out"
make_creds "$work/creds"
start_coaps_serve_dtls "$work/serve-x509.log" --cert "$work/creds/server-cert.pem" \
  --key "$work/creds/server-key.pem"
out=$("$BUILD/coaps" get -v "coaps://localhost:$DTLS_PORT/temp" --cacert "$work/creds/ca-cert.pem" 2>&1) ||
  fail "packaged coaps get coaps:// (X.509) failed: $out"
expect_contains "packaged coaps get <-> packaged coaps serve over coaps:// with keygen's certificates" "coaps: 2.05 Content" "$out"

# ---- an outside program against the packaged libcoaps-dev
write_outside_client "$work/app.c" coap.h
flags=$(PKG_CONFIG_PATH=$root/$libdir/pkgconfig pkg-config --cflags --libs coaps) ||
  fail "pkg-config does not know the packaged coaps.pc"
expect_contains "the packaged coaps.pc points into the scratch root" "-L$root/$libdir" "$flags"
cc -Wall -o "$work/app-pc" "$work/app.c" $flags || fail "the app does not build against libcoaps-dev (pkg-config)"
out=$("$work/app-pc" "coap://127.0.0.1:$SERVE_PORT/temp") || fail "the pkg-config app failed: $out"
expect_contains "an app built with pkg-config against libcoaps-dev runs on libcoaps0" "2.05 Content" "$out"
expect_contains "the pkg-config app runs on the libcoaps0 of its header's version" "version $version" "$out"
mkdir "$work/cmake-app"
cp "$work/app.c" "$work/cmake-app/"
cat >"$work/cmake-app/CMakeLists.txt" <<'APP'
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(coaps CONFIG REQUIRED)
add_executable(app app.c)
target_link_libraries(app PRIVATE coaps::coaps)
APP
(cmake -S "$work/cmake-app" -B "$work/cmake-app/build" -DCMAKE_PREFIX_PATH="$root/usr" &&
  cmake --build "$work/cmake-app/build") >"$work/cmake-app.log" 2>&1 ||
  { cat "$work/cmake-app.log" >&2; fail "the app does not build against libcoaps-dev (find_package)"; }
out=$("$work/cmake-app/build/app" "coap://127.0.0.1:$SERVE_PORT/temp") || fail "the find_package app failed: $out"
expect_contains "an app built with find_package against libcoaps-dev runs on libcoaps0" "2.05 Content" "$out"
