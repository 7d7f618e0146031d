/* coaps-bench: the client sessions — each its own coap_context_t, driven
 * through the embedding API, with a window of GETs in flight — and the
 * heap of their deadlines. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* ---- deadline heap: the loop sleeps until the earliest context timer
 * and wakes only the contexts that are due. ---- */

static void heap_swap(bench_t *b, size_t i, size_t j) {
  session_t *t = b->heap[i];
  b->heap[i] = b->heap[j];
  b->heap[j] = t;
  b->heap[i]->heap_idx = i;
  b->heap[j]->heap_idx = j;
}

void heap_fix(bench_t *b, size_t i) {
  while (i > 0 && b->heap[(i - 1) / 2]->deadline > b->heap[i]->deadline) {
    heap_swap(b, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < b->heap_len && b->heap[l]->deadline < b->heap[m]->deadline) m = l;
    if (r < b->heap_len && b->heap[r]->deadline < b->heap[m]->deadline) m = r;
    if (m == i) return;
    heap_swap(b, i, m);
    i = m;
  }
}

static int heap_push(bench_t *b, session_t *s) {
  if (b->heap_len == b->heap_cap) {
    size_t cap = b->heap_cap ? b->heap_cap * 2 : 64;
    session_t **h = realloc(b->heap, cap * sizeof *h);
    if (!h) return -1;
    b->heap = h;
    b->heap_cap = cap;
  }
  s->heap_idx = b->heap_len;
  b->heap[b->heap_len++] = s;
  heap_fix(b, s->heap_idx);
  return 0;
}

static void heap_remove(bench_t *b, session_t *s) {
  size_t i = s->heap_idx, last = b->heap_len - 1;
  if (i != last) heap_swap(b, i, last);
  b->heap_len--;
  if (i < b->heap_len) heap_fix(b, i);
}

/* ---- sessions ---- */

static void on_reply(coap_context_t *ctx, const coap_reply_t *r, void *user);

static int send_get(session_t *s) {
  bench_t *b = s->b;
  unsigned i = (unsigned)__builtin_ctzll(~s->busy);
  slot_t *sl = &s->slots[i];
  sl->s = s;
  sl->sent_us = 0;
  if (b->measuring) {
    sl->sent_us = b->batch_us ? b->batch_us : now_us();
    b->issued++;
    b->in_flight_measured++;
  }
  coap_request_opts_t ro;
  coap_request_opts_init(&ro, COAP_GET, b->o.uri);
  s->busy |= 1ull << i;
  int rc = coap_send_request(s->ctx, &ro, on_reply, sl, NULL);
  if (rc < 0) {
    /* Refused before anything was sent (no callback will come). */
    s->busy &= ~(1ull << i);
    if (sl->sent_us) b->in_flight_measured--;
    b->c.other_errors++;
    if (b->o.verbose) fprintf(stderr, "coaps-bench: request refused: %s\n", coap_strerror(rc));
  }
  return rc;
}

/* Keep the window full while the measurement wants more requests. */
static void session_refill(session_t *s) {
  bench_t *b = s->b;
  if (s->state != S_READY || b->o.handshakes > 0 || b->o.hold_s >= 0) return;
  long w = b->o.window;
  while (__builtin_popcountll(s->busy) < w && !b->stopping) {
    if (b->measuring && b->o.requests > 0 && b->issued >= b->o.requests) return;
    if (send_get(s) < 0) return;
  }
}

void session_free(bench_t *b, session_t *s) {
  coap_stats_t st;
  coap_context_get_stats(s->ctx, &st);
  b->c.retransmissions += st.retransmissions;
  int was_stopping = b->stopping;
  b->stopping = 1; /* outstanding requests come back as cancelled */
  s->mute = b->o.leave_open;
  coap_context_free(s->ctx); /* may send a close_notify through the queue */
  b->stopping = was_stopping;
  bench_flush(b);
  if (s->fd >= 0) close(s->fd);
  if (s->src) b->by_index[s->idx] = NULL;
  heap_remove(b, s);
  free(s);
}

/* After anything that ran a session's context: send what it queued,
 * top up its window, re-key its deadline. A finished --handshakes session
 * is freed here, outside the library's call stack. Returns 1 if freed.
 * What a session on a shared socket queued waits for the caller's
 * bench_flush, so that one sendmmsg carries many sessions' datagrams. */
