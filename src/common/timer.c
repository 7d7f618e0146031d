/* Binary min-heap of intrusive timers. */
#include "common/timer.h"

#include <stdlib.h>

#include "coaps/error.h"
#include "common/invariant.h"

void coap_timer_heap_init(coap_timer_heap_t *heap) {
  heap->items = NULL;
  heap->len = heap->cap = 0;
  heap->check_ops = 0;
  heap->grow = NULL;
}

void coap_timer_heap_free(coap_timer_heap_t *heap) {
  for (size_t i = 0; i < heap->len; i++) heap->items[i]->index = COAP_TIMER_UNARMED;
  free(heap->items);
  coap_timer_heap_init(heap);
}

void coap_timer_init(coap_timer_t *t, coap_timer_fn fn, void *user) {
  COAPS_INVARIANT(t && fn);
  t->deadline = 0;
  t->index = COAP_TIMER_UNARMED;
  t->fn = fn;
  t->user = user;
}

const char *coap_timer_heap_broken(const coap_timer_heap_t *heap) {
  if (heap->len > heap->cap) return "timer heap: len > cap";
  for (size_t i = 0; i < heap->len; i++) {
    const coap_timer_t *t = heap->items[i];
    if (!t) return "timer heap: empty slot below len";
    if (t->index != i) return "timer heap: a timer's index is not its slot";
    if (i > 0 && heap->items[(i - 1) / 2]->deadline > t->deadline)
      return "timer heap: a timer is due before its parent";
  }
  return NULL;
}

/* After each change: the whole heap now and then (invariant.h). */
static void check_heap(coap_timer_heap_t *heap) {
  if (coap_invariant_walk_due(&heap->check_ops, heap->len))
    COAPS_INVARIANT_HOLDS(coap_timer_heap_broken(heap));
}

/* |t| is armed in |heap| (not in another context's heap). */
__attribute__((unused)) static int armed_here(const coap_timer_heap_t *heap,
                                              const coap_timer_t *t) {
  return t->index < heap->len && heap->items[t->index] == t;
}

static void place(coap_timer_heap_t *heap, size_t i, coap_timer_t *t) {
  heap->items[i] = t;
  t->index = i;
}

static void sift_up(coap_timer_heap_t *heap, size_t i) {
  coap_timer_t *t = heap->items[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (heap->items[parent]->deadline <= t->deadline) break;
    place(heap, i, heap->items[parent]);
    i = parent;
  }
  place(heap, i, t);
}

static void sift_down(coap_timer_heap_t *heap, size_t i) {
  coap_timer_t *t = heap->items[i];
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= heap->len) break;
    if (child + 1 < heap->len && heap->items[child + 1]->deadline < heap->items[child]->deadline)
      child++;
    if (t->deadline <= heap->items[child]->deadline) break;
    place(heap, i, heap->items[child]);
    i = child;
  }
  place(heap, i, t);
}

static void remove_at(coap_timer_heap_t *heap, size_t i) {
  COAPS_INVARIANT(i < heap->len);
  coap_timer_t *t = heap->items[i];
  t->index = COAP_TIMER_UNARMED;
  heap->len--;
  if (i == heap->len) return;
  coap_timer_t *moved = heap->items[heap->len];
  place(heap, i, moved);
  sift_down(heap, i);
  sift_up(heap, moved->index);
}

int coap_timer_arm(coap_timer_heap_t *heap, coap_timer_t *t, uint64_t deadline) {
  COAPS_INVARIANT(heap && t && t->fn);
  if (coap_timer_armed(t)) {
    COAPS_INVARIANT(armed_here(heap, t));
    uint64_t old = t->deadline;
    t->deadline = deadline;
    if (deadline < old)
      sift_up(heap, t->index);
    else
      sift_down(heap, t->index);
    check_heap(heap);
    return 0;
  }
  if (heap->len == heap->cap) {
    size_t cap = heap->cap ? heap->cap * 2 : 64;
    coap_timer_t **items = heap->grow ? heap->grow(heap->items, cap * sizeof(*items))
                                      : realloc(heap->items, cap * sizeof(*items));
    if (!items) return COAP_E_NOMEM;
    heap->items = items;
    heap->cap = cap;
  }
  t->deadline = deadline;
  place(heap, heap->len++, t);
  sift_up(heap, t->index);
  check_heap(heap);
  return 0;
}

void coap_timer_cancel(coap_timer_heap_t *heap, coap_timer_t *t) {
  if (!coap_timer_armed(t)) return;
  COAPS_INVARIANT(armed_here(heap, t));
  remove_at(heap, t->index);
  check_heap(heap);
}

uint64_t coap_timer_heap_next(const coap_timer_heap_t *heap) {
  return heap->len ? heap->items[0]->deadline : UINT64_MAX;
}

size_t coap_timer_heap_run(coap_timer_heap_t *heap, uint64_t now) {
  size_t fired = 0;
  while (heap->len && heap->items[0]->deadline <= now) {
    coap_timer_t *t = heap->items[0];
    remove_at(heap, 0);
    check_heap(heap);
    fired++;
    t->fn(t, now, t->user);
  }
  return fired;
}
