# The CMake package: after 'cmake --install', an outside project writes
#   find_package(coaps 0.1 CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE coaps::coaps)         # libcoaps.so
#   target_link_libraries(app PRIVATE coaps::coaps_static)  # libcoaps.a
# The files go to LIBDIR/cmake/coaps, relocatable (paths relative to the
# config file), so any install prefix works.
include(CMakePackageConfigHelpers)
set(COAPS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/coaps)

install(EXPORT coapsTargets NAMESPACE coaps:: DESTINATION ${COAPS_CMAKE_DIR}
  COMPONENT dev)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/coapsConfig.cmake.in
  ${PROJECT_BINARY_DIR}/coapsConfig.cmake INSTALL_DESTINATION ${COAPS_CMAKE_DIR})
# SameMajorVersion: 0.x is compatible with any 0.y at least as new as asked
# for; the SONAME (libcoaps.so.0) changes with the major number.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/coapsConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/coapsConfig.cmake
  ${PROJECT_BINARY_DIR}/coapsConfigVersion.cmake
  DESTINATION ${COAPS_CMAKE_DIR} COMPONENT dev)