int session_after(bench_t *b, session_t *s) {
  if (s->state == S_DONE && b->o.handshakes > 0) {
    session_free(b, s);
    return 1;
  }
  session_refill(s);
  if (!s->src) bench_flush(b);
  uint64_t d = coap_context_next_timeout(s->ctx);
  if (d != s->deadline) {
    s->deadline = d;
    heap_fix(b, s->heap_idx);
  }
  return 0;
}

/* Tokens and back-off jitter for the generator's own requests. A load
 * generator needs tokens that are distinct, not unpredictable, so a
 * splitmix64 stream seeded once from the kernel does: a few ns a draw,
 * against about 40 ns for the library's default (kernel randomness through
 * a per-thread pool; when it made one getrandom call per draw, that was a
 * sixth of the generator's CPU). */
static void bench_rand(void *user, uint8_t *buf, size_t len) {
  bench_t *b = user;
  while (len) {
    uint64_t z = (b->rand_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    size_t n = len < sizeof z ? len : sizeof z;
    memcpy(buf, &z, n);
    buf += n;
    len -= n;
  }
}

static session_t *session_new(bench_t *b, long idx) {
  session_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->b = b;
  s->fd = -1;
  s->idx = idx;
  s->deadline = UINT64_MAX;
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.log_level = b->o.verbose ? COAP_LOG_INFO : COAP_LOG_ERROR;
  cfg.max_peers = 4;
  cfg.resolve = cached_resolve;
  cfg.resolve_user = b;
  cfg.rand = bench_rand;
  cfg.rand_user = b;
  /* The window is the session's concurrency: NSTART must allow it. */
  cfg.tx.nstart = (uint8_t)b->o.window;
  s->ctx = coap_context_new(&cfg);
  if (!s->ctx || heap_push(b, s) < 0) {
    coap_context_free(s->ctx);
    free(s);
    return NULL;
  }
  if (b->dtls) coap_context_set_dtls_context(s->ctx, coap_dtls_context_ref(b->dtls));
  coap_transport_t t = {.send = bench_send, .open_client_endpoint = bench_open_endpoint};
  coap_context_set_transport(s->ctx, &t, s);
  return s;
}

void launch_sessions(bench_t *b) {
  while (!b->stopping && b->started < b->target_sessions && b->connecting < b->o.parallel) {
    session_t *s = session_new(b, b->started);
    b->started++;
    if (!s) {
      b->c.other_errors++;
      b->finished++;
      continue;
    }
    b->connecting++;
    if (send_get(s) < 0) {
      b->connecting--;
      b->finished++;
      s->state = S_DONE;
      session_free(b, s);
      continue;
    }
    session_after(b, s);
  }
  bench_flush(b);
}

static void count_failure(bench_t *b, const coap_reply_t *r) {
  if (r->status == COAP_E_TIMEOUT)
    b->c.timeouts++;
  else if (r->status <= COAP_E_DTLS_NO_CREDENTIALS && r->status >= COAP_E_DTLS_RECORD)
    b->c.handshake_failures++; /* failed, timed out or lost DTLS session */
  else
    b->c.other_errors++;
  if (b->o.verbose)
    fprintf(stderr, "coaps-bench: request failed: %s%s%s\n", coap_strerror(r->status),
            r->detail ? ": " : "", r->detail ? r->detail : "");
}

/* The first reply of a session ends its handshake (or its first round
 * trip, for coap://). */
static void session_established(bench_t *b, session_t *s, int ok) {
  b->connecting--;
  if (ok) {
    b->c.handshakes++;
    s->state = b->o.handshakes > 0 ? S_DONE : S_READY;
  } else {
    s->state = S_DONE;
  }
  if (b->o.handshakes > 0 || !ok) b->finished++;
}

static void on_reply(coap_context_t *ctx, const coap_reply_t *r, void *user) {
  slot_t *sl = user;
  session_t *s = sl->s;
  bench_t *b = s->b;
  s->busy &= ~(1ull << (sl - s->slots));
  if (b->stopping && r->status == COAP_E_CANCELLED) return;
  uint64_t t = b->batch_us ? b->batch_us : now_us();
  int ok = r->status == 0 && r->code >> 5 == 2;
  if (r->status < 0)
    count_failure(b, r);
  else if (!ok)
    b->c.non_2xx++;
  if (sl->sent_us) {
    b->in_flight_measured--;
    if (ok && (!b->t_end_us || t <= b->t_end_us)) {
      b->c.completed++;
      hist_add(&b->lat, t - sl->sent_us);
      b->last_done_us = t;
    }
  }
  if (s->state == S_CONNECTING) session_established(b, s, r->status == 0);
}
