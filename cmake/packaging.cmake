# Debian packages with CPack's DEB generator, one per install component:
#   libcoaps0     runtime: libcoaps.so.0 (Depends from dpkg-shlibdeps)
#   libcoaps-dev  dev: headers, libcoaps.so, libcoaps.a, coaps.pc, the
#                 CMake package, coaps(3)
#   coaps         tool: bin/coaps, linked against libcoaps0; coaps(1)
# Build them from a tree configured the Debian way
#   cmake -S . -B build-deb -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr
#   cmake --build build-deb -j --target package      # or: cd build-deb && cpack
# and install with 'apt install ./build-deb/*.deb'.
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  # The packages install under /usr whatever the prefix, but the library
  # directory was chosen for this prefix ('lib', not Debian's multiarch
  # 'lib/<triplet>') and the tool carries an RPATH.
  message(STATUS "coaps: packages from this tree put the library in "
    "/usr/${CMAKE_INSTALL_LIBDIR}; configure with -DCMAKE_INSTALL_PREFIX=/usr "
    "for Debian's layout")
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME coaps)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT
  "coaps maintainers <maintainers@users.noreply.r-seed-de608bce.example>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES OFF)

set(CPACK_COMPONENTS_ALL runtime dev tool)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)      # name_version-release_arch.deb
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Depends on libc6, libgnutls30 ... with the versions the binaries need.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# dpkg-shlibdeps must find libcoaps.so.0 (needed by the tool) in the build
# tree; the tool's Depends on libcoaps0 comes from the component below.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${PROJECT_BINARY_DIR})
# DEBIAN/shlibs and the ldconfig trigger for libcoaps0.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
# A component's DEPENDS (below) becomes "libcoaps0 (= VERSION-RELEASE)".
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME libcoaps0)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libcoaps-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# For the static library and 'pkg-config coaps' (Requires.private: gnutls)
# and find_package(coaps) (finds GnuTLS).
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libgnutls28-dev (>= 3.7)")
set(CPACK_DEBIAN_TOOL_PACKAGE_NAME coaps)
set(CPACK_DEBIAN_TOOL_PACKAGE_SECTION net)

# Source packages (package_source) would sweep up every build directory.
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/")

include(CPack)

# Each DESCRIPTION: the first line is the package's synopsis, the rest its
# long description (CPack indents each line by one space for the control
# file).
cpack_add_component(runtime DISPLAY_NAME "libcoaps0"
  DESCRIPTION "CoAP over UDP and DTLS 1.2 - shared library
coaps implements CoAP (RFC 7252) over UDP and over DTLS 1.2 with
pre-shared keys, raw public keys and X.509 certificates, block-wise
transfers and Observe, and says why a connection failed and how to fix
it.")
cpack_add_component(dev DISPLAY_NAME "libcoaps-dev" DEPENDS runtime
  DESCRIPTION "CoAP over UDP and DTLS 1.2 - development files
Headers, the static library, the pkg-config file (coaps) and the CMake
package (find_package(coaps): coaps::coaps, coaps::coaps_static) for
building programs with the coaps library.")
cpack_add_component(tool DISPLAY_NAME "coaps" DEPENDS runtime
  DESCRIPTION "CoAP over UDP and DTLS 1.2 - command-line tool
coaps gets, puts, posts, deletes and observes CoAP resources over
coap:// and coaps://, serves a demo server, makes test credentials
(keygen) and diagnoses a failing DTLS handshake (doctor).")
