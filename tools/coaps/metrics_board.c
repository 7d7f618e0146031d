/* The board the workers publish their numbers on and the HTTP thread
 * reads: one slot per worker, written by that worker only. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"

uint64_t metrics_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int metrics_board_init(metrics_board_t *b, long n_workers) {
  memset(b, 0, sizeof(*b));
  b->slots = calloc((size_t)n_workers, sizeof(*b->slots));
  if (!b->slots) return -1;
  b->n_workers = n_workers;
  atomic_init(&b->reloads_ok, 0);
  atomic_init(&b->reloads_failed, 0);
  atomic_init(&b->last_reload_success_unix, 0);
  for (long i = 0; i < n_workers; i++) pthread_mutex_init(&b->slots[i].lock, NULL);
  b->started_unix = (int64_t)time(NULL);
  b->started_mono_ms = metrics_mono_ms();
  return 0;
}

void metrics_board_free(metrics_board_t *b) {
  for (long i = 0; i < b->n_workers; i++) pthread_mutex_destroy(&b->slots[i].lock);
  free(b->slots);
  memset(b, 0, sizeof(*b));
}

/* The failures newer than the slot has, newest first, into the slot
 * (the lock held). */
static void publish_failures(metrics_slot_t *s, coap_context_t *ctx,
                             const coap_failure_record_t *newest) {
  s->failures[0] = *newest;
  size_t n = 1;
  while (n < COAP_FAILURE_LOG_SIZE && coap_context_failure(ctx, n, &s->failures[n]) == 0) n++;
  s->n_failures = n;
  s->failure_seq = newest->seq;
}

void metrics_publish(metrics_board_t *b, long index, coap_context_t *ctx, int force) {
  if (!b || !b->slots) return;
  metrics_slot_t *s = &b->slots[index];
  uint64_t now = metrics_mono_ms();
  if (!force && s->published && now - s->last_publish_ms < METRICS_PUBLISH_MS) return;
  /* Gathered outside the lock: the lock only covers the copies. */
  coap_stats_t st;
  coap_context_get_stats(ctx, &st);
  coap_failure_record_t newest;
  int new_failures = coap_context_failure(ctx, 0, &newest) == 0 && newest.seq != s->failure_seq;
  if (pthread_mutex_trylock(&s->lock) != 0) return; /* a scrape is copying: next turn */
  s->stats = st;
  if (new_failures) publish_failures(s, ctx, &newest);
  s->published = 1;
  pthread_mutex_unlock(&s->lock);
  s->last_publish_ms = now;
}

void metrics_note_reload(metrics_board_t *b, int ok) {
  if (!b) return;
  if (!ok) {
    atomic_fetch_add(&b->reloads_failed, 1);
    return;
  }
  atomic_store(&b->last_reload_success_unix, (int64_t)time(NULL));
  atomic_fetch_add(&b->reloads_ok, 1);
}

static void add_stats(coap_stats_t *sum, const coap_stats_t *st) {
  /* Every field is a uint64_t counter or gauge (or an array of them) of
   * disjoint peers: the sum over workers is the server's number. */
  _Static_assert(sizeof(coap_stats_t) % sizeof(uint64_t) == 0, "coap_stats_t is all uint64_t");
  uint64_t *d = (uint64_t *)sum;
  const uint64_t *s = (const uint64_t *)st;
  for (size_t i = 0; i < sizeof(coap_stats_t) / sizeof(uint64_t); i++) d[i] += s[i];
}

/* Merge |n| failures (newest first) into the view's list, newest first,
 * keeping the newest COAP_FAILURE_LOG_SIZE. */
static void merge_failures(metrics_view_t *v, const coap_failure_record_t *f, size_t n) {
  coap_failure_record_t merged[COAP_FAILURE_LOG_SIZE];
  size_t a = 0, b = 0, m = 0;
  while (m < COAP_FAILURE_LOG_SIZE && (a < v->n_failures || b < n)) {
    int take_view = b >= n || (a < v->n_failures && v->failures[a].at_ms >= f[b].at_ms);
    merged[m++] = take_view ? v->failures[a++] : f[b++];
  }
  memcpy(v->failures, merged, m * sizeof merged[0]);
  v->n_failures = m;
}

void metrics_collect(metrics_board_t *b, metrics_view_t *v) {
  memset(v, 0, sizeof(*v));
  coap_failure_record_t copy[COAP_FAILURE_LOG_SIZE]; /* 40 KB: the HTTP thread's stack */
  for (long i = 0; i < b->n_workers; i++) {
    metrics_slot_t *s = &b->slots[i];
    coap_stats_t st;
    pthread_mutex_lock(&s->lock);
    int published = s->published;
    st = s->stats;
    size_t n = s->n_failures;
    memcpy(copy, s->failures, n * sizeof copy[0]);
    pthread_mutex_unlock(&s->lock);
    if (!published) continue;
    v->workers_published++;
    add_stats(&v->sum, &st);
    merge_failures(v, copy, n);
  }
  v->reloads.ok = atomic_load(&b->reloads_ok);
  v->reloads.failed = atomic_load(&b->reloads_failed);
  v->reloads.last_success_unix = atomic_load(&b->last_reload_success_unix);
  v->now_unix = (int64_t)time(NULL);
  v->now_mono_ms = metrics_mono_ms();
  v->started_unix = b->started_unix;
}

double metrics_failure_unix(const metrics_view_t *v, const coap_failure_record_t *f) {
  double ago_s = f->at_ms <= v->now_mono_ms ? (double)(v->now_mono_ms - f->at_ms) / 1000 : 0;
  return (double)v->now_unix - ago_s;
}
