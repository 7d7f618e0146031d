/* A binary min-heap of intrusive timers: every timer of a context lives in
 * one heap, so the next deadline is O(1) and arming/cancelling O(log n).
 * Timers are embedded in the objects they belong to; the heap never owns
 * them. */
#ifndef COAPS_COMMON_TIMER_H
#define COAPS_COMMON_TIMER_H

#include <stddef.h>
#include <stdint.h>

typedef struct coap_timer coap_timer_t;
typedef void (*coap_timer_fn)(coap_timer_t *timer, uint64_t now, void *user);

struct coap_timer {
  uint64_t deadline;
  size_t index; /* position in the heap; COAP_TIMER_UNARMED when not */
  coap_timer_fn fn;
  void *user;
};

#define COAP_TIMER_UNARMED ((size_t)-1)

typedef struct coap_timer_heap {
  coap_timer_t **items;
  size_t len, cap;
  unsigned check_ops; /* operations since the last invariant walk */
  /* How the array grows: realloc when NULL. Tests set it to make arming
   * fail as it would when memory runs out. */
  void *(*grow)(void *items, size_t bytes);
} coap_timer_heap_t;

void coap_timer_heap_init(coap_timer_heap_t *heap);
/* Frees the heap's array; armed timers are simply forgotten. */
void coap_timer_heap_free(coap_timer_heap_t *heap);

void coap_timer_init(coap_timer_t *t, coap_timer_fn fn, void *user);
/* Arm (or re-arm) |t| for |deadline|. Returns 0 or COAP_E_NOMEM, which
 * only arming a timer not armed yet can return (the heap grows): moving
 * an armed timer allocates nothing and cannot fail. A caller whose state
 * would never be freed without its timer must undo it on failure. */
int coap_timer_arm(coap_timer_heap_t *heap, coap_timer_t *t, uint64_t deadline);
/* Disarm; harmless when not armed. */
void coap_timer_cancel(coap_timer_heap_t *heap, coap_timer_t *t);
static inline int coap_timer_armed(const coap_timer_t *t) {
  return t->index != COAP_TIMER_UNARMED;
}
/* Earliest deadline, UINT64_MAX when empty. */
uint64_t coap_timer_heap_next(const coap_timer_heap_t *heap);
/* Fire every timer whose deadline is <= now (a fired timer is disarmed
 * before its callback, which may re-arm it or arm others). Returns the count. */
size_t coap_timer_heap_run(coap_timer_heap_t *heap, uint64_t now);
/* NULL when the heap is sound, else which invariant is broken: every slot
 * holds a timer whose index is that slot, no timer is earlier than its
 * parent, len <= cap. O(n); common/invariant.h says when it runs. */
const char *coap_timer_heap_broken(const coap_timer_heap_t *heap);

#endif
