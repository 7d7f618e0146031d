/* Internal invariants and preconditions, checked in debug, sanitizer and
 * fuzz builds (CMake defines COAPS_CHECK_INVARIANTS for Debug builds and
 * whenever COAPS_SANITIZE or COAPS_FUZZ is on) and compiled out of
 * Release and RelWithDebInfo builds.
 *
 * A broken invariant is a bug in coaps, never bad input: the network and
 * the application get error codes. So a failed check prints where and what
 * and aborts, which is what a fuzzer or an ASan run needs to see the bug
 * at the moment it happens rather than as a crash somewhere later.
 *
 * Two forms:
 * - COAPS_INVARIANT(cond): a precondition or a local fact, like assert().
 * - COAPS_INVARIANT_HOLDS(why): |why| is a call to a structure's checker
 *   (coap_timer_heap_broken, coap_peer_table_broken, ...) which returns
 *   NULL when the structure is sound, else a line naming the broken
 *   invariant. The checkers are compiled in every build so that the unit
 *   tests can corrupt a structure and see the checker notice, in Release
 *   too; only the calls through these macros disappear. */
#ifndef COAPS_COMMON_INVARIANT_H
#define COAPS_COMMON_INVARIANT_H

#include <stddef.h>

/* Prints "coaps: invariant broken at FILE:LINE: WHAT" to stderr and aborts. */
_Noreturn void coap_invariant_failed(const char *file, int line, const char *what);

#ifdef COAPS_CHECK_INVARIANTS
#define COAPS_CHECKING_INVARIANTS 1
#define COAPS_INVARIANT(cond) ((cond) ? (void)0 : coap_invariant_failed(__FILE__, __LINE__, #cond))
#define COAPS_INVARIANT_HOLDS(why)                                         \
  do {                                                                     \
    const char *coaps_why_ = (why);                                        \
    if (coaps_why_) coap_invariant_failed(__FILE__, __LINE__, coaps_why_); \
  } while (0)
#else
#define COAPS_CHECKING_INVARIANTS 0
#define COAPS_INVARIANT(cond) ((void)0)
#define COAPS_INVARIANT_HOLDS(why) ((void)0)
#endif

/* Whether a whole-structure walk is due: always for a structure of up to
 * 8 entries, else once every |size| / 8 operations, so that the walks
 * cost about 8 steps per operation on average and sim tests and fuzz runs
 * stay fast. |*ops| is the structure's own counter. */
static inline int coap_invariant_walk_due(unsigned *ops, size_t size) {
  if (!COAPS_CHECKING_INVARIANTS) return 0;
  if (size <= 8 || ++*ops >= size / 8) {
    *ops = 0;
    return 1;
  }
  return 0;
}

#endif
