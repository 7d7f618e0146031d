/* The failure end of COAPS_INVARIANT (common/invariant.h). */
#include "common/invariant.h"

#include <stdio.h>
#include <stdlib.h>

/* A bug in coaps was caught: say where and what, then stop at once, in
 * the frame that noticed (a fuzzer or a sanitizer run reports the stack).
 * Only debug, sanitizer and fuzz builds ever call this. */
void coap_invariant_failed(const char *file, int line, const char *what) {
  fprintf(stderr, "coaps: invariant broken at %s:%d: %s\n", file, line, what);
  fflush(stderr);
  abort();
}
