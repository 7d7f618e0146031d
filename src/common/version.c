/* The library's version, compiled in from the generated coaps/version.h so
 * that a program can compare it with the header it was built against. */
#include "coaps/version.h"

const char *coaps_version(void) {
  return COAPS_VERSION;
}

unsigned coaps_version_num(void) {
  return COAPS_VERSION_NUM;
}
