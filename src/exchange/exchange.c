/* The CoAP message layer (RFC 7252 §4 and §5.2). See exchange.h. */
#include "exchange/exchange.h"

#include <stdlib.h>
#include <string.h>

#include "common/invariant.h"
#include "common/util.h"

#define FREE_LIST_MAX 256
#define SCRATCH_SIZE 65536

typedef enum dedup_state {
  DEDUP_PENDING, /* request handed up, nothing sent yet */
  DEDUP_REPLIED  /* |reply| holds what a duplicate gets */
} dedup_state_t;

struct coap_exch_dedup {
  uint16_t mid;
  uint8_t type;
  uint8_t state;
  uint16_t chain; /* next entry in the same MID bucket, as index + 1; 0 ends */
  uint16_t print; /* a response's fingerprint (response_print); 0 for the rest */
  uint64_t expires;
  coap_exch_in_t *in; /* while the request is pending */
  uint8_t *reply;
  size_t reply_len, reply_cap;
};

struct coap_exch_out {
  coap_exch_out_t *next, *prev;
  coap_exch_peer_t *peer;
  void *user;
  uint16_t mid;
  uint8_t type; /* CON or NON */
  uint8_t token_len;
  uint8_t token[COAP_MAX_TOKEN_LEN];
  uint8_t is_response;     /* a separate CON response we retransmit */
  uint8_t is_notification; /* ... that is an Observe notification */
  uint8_t acked;           /* CON acknowledged: only the response is awaited */
  uint8_t queued;          /* waiting for NSTART */
  uint8_t in_flight;       /* counted in peer->cons_in_flight */
  unsigned retransmits;
  uint32_t timeout_ms;
  coap_timer_t timer;
  coap_exch_t *ex;
  uint8_t *bytes;
  size_t len, cap;
};

struct coap_exch_in {
  coap_exch_in_t *next, *prev;
  coap_exch_peer_t *peer;
  coap_exch_t *ex;
  coap_exch_dedup_t *dedup;
  void *user;
  uint16_t mid;
  uint8_t type;
  uint8_t ack_sent;
  uint8_t token_len;
  uint8_t token[COAP_MAX_TOKEN_LEN];
  coap_timer_t separate_timer;
};

struct coap_exch {
  coap_tx_params_t p;
  coap_exch_callbacks_t cb;
  void *user;
  coap_timer_heap_t *timers;
  const coap_logger_t *log;
  coap_rand_fn rand;
  void *rand_user;
  coap_exch_stats_t stats;
  coap_exch_out_t *out_free;
  coap_exch_in_t *in_free;
  size_t n_out_free, n_in_free;
  uint8_t *scratch;
  uint64_t now;       /* latest time seen, for calls that take none */
  unsigned check_ops; /* operations since the last invariant walk */
  size_t check_cost;  /* entries that walk visited */
  /* The CON coap_exch_request is putting in the queue, and whether it
   * failed to start there (pump_queue): its caller hears it as the call's
   * return, not through on_response inside the call. */
  coap_exch_out_t *starting;
  int starting_failed;
};

/* ---- helpers ---- */

static const char *name_of(coap_exch_t *ex, const coap_exch_peer_t *peer) {
  return ex->cb.peer_name ? ex->cb.peer_name(ex->user, peer) : NULL;
}

/* EXCHANGE_LIFETIME and NON_LIFETIME (RFC 7252 §4.8.2) from the
 * parameters in force; MAX_LATENCY is 100 s, PROCESSING_DELAY is
 * ACK_TIMEOUT. */
static uint64_t max_transmit_span(const coap_tx_params_t *p) {
  return (uint64_t)p->ack_timeout_ms * ((1u << p->max_retransmit) - 1) * p->ack_random_factor_pm /
         1000;
}
static uint64_t exchange_lifetime(const coap_tx_params_t *p) {
  return max_transmit_span(p) + 2 * 100000ull + p->ack_timeout_ms;
}
static uint64_t non_lifetime(const coap_tx_params_t *p) {
  return max_transmit_span(p) + 100000ull;
}

static void trace(coap_exch_t *ex, coap_exch_peer_t *peer, int outgoing, const uint8_t *data,
                  size_t len) {
  if (!ex->cb.on_trace) return;
  coap_msg_t msg;
  if (coap_msg_parse(&msg, data, len) == 0) ex->cb.on_trace(ex->user, peer, outgoing, &msg);
}

static void transmit(coap_exch_t *ex, coap_exch_peer_t *peer, const uint8_t *data, size_t len) {
  trace(ex, peer, 1, data, len);
  int rc = ex->cb.send(ex->user, peer, data, len);
  if (rc < 0)
    coap_logf(ex->log, COAP_LOG_DEBUG, name_of(ex, peer), "send failed: %s", coap_strerror(rc));
}

/* An empty ACK or RST for |mid|, written into |buf| (4 bytes). */
static void empty_message(uint8_t *buf, coap_type_t type, uint16_t mid) {
  buf[0] = (uint8_t)(COAP_VERSION << 6 | type << 4);
  buf[1] = COAP_CODE_EMPTY;
  buf[2] = (uint8_t)(mid >> 8);
  buf[3] = (uint8_t)mid;
}

static void send_empty(coap_exch_t *ex, coap_exch_peer_t *peer, coap_type_t type, uint16_t mid) {
  uint8_t buf[4];
  empty_message(buf, type, mid);
  if (type == COAP_TYPE_RST) ex->stats.resets_sent++;
  transmit(ex, peer, buf, sizeof buf);
}

/* ---- dedup ring ----
 * The peer's last message IDs, oldest recycled first, found through a
 * small hash index (bucket = MID modulo a power of two, chains through the
 * entries) so that a lookup costs the same for a full ring as for an empty
 * one. The ring starts small and doubles up to dedup_capacity: a peer that
 * sent one request holds a few entries, not the whole capacity. */

#define DEDUP_INITIAL 4

/* The power of two at or above |cap|, at most 32768 (a larger ring just
 * has chains of two). */
static uint16_t dedup_buckets_for(uint16_t cap) {
  uint16_t n = 1;
  while (n < cap && n < 32768) n = (uint16_t)(n << 1);
  return n;
}

static uint16_t *dedup_head(coap_exch_peer_t *peer, uint16_t mid) {
  return &peer->dedup_heads[mid & (peer->dedup_buckets - 1)];
}

static void dedup_link(coap_exch_peer_t *peer, uint16_t idx) {
  uint16_t *head = dedup_head(peer, peer->dedup[idx].mid);
  peer->dedup[idx].chain = *head;
  *head = (uint16_t)(idx + 1);
}

static void dedup_unlink(coap_exch_peer_t *peer, uint16_t idx) {
  uint16_t *link = dedup_head(peer, peer->dedup[idx].mid);
  while (*link && *link != idx + 1) link = &peer->dedup[*link - 1].chain;
  if (*link) *link = peer->dedup[idx].chain;
}

static coap_exch_dedup_t *dedup_find(coap_exch_peer_t *peer, uint16_t mid, uint64_t now) {
  if (!peer->dedup) return NULL;
  for (uint16_t i = *dedup_head(peer, mid); i; i = peer->dedup[i - 1].chain) {
    coap_exch_dedup_t *d = &peer->dedup[i - 1];
    if (d->mid == mid && d->expires > now) return d;
  }
  return NULL;
}

/* The entry of a response seen before: the same message ID and the same
 * fingerprint (response_print). */
static coap_exch_dedup_t *dedup_find_response(coap_exch_peer_t *peer, uint16_t mid, uint16_t print,
                                              uint64_t now) {
  if (!peer->dedup) return NULL;
  for (uint16_t i = *dedup_head(peer, mid); i; i = peer->dedup[i - 1].chain) {
    coap_exch_dedup_t *d = &peer->dedup[i - 1];
    if (d->mid == mid && d->print == print && d->expires > now) return d;
  }
  return NULL;
}

/* Room for |cap| entries (more than today's). Entries move, so the
 * pending requests' back-pointers follow them, and the index is rebuilt.
 * Returns 0, or COAP_E_NOMEM with the ring unchanged. */
static int dedup_grow(coap_exch_peer_t *peer, uint16_t cap) {
  coap_exch_dedup_t *d = realloc(peer->dedup, cap * sizeof(*d));
  if (!d) return COAP_E_NOMEM;
  peer->dedup = d;
  for (uint16_t i = 0; i < peer->dedup_len; i++)
    if (d[i].in) d[i].in->dedup = &d[i]; /* the entries moved */
  uint16_t buckets = dedup_buckets_for(cap);
  uint16_t *heads = realloc(peer->dedup_heads, buckets * sizeof(*heads));
  if (!heads) return COAP_E_NOMEM; /* the ring keeps its old size */
  memset(d + peer->dedup_len, 0, (size_t)(cap - peer->dedup_len) * sizeof(*d));
  memset(heads, 0, buckets * sizeof(*heads));
  peer->dedup_heads = heads;
  peer->dedup_buckets = buckets;
  peer->dedup_cap = cap;
  for (uint16_t i = 0; i < peer->dedup_len; i++) dedup_link(peer, i);
  return 0;
}

/* A slot for a new MID: a fresh one while the ring may still grow, else
 * the oldest is recycled (its reply buffer kept for reuse). Returns NULL
 * only when out of memory. */
static coap_exch_dedup_t *dedup_add(coap_exch_t *ex, coap_exch_peer_t *peer, uint16_t mid,
                                    uint8_t type, uint64_t now) {
  uint16_t max = ex->p.dedup_capacity ? ex->p.dedup_capacity : 1;
  if (peer->dedup_len == peer->dedup_cap && peer->dedup_cap < max) {
    uint16_t cap = peer->dedup_cap ? peer->dedup_cap : DEDUP_INITIAL / 2;
    cap = cap * 2 < max ? (uint16_t)(cap * 2) : max;
    if (dedup_grow(peer, cap) < 0 && !peer->dedup_len) return NULL;
  }
  uint16_t idx;
  if (peer->dedup_len < peer->dedup_cap) {
    idx = peer->dedup_len++;
  } else {
    idx = peer->dedup_pos;
    peer->dedup_pos = (uint16_t)((peer->dedup_pos + 1) % peer->dedup_cap);
    dedup_unlink(peer, idx);
    if (peer->dedup[idx].in) peer->dedup[idx].in->dedup = NULL;
  }
  coap_exch_dedup_t *d = &peer->dedup[idx];
  d->mid = mid;
  d->type = type;
  d->state = DEDUP_PENDING;
  d->print = 0;
  d->in = NULL;
  d->reply_len = 0;
  d->expires = now + (type == COAP_TYPE_CON ? exchange_lifetime(&ex->p) : non_lifetime(&ex->p));
  dedup_link(peer, idx);
  return d;
}

static void dedup_store(coap_exch_dedup_t *d, const uint8_t *data, size_t len) {
  if (!d) return;
  d->state = DEDUP_REPLIED;
  d->in = NULL;
  if (len > d->reply_cap) {
    uint8_t *r = realloc(d->reply, len);
    if (!r) { /* a duplicate then gets nothing: it retransmits, no harm */
      d->reply_len = 0;
      return;
    }
    d->reply = r;
    d->reply_cap = len;
  }
  memcpy(d->reply, data, len);
  d->reply_len = len;
}

static void dedup_free(coap_exch_peer_t *peer) {
  for (uint16_t i = 0; i < peer->dedup_len; i++) free(peer->dedup[i].reply);
  free(peer->dedup);
  free(peer->dedup_heads);
  peer->dedup = NULL;
  peer->dedup_heads = NULL;
  peer->dedup_len = peer->dedup_cap = peer->dedup_pos = peer->dedup_buckets = 0;
}

/* ---- object pools: no allocation per message after warm-up ---- */

static void out_timer_fired(coap_timer_t *t, uint64_t now, void *user);
static void in_separate_fired(coap_timer_t *t, uint64_t now, void *user);

static coap_exch_out_t *out_alloc(coap_exch_t *ex, size_t len) {
  coap_exch_out_t *o = ex->out_free;
  if (o) {
    ex->out_free = o->next;
    ex->n_out_free--;
  } else if (!(o = calloc(1, sizeof(*o)))) {
    return NULL;
  }
  uint8_t *bytes = o->bytes;
  size_t cap = o->cap;
  memset(o, 0, sizeof(*o));
  o->bytes = bytes;
  o->cap = cap;
  if (len > o->cap) {
    uint8_t *b = realloc(o->bytes, len);
    if (!b) {
      free(o->bytes);
      free(o);
      return NULL;
    }
    o->bytes = b;
    o->cap = len;
  }
  o->ex = ex;
  coap_timer_init(&o->timer, out_timer_fired, o);
  return o;
}

static void out_release(coap_exch_t *ex, coap_exch_out_t *o) {
  coap_timer_cancel(ex->timers, &o->timer);
  o->peer = NULL; /* released: a later use is caught (COAPS_INVARIANT) */
  if (ex->n_out_free < FREE_LIST_MAX && o->cap <= 2048) {
    o->next = ex->out_free;
    ex->out_free = o;
    ex->n_out_free++;
    return;
  }
  free(o->bytes);
  free(o);
}

static coap_exch_in_t *in_alloc(coap_exch_t *ex) {
  coap_exch_in_t *in = ex->in_free;
  if (in) {
    ex->in_free = in->next;
    ex->n_in_free--;
    memset(in, 0, sizeof(*in));
  } else if (!(in = calloc(1, sizeof(*in)))) {
    return NULL;
  }
  in->ex = ex;
  coap_timer_init(&in->separate_timer, in_separate_fired, in);
  return in;
}

static void in_release(coap_exch_t *ex, coap_exch_in_t *in) {
  coap_timer_cancel(ex->timers, &in->separate_timer);
  in->peer = NULL; /* released: a later use is caught (COAPS_INVARIANT) */
  if (ex->n_in_free < FREE_LIST_MAX) {
    in->next = ex->in_free;
    ex->in_free = in;
    ex->n_in_free++;
    return;
  }
  free(in);
}

/* ---- lists ---- */

static void out_link(coap_exch_out_t **head, coap_exch_out_t *o) {
  o->prev = NULL;
  o->next = *head;
  if (*head) (*head)->prev = o;
  *head = o;
}

static void out_unlink(coap_exch_peer_t *peer, coap_exch_out_t *o) {
  if (o->queued) {
    coap_exch_out_t **link = &peer->queue_head;
    coap_exch_out_t *prev = NULL;
    while (*link && *link != o) {
      prev = *link;
      link = &(*link)->next;
    }
    if (*link) *link = o->next;
    if (peer->queue_tail == o) peer->queue_tail = prev;
    o->queued = 0;
    return;
  }
  if (o->prev)
    o->prev->next = o->next;
  else if (peer->out_head == o)
    peer->out_head = o->next;
  if (o->next) o->next->prev = o->prev;
  o->next = o->prev = NULL;
}

/* ---- invariants (common/invariant.h) ---- */

static const char *out_list_broken(const coap_exch_peer_t *peer, size_t *walked) {
  unsigned counted = 0;
  const coap_exch_out_t *prev = NULL;
  for (const coap_exch_out_t *o = peer->out_head; o; prev = o, o = o->next) {
    if (++*walked > (1u << 24)) return "exchange: in-flight list loops";
    if (o->prev != prev) return "exchange: in-flight list: prev is not the entry before";
    if (o->peer != peer) return "exchange: a request in another peer's list";
    if (o->queued) return "exchange: a queued request in the in-flight list";
    if (o->in_flight) {
      if (o->type != COAP_TYPE_CON || o->acked || o->is_response)
        return "exchange: counted in flight but not an unacknowledged CON request";
      counted++;
    }
  }
  return counted == peer->cons_in_flight ? NULL
                                         : "exchange: cons_in_flight is not the number counted";
}

static const char *queue_broken(const coap_exch_peer_t *peer, size_t *walked) {
  if (!peer->queue_head != !peer->queue_tail) return "exchange: NSTART queue has one end only";
  for (const coap_exch_out_t *o = peer->queue_head; o; o = o->next) {
    if (++*walked > (1u << 24)) return "exchange: NSTART queue loops";
    if (!o->queued || o->in_flight || o->peer != peer || o->type != COAP_TYPE_CON)
      return "exchange: an entry of the NSTART queue not a waiting CON of the peer";
    if (!o->next && peer->queue_tail != o) return "exchange: NSTART queue tail is not its last";
  }
  return NULL;
}

static const char *in_list_broken(const coap_exch_peer_t *peer, size_t *walked) {
  const coap_exch_in_t *prev = NULL;
  for (const coap_exch_in_t *in = peer->in_head; in; prev = in, in = in->next) {
    if (++*walked > (1u << 24)) return "exchange: pending request list loops";
    if (in->prev != prev) return "exchange: pending request list: prev is not the entry before";
    if (in->peer != peer) return "exchange: a pending request in another peer's list";
    if (in->dedup && (in->dedup < peer->dedup || in->dedup >= peer->dedup + peer->dedup_len ||
                      in->dedup->in != in))
      return "exchange: a pending request and its dedup entry disagree";
  }
  return NULL;
}

static const char *dedup_broken(const coap_exch_peer_t *peer, size_t *walked) {
  if (peer->dedup_len > peer->dedup_cap) return "dedup ring: len > cap";
  if (peer->dedup_cap && !peer->dedup) return "dedup ring: capacity without entries";
  if (peer->dedup_pos && peer->dedup_pos >= peer->dedup_cap) return "dedup ring: pos >= cap";
  if (peer->dedup_pos && peer->dedup_len < peer->dedup_cap)
    return "dedup ring: recycling before it is full";
  if (!peer->dedup_cap) return NULL;
  uint16_t nb = peer->dedup_buckets;
  if (!nb || (nb & (nb - 1)) || !peer->dedup_heads) return "dedup ring: bucket count";
  size_t linked = 0;
  for (uint16_t b = 0; b < nb; b++)
    for (uint16_t i = peer->dedup_heads[b]; i; i = peer->dedup[i - 1].chain) {
      if (i > peer->dedup_len) return "dedup ring: a chain points past len";
      if ((peer->dedup[i - 1].mid & (nb - 1)) != b)
        return "dedup ring: an entry in the wrong bucket";
      if (++linked > peer->dedup_len) return "dedup ring: an entry linked twice, or a loop";
    }
  if (linked != peer->dedup_len) return "dedup ring: an entry in no chain";
  for (uint16_t i = 0; i < peer->dedup_len; i++) {
    const coap_exch_dedup_t *d = &peer->dedup[i];
    if (d->in && (d->in->dedup != d || d->in->peer != peer))
      return "dedup ring: an entry's pending request points elsewhere";
    if (d->reply_len > d->reply_cap) return "dedup ring: reply_len > reply_cap";
  }
  *walked += linked + nb;
  return NULL;
}

const char *coap_exch_peer_broken(const coap_exch_peer_t *peer) {
  size_t walked = 0;
  const char *why = out_list_broken(peer, &walked);
  if (!why) why = queue_broken(peer, &walked);
  if (!why) why = in_list_broken(peer, &walked);
  if (!why) why = dedup_broken(peer, &walked);
  return why;
}

const char *coap_exch_broken(const coap_exch_t *ex) {
  size_t n = 0;
  for (const coap_exch_out_t *o = ex->out_free; o; o = o->next)
    if (++n > ex->n_out_free || coap_timer_armed(&o->timer) || o->peer)
      return "exchange pool: the free requests are more than counted, or in use";
  if (n != ex->n_out_free || n > FREE_LIST_MAX) return "exchange pool: free request count";
  n = 0;
  for (const coap_exch_in_t *in = ex->in_free; in; in = in->next)
    if (++n > ex->n_in_free || coap_timer_armed(&in->separate_timer) || in->peer)
      return "exchange pool: the free incoming requests are more than counted, or in use";
  if (n != ex->n_in_free || n > FREE_LIST_MAX) return "exchange pool: free incoming count";
  return NULL;
}

/* After a change to |peer| (may be NULL): its state and the pools, now and
 * then (invariant.h), at a cost proportional to what was walked last. */
static void check_exch(coap_exch_t *ex, const coap_exch_peer_t *peer) {
  if (!coap_invariant_walk_due(&ex->check_ops, ex->check_cost)) return;
  COAPS_INVARIANT_HOLDS(coap_exch_broken(ex));
  ex->check_cost = ex->n_out_free + ex->n_in_free;
  if (!peer) return;
  COAPS_INVARIANT_HOLDS(coap_exch_peer_broken(peer));
  ex->check_cost += peer->dedup_len + peer->dedup_buckets + peer->cons_in_flight;
}

/* ---- life cycle ---- */

coap_exch_t *coap_exch_new(const coap_tx_params_t *params, const coap_exch_callbacks_t *cb,
                           void *user, coap_timer_heap_t *timers, const coap_logger_t *log,
                           coap_rand_fn rand, void *rand_user) {
  coap_exch_t *ex = calloc(1, sizeof(*ex));
  if (!ex) return NULL;
  ex->scratch = malloc(SCRATCH_SIZE);
  if (!ex->scratch) {
    free(ex);
    return NULL;
  }
  ex->p = *params;
  ex->cb = *cb;
  ex->user = user;
  ex->timers = timers;
  ex->log = log;
  ex->rand = rand ? rand : coap_system_rand;
  ex->rand_user = rand_user;
  return ex;
}

void coap_exch_free(coap_exch_t *ex) {
  if (!ex) return;
  while (ex->out_free) {
    coap_exch_out_t *o = ex->out_free;
    ex->out_free = o->next;
    free(o->bytes);
    free(o);
  }
  while (ex->in_free) {
    coap_exch_in_t *in = ex->in_free;
    ex->in_free = in->next;
    free(in);
  }
  free(ex->scratch);
  free(ex);
}

void coap_exch_set_params(coap_exch_t *ex, const coap_tx_params_t *params) {
  ex->p = *params;
}

const coap_exch_stats_t *coap_exch_stats(const coap_exch_t *ex) {
  return &ex->stats;
}

void coap_exch_peer_init(coap_exch_t *ex, coap_exch_peer_t *peer) {
  COAPS_INVARIANT(ex && peer);
  memset(peer, 0, sizeof(*peer));
  ex->rand(ex->rand_user, (uint8_t *)&peer->next_mid, sizeof peer->next_mid);
}

int coap_exch_peer_idle(const coap_exch_peer_t *peer) {
  return !peer->out_head && !peer->queue_head && !peer->in_head;
}

int coap_exch_peer_sent(const coap_exch_peer_t *peer, const uint8_t *quoted, size_t len) {
  if (!quoted || len < 4 || (quoted[0] >> 6) != COAP_VERSION) return 0;
  size_t header = 4 + (quoted[0] & 0x0f); /* with the token */
  if (len < header) return 0;
  /* The in-flight list only: a queued request has not been sent. */
  for (const coap_exch_out_t *o = peer->out_head; o; o = o->next) {
    if (o->len < header) continue;
    size_t n = len < o->len ? len : o->len;
    if (memcmp(o->bytes, quoted, n) == 0) return 1;
  }
  return 0;
}

/* ---- outgoing: requests and separate CON responses ---- */

static uint32_t initial_timeout(coap_exch_t *ex) {
  uint32_t spread =
      (uint32_t)((uint64_t)ex->p.ack_timeout_ms * (ex->p.ack_random_factor_pm - 1000) / 1000);
  uint32_t r = 0;
  if (spread) {
    ex->rand(ex->rand_user, (uint8_t *)&r, sizeof r);
    r %= spread + 1;
  }
  return ex->p.ack_timeout_ms + r;
}

static void pump_queue(coap_exch_t *ex, coap_exch_peer_t *peer, uint64_t now);

/* Put a CON on the wire for the first time and start its back-off. The
 * timer is armed first: a transport may deliver the answer before send
 * returns, and then |o| may already be finished. Without its timer (no
 * memory for the timer heap) it would never be retransmitted nor end: it
 * is not sent, COAP_E_NOMEM, and the caller finishes it. */
static int start_con(coap_exch_t *ex, coap_exch_out_t *o, uint64_t now) {
  o->timeout_ms = initial_timeout(ex);
  o->retransmits = 0;
  if (coap_timer_arm(ex->timers, &o->timer, now + o->timeout_ms) < 0) return COAP_E_NOMEM;
  transmit(ex, o->peer, o->bytes, o->len);
  return 0;
}

void coap_exch_peer_restart(coap_exch_t *ex, coap_exch_peer_t *peer, uint64_t now, int new_mids) {
  for (coap_exch_out_t *o = peer->out_head; o; o = o->next) {
    if (o->type != COAP_TYPE_CON || o->acked || o->is_response) continue;
    /* The peer may still hold the old MID from the old session and drop
     * the request as a duplicate (libcoap: "mid already in-use"); the
     * token stays, so the answer still matches. */
    if (new_mids) {
      o->mid = peer->next_mid++;
      o->bytes[2] = (uint8_t)(o->mid >> 8);
      o->bytes[3] = (uint8_t)o->mid;
    }
    o->retransmits = 0;
    o->timeout_ms = initial_timeout(ex);
    coap_timer_arm(ex->timers, &o->timer, now + o->timeout_ms);
  }
}

static void release_nstart(coap_exch_out_t *o) {
  if (o->in_flight) {
    o->in_flight = 0;
    o->peer->cons_in_flight--;
  }
}

/* End a request: tell the caller (unless it asked for silence) and free. */
static void out_finish(coap_exch_t *ex, coap_exch_out_t *o, int err, uint64_t now, int notify) {
  COAPS_INVARIANT(o->peer); /* not finished before */
  coap_exch_peer_t *peer = o->peer;
  release_nstart(o);
  out_unlink(peer, o);
  coap_timer_cancel(ex->timers, &o->timer);
  if (notify && o->is_notification && ex->cb.on_notify_done)
    ex->cb.on_notify_done(ex->user, o->user, err, now);
  else if (notify && !o->is_response && ex->cb.on_response)
    ex->cb.on_response(ex->user, o, NULL, err, now);
  out_release(ex, o);
  check_exch(ex, peer);
}

/* The CON was acknowledged (empty ACK, or implied by a response). */
static void out_acked(coap_exch_t *ex, coap_exch_out_t *o, uint64_t now) {
  o->acked = 1;
  release_nstart(o);
  coap_timer_cancel(ex->timers, &o->timer);
}

static void out_timer_fired(coap_timer_t *t, uint64_t now, void *user) {
  coap_exch_out_t *o = user;
  coap_exch_t *ex = o->ex;
  if (now > ex->now) ex->now = now;
  coap_exch_peer_t *peer = o->peer;
  if (o->type == COAP_TYPE_CON && !o->acked && o->retransmits < ex->p.max_retransmit) {
    o->retransmits++;
    o->timeout_ms *= 2;
    ex->stats.retransmissions++;
    coap_timer_arm(ex->timers, &o->timer, now + o->timeout_ms);
    transmit(ex, peer, o->bytes, o->len); /* last: |o| may end inside */
    return;
  }
  ex->stats.timeouts++;
  coap_logf(ex->log, COAP_LOG_DEBUG, name_of(ex, peer), "mid 0x%04x: %s", o->mid,
            o->acked || o->type == COAP_TYPE_NON ? "no response in time"
                                                 : "no ACK after all retransmissions");
  out_finish(ex, o, COAP_E_TIMEOUT, now, 1);
  pump_queue(ex, peer, now);
}

static void pump_queue(coap_exch_t *ex, coap_exch_peer_t *peer, uint64_t now) {
  while (peer->queue_head && peer->cons_in_flight < ex->p.nstart) {
    coap_exch_out_t *o = peer->queue_head;
    peer->queue_head = o->next;
    if (!peer->queue_head) peer->queue_tail = NULL;
    o->queued = 0;
    out_link(&peer->out_head, o);
    o->in_flight = 1;
    peer->cons_in_flight++;
    /* Claimed before it goes out: an answer inside the send may release
     * |o|, and a request sent meanwhile may get the same record. */
    int own = o == ex->starting;
    if (own) ex->starting = NULL;
    if (start_con(ex, o, now) < 0) {
      if (own) ex->starting_failed = 1;
      out_finish(ex, o, COAP_E_NOMEM, now, !own);
    }
  }
}

static int token_in_use(const coap_exch_peer_t *peer, const uint8_t *token, size_t len) {
  for (int pass = 0; pass < 2; pass++)
    for (const coap_exch_out_t *o = pass ? peer->queue_head : peer->out_head; o; o = o->next)
      if (!o->is_response && o->token_len == len && memcmp(o->token, token, len) == 0) return 1;
  return 0;
}

static void choose_token(coap_exch_t *ex, coap_exch_peer_t *peer, coap_msg_t *req) {
  uint8_t len = ex->p.token_len >= 1 && ex->p.token_len <= 8 ? ex->p.token_len : 4;
  do {
    ex->rand(ex->rand_user, req->token, len);
  } while (token_in_use(peer, req->token, len));
  req->token_len = len;
}

/* What a request or notification sent by us is known by: its peer, the
 * caller's pointer, MID, type and token (matching ACKs, RSTs, answers). */
static void out_identify(coap_exch_out_t *o, coap_exch_peer_t *peer, void *user, uint16_t mid,
                         uint8_t type, const uint8_t *token, uint8_t token_len) {
  o->peer = peer;
  o->user = user;
  o->mid = mid;
  o->type = type;
  o->token_len = token_len;
  memcpy(o->token, token, token_len);
}

int coap_exch_request(coap_exch_t *ex, coap_exch_peer_t *peer, coap_msg_t *req, void *user,
                      coap_exch_out_t **out, uint64_t now) {
  COAPS_INVARIANT(ex && peer && req);
  if (req->type != COAP_TYPE_CON && req->type != COAP_TYPE_NON) return COAP_E_INVALID_ARG;
  if (now > ex->now) ex->now = now;
  if (req->token_len == 0) choose_token(ex, peer, req);
  req->mid = peer->next_mid++;
  size_t len = coap_msg_encoded_size(req);
  coap_exch_out_t *o = out_alloc(ex, len);
  if (!o) return COAP_E_NOMEM;
  int n = coap_msg_encode(req, o->bytes, o->cap);
  if (n < 0) {
    out_release(ex, o);
    return n;
  }
  o->len = (size_t)n;
  out_identify(o, peer, user, req->mid, req->type, req->token, req->token_len);
  ex->stats.requests_out++;
  if (out) *out = o;
  if (req->type == COAP_TYPE_NON) {
    /* Its timer is all that ends it when no answer comes: without one
     * (no memory for the timer heap), it is not sent. */
    if (coap_timer_arm(ex->timers, &o->timer, now + ex->p.response_timeout_ms) < 0) {
      if (out) *out = NULL;
      ex->stats.requests_out--;
      out_release(ex, o);
      return COAP_E_NOMEM;
    }
    out_link(&peer->out_head, o);
    check_exch(ex, peer);
    transmit(ex, peer, o->bytes, o->len); /* last: |o| may end inside */
    return 0;
  }
  o->queued = 1;
  o->next = NULL;
  if (peer->queue_tail)
    peer->queue_tail->next = o;
  else
    peer->queue_head = o;
  peer->queue_tail = o;
  /* A request sent inside another's send (its answer came at once, and
   * the callback sent again) nests: the outer call's flags come back. */
  coap_exch_out_t *outer = ex->starting;
  int outer_failed = ex->starting_failed;
  ex->starting = o;
  ex->starting_failed = 0;
  pump_queue(ex, peer, now);
  int failed = ex->starting_failed;
  ex->starting = outer;
  ex->starting_failed = outer_failed;
  check_exch(ex, peer);
  if (failed) {
    if (out) *out = NULL; /* finished by pump_queue */
    return COAP_E_NOMEM;
  }
  return 0;
}

void *coap_exch_out_user(const coap_exch_out_t *out) {
  return out->user;
}
coap_exch_peer_t *coap_exch_out_peer(const coap_exch_out_t *out) {
  return out->peer;
}

const uint8_t *coap_exch_out_bytes(const coap_exch_out_t *out, size_t *len) {
  *len = out->len;
  return out->bytes;
}

int coap_exch_out_acked(const coap_exch_out_t *out) {
  return out->acked;
}

void coap_exch_cancel(coap_exch_t *ex, coap_exch_out_t *out) {
  if (!out) return;
  COAPS_INVARIANT(out->peer && out->ex == ex); /* not cancelled or finished before */
  coap_exch_peer_t *peer = out->peer;
  out_finish(ex, out, COAP_E_CANCELLED, ex->now, 0);
  pump_queue(ex, peer, ex->now);
  check_exch(ex, peer);
}

/* ---- incoming requests and our answers ---- */

static void in_unlink(coap_exch_peer_t *peer, coap_exch_in_t *in) {
  if (in->prev)
    in->prev->next = in->next;
  else
    peer->in_head = in->next;
  if (in->next) in->next->prev = in->prev;
}

static void in_finish(coap_exch_t *ex, coap_exch_in_t *in) {
  coap_exch_peer_t *peer = in->peer;
  in_unlink(peer, in);
  if (in->dedup && in->dedup->in == in) in->dedup->in = NULL;
  in_release(ex, in);
  check_exch(ex, peer);
}

/* Send the empty ACK of a separate response and keep it for duplicates. */
static void in_send_empty_ack(coap_exch_t *ex, coap_exch_in_t *in) {
  uint8_t buf[4];
  empty_message(buf, COAP_TYPE_ACK, in->mid);
  in->ack_sent = 1;
  coap_exch_dedup_t *d = in->dedup;
  if (d) {
    dedup_store(d, buf, sizeof buf);
    d->state = DEDUP_PENDING; /* still ours to answer */
    d->in = in;
  }
  transmit(ex, in->peer, buf, sizeof buf);
}

static void in_separate_fired(coap_timer_t *t, uint64_t now, void *user) {
  coap_exch_in_t *in = user;
  if (!in->ack_sent) in_send_empty_ack(in->ex, in);
}

int coap_exch_respond(coap_exch_t *ex, coap_exch_in_t *in, coap_msg_t *resp, uint64_t now) {
  COAPS_INVARIANT(in && resp && in->peer && in->ex == ex); /* answered once */
  coap_exch_peer_t *peer = in->peer;
  coap_msg_set_token(resp, in->token, in->token_len);
  int piggyback = in->type == COAP_TYPE_CON && !in->ack_sent;
  if (piggyback) {
    resp->type = COAP_TYPE_ACK;
    resp->mid = in->mid;
  } else {
    if (resp->type != COAP_TYPE_NON && resp->type != COAP_TYPE_CON)
      resp->type = in->type == COAP_TYPE_NON ? COAP_TYPE_NON : COAP_TYPE_CON;
    resp->mid = peer->next_mid++;
  }
  int n = coap_msg_encode(resp, ex->scratch, SCRATCH_SIZE);
  if (n < 0) {
    /* Too large to send: answer 5.00 so the client is not left waiting. */
    coap_msg_init(resp, (coap_type_t)resp->type, COAP_INTERNAL_SERVER_ERROR, resp->mid);
    coap_msg_set_token(resp, in->token, in->token_len);
    n = coap_msg_encode(resp, ex->scratch, SCRATCH_SIZE);
    if (n < 0) {
      in_finish(ex, in);
      return n;
    }
  }
  ex->stats.responses_by_class[(resp->code >> 5) & 7]++;
  if (piggyback || resp->type == COAP_TYPE_NON) {
    if (piggyback || in->type == COAP_TYPE_NON) dedup_store(in->dedup, ex->scratch, (size_t)n);
    transmit(ex, peer, ex->scratch, (size_t)n);
    in_finish(ex, in);
    return 0;
  }
  /* Separate CON response: retransmitted until the client ACKs it; a
   * duplicate request still gets the empty ACK kept in the dedup entry. */
  if (in->dedup) in->dedup->state = DEDUP_REPLIED;
  coap_exch_out_t *o = out_alloc(ex, (size_t)n);
  if (!o) {
    in_finish(ex, in);
    return COAP_E_NOMEM;
  }
  memcpy(o->bytes, ex->scratch, (size_t)n);
  o->len = (size_t)n;
  o->peer = peer;
  o->mid = resp->mid;
  o->type = COAP_TYPE_CON;
  o->is_response = 1;
  out_link(&peer->out_head, o);
  in_finish(ex, in);
  if (start_con(ex, o, now) < 0) {
    out_finish(ex, o, COAP_E_NOMEM, now, 0);
    return COAP_E_NOMEM;
  }
  return 0;
}

/* Header and token, then |rest|, into |buf| (|cap| bytes). Returns the
 * length or COAP_E_BUFFER_TOO_SMALL. */
static int write_notification(uint8_t *buf, size_t cap, uint8_t type, uint8_t code, uint16_t mid,
                              const uint8_t *token, uint8_t token_len, const uint8_t *rest,
                              size_t rest_len) {
  size_t n = COAP_HEADER_LEN + token_len + rest_len;
  if (n > cap) return COAP_E_BUFFER_TOO_SMALL;
  buf[0] = (uint8_t)(COAP_VERSION << 6 | type << 4 | token_len);
  buf[1] = code;
  buf[2] = (uint8_t)(mid >> 8);
  buf[3] = (uint8_t)mid;
  memcpy(buf + COAP_HEADER_LEN, token, token_len);
  if (rest_len) memcpy(buf + COAP_HEADER_LEN + token_len, rest, rest_len);
  return (int)n;
}

int coap_exch_notify(coap_exch_t *ex, coap_exch_peer_t *peer, uint8_t type, uint8_t code,
                     const uint8_t *token, uint8_t token_len, const uint8_t *rest, size_t rest_len,
                     void *user, coap_exch_out_t **out, uint16_t *mid, uint64_t now) {
  COAPS_INVARIANT(ex && peer && (token || !token_len) && (rest || !rest_len));
  if ((type != COAP_TYPE_CON && type != COAP_TYPE_NON) || token_len > COAP_MAX_TOKEN_LEN)
    return COAP_E_INVALID_ARG;
  if (now > ex->now) ex->now = now;
  if (out) *out = NULL;
  uint16_t m = peer->next_mid++;
  if (mid) *mid = m;
  if (type == COAP_TYPE_NON) {
    int n = write_notification(ex->scratch, SCRATCH_SIZE, type, code, m, token, token_len, rest,
                               rest_len);
    if (n < 0) return n;
    transmit(ex, peer, ex->scratch, (size_t)n);
    return 0;
  }
  coap_exch_out_t *o = out_alloc(ex, COAP_HEADER_LEN + token_len + rest_len);
  if (!o) return COAP_E_NOMEM;
  int n = write_notification(o->bytes, o->cap, type, code, m, token, token_len, rest, rest_len);
  if (n < 0) {
    out_release(ex, o);
    return n;
  }
  o->len = (size_t)n;
  out_identify(o, peer, user, m, COAP_TYPE_CON, token, token_len);
  o->is_response = 1;
  o->is_notification = 1;
  out_link(&peer->out_head, o);
  if (out) *out = o;
  check_exch(ex, peer);
  if (start_con(ex, o, now) < 0) { /* (an answer comes only after a send) */
    out_finish(ex, o, COAP_E_NOMEM, now, 0);
    if (out) *out = NULL;
    return COAP_E_NOMEM;
  }
  return 0; /* |o| may have ended inside start_con */
}

int coap_exch_notify_retransmitting(const coap_exch_out_t *o) {
  return o && o->is_notification && !o->acked && o->retransmits > 0;
}

int coap_exch_notify_replace(coap_exch_t *ex, coap_exch_out_t *o, uint8_t code, const uint8_t *rest,
                             size_t rest_len, uint16_t *mid) {
  if (!o || !o->is_notification || o->acked) return COAP_E_INVALID_ARG;
  if (!coap_exch_notify_retransmitting(o)) return 0;
  size_t need = COAP_HEADER_LEN + o->token_len + rest_len;
  if (need > o->cap) {
    uint8_t *b = realloc(o->bytes, need);
    if (!b) return COAP_E_NOMEM;
    o->bytes = b;
    o->cap = need;
  }
  uint16_t m = o->peer->next_mid++;
  int n = write_notification(o->bytes, o->cap, COAP_TYPE_CON, code, m, o->token, o->token_len, rest,
                             rest_len);
  if (n < 0) return n;
  o->len = (size_t)n;
  o->mid = m;
  if (mid) *mid = m;
  return 1;
}

void coap_exch_drop(coap_exch_t *ex, coap_exch_in_t *in) {
  COAPS_INVARIANT(in && in->peer && in->ex == ex); /* answered once */
  /* A CON is still acknowledged so the client stops retransmitting. */
  if (in->type == COAP_TYPE_CON && !in->ack_sent) in_send_empty_ack(ex, in);
  if (in->dedup) in->dedup->state = DEDUP_REPLIED;
  in_finish(ex, in);
}

coap_exch_peer_t *coap_exch_in_peer(const coap_exch_in_t *in) {
  return in->peer;
}
void coap_exch_in_set_user(coap_exch_in_t *in, void *user) {
  in->user = user;
}
void *coap_exch_in_user(const coap_exch_in_t *in) {
  return in->user;
}

/* ---- receiving ---- */

static coap_exch_out_t *find_by_mid(coap_exch_peer_t *peer, uint16_t mid) {
  for (coap_exch_out_t *o = peer->out_head; o; o = o->next)
    if (o->mid == mid && o->type == COAP_TYPE_CON && !o->acked) return o;
  return NULL;
}

static coap_exch_out_t *find_by_token(coap_exch_peer_t *peer, const coap_msg_t *msg) {
  for (coap_exch_out_t *o = peer->out_head; o; o = o->next)
    if (!o->is_response && o->token_len == msg->token_len &&
        memcmp(o->token, msg->token, msg->token_len) == 0)
      return o;
  return NULL;
}

static void handle_request(coap_exch_t *ex, coap_exch_peer_t *peer, const coap_msg_t *msg,
                           uint64_t now) {
  coap_exch_dedup_t *d = dedup_find(peer, msg->mid, now);
  if (d) {
    ex->stats.rx_duplicates++;
    if (msg->type == COAP_TYPE_NON) return;
    if (d->reply_len)
      transmit(ex, peer, d->reply, d->reply_len);
    else if (d->in && !d->in->ack_sent)
      in_send_empty_ack(ex, d->in); /* the handler is slow: stop retransmissions */
    return;
  }
  coap_exch_in_t *in = in_alloc(ex);
  d = dedup_add(ex, peer, msg->mid, msg->type, now);
  if (!in || !d) {
    if (in) in_release(ex, in);
    return; /* out of memory: the client retransmits */
  }
  in->peer = peer;
  in->dedup = d;
  in->mid = msg->mid;
  in->type = msg->type;
  in->token_len = msg->token_len;
  memcpy(in->token, msg->token, msg->token_len);
  d->in = in;
  in->next = peer->in_head;
  if (in->next) in->next->prev = in;
  peer->in_head = in;
  ex->stats.requests_in++;
  ex->cb.on_request(ex->user, peer, in, msg, now);
  /* Still unanswered: it is a separate response; ACK a CON soon. */
  if (d->in == in && in->type == COAP_TYPE_CON && !in->ack_sent)
    coap_timer_arm(ex->timers, &in->separate_timer, now + ex->p.separate_delay_ms);
  check_exch(ex, peer);
}

/* Hand a response to the requester; it may keep listening (Observe). */
static void deliver(coap_exch_t *ex, coap_exch_out_t *o, const coap_msg_t *msg, uint64_t now) {
  coap_exch_peer_t *peer = o->peer;
  if (o->type == COAP_TYPE_CON && !o->acked) out_acked(ex, o, now);
  coap_timer_cancel(ex->timers, &o->timer);
  if (coap_msg_unknown_critical(msg, NULL, 0)) {
    coap_logf(ex->log, COAP_LOG_INFO, name_of(ex, peer),
              "response with an unrecognized critical option rejected");
    out_finish(ex, o, COAP_E_BAD_RESPONSE, now, 1);
  } else if (ex->cb.on_response(ex->user, o, msg, 0, now) == 0) {
    out_finish(ex, o, 0, now, 0);
  }
  pump_queue(ex, peer, now);
}

static void handle_empty(coap_exch_t *ex, coap_exch_peer_t *peer, const coap_msg_t *msg,
                         uint64_t now) {
  if (msg->type == COAP_TYPE_CON) { /* a ping: answer RST (§4.3) */
    send_empty(ex, peer, COAP_TYPE_RST, msg->mid);
    return;
  }
  if (msg->type == COAP_TYPE_NON) return;
  coap_exch_out_t *o = find_by_mid(peer, msg->mid);
  if (!o) {
    ex->stats.rx_unmatched++;
    if (msg->type == COAP_TYPE_RST) {
      ex->stats.resets_received++;
      /* Perhaps the answer to a NON notification, which keeps no state
       * here: the upper layer matches its message ID. */
      if (ex->cb.on_reset) ex->cb.on_reset(ex->user, peer, msg->mid, now);
    }
    return;
  }
  peer->matched++;
  if (msg->type == COAP_TYPE_RST) {
    ex->stats.resets_received++;
    out_finish(ex, o, COAP_E_RESET, now, 1);
  } else if (o->is_response) {
    out_finish(ex, o, 0, now, o->is_notification);
  } else {
    out_acked(ex, o, now); /* the response comes separately */
    coap_timer_arm(ex->timers, &o->timer, now + ex->p.response_timeout_ms);
  }
  pump_queue(ex, peer, now);
}

/* A 16-bit fingerprint of a response datagram, never 0. A duplicate is
 * the same datagram again; a peer that gives another response a message
 * ID it used a moment before (libcoap 4.3.5 does, inside Q-Block bursts)
 * sends other bytes, and dropping that one as a duplicate would lose it. */
static uint16_t response_print(const uint8_t *data, size_t len) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (size_t i = 0; i < len; i++) h = (h ^ data[i]) * 16777619u;
  uint16_t folded = (uint16_t)(h ^ h >> 16);
  return folded ? folded : 1;
}

static void handle_response(coap_exch_t *ex, coap_exch_peer_t *peer, const coap_msg_t *msg,
                            const uint8_t *data, size_t len, uint64_t now) {
  if (msg->type == COAP_TYPE_RST) return;
  if (msg->type == COAP_TYPE_ACK) {
    coap_exch_out_t *o = find_by_mid(peer, msg->mid);
    if (!o || o->is_response || o->token_len != msg->token_len ||
        memcmp(o->token, msg->token, msg->token_len) != 0) {
      ex->stats.rx_unmatched++;
      return;
    }
    peer->matched++;
    deliver(ex, o, msg, now);
    return;
  }
  /* CON or NON: a separate response or a notification. */
  uint16_t print = response_print(data, len);
  coap_exch_dedup_t *d = dedup_find_response(peer, msg->mid, print, now);
  if (d) {
    ex->stats.rx_duplicates++;
    if (msg->type == COAP_TYPE_CON && d->reply_len) transmit(ex, peer, d->reply, d->reply_len);
    return;
  }
  coap_exch_out_t *o = find_by_token(peer, msg);
  if (!o) {
    /* No request of ours has this token: RST, for a NON as well (RFC
     * 7641 §3.6: that is how a client that forgot an observation ends
     * it, whatever the type of the next notification). */
    ex->stats.rx_unmatched++;
    send_empty(ex, peer, COAP_TYPE_RST, msg->mid);
    return;
  }
  peer->matched++;
  d = dedup_add(ex, peer, msg->mid, msg->type, now);
  if (d) d->print = print;
  if (msg->type == COAP_TYPE_CON) {
    uint8_t buf[4];
    int reject = coap_msg_unknown_critical(msg, NULL, 0) != NULL;
    empty_message(buf, reject ? COAP_TYPE_RST : COAP_TYPE_ACK, msg->mid);
    if (reject) ex->stats.resets_sent++;
    dedup_store(d, buf, sizeof buf);
    transmit(ex, peer, buf, sizeof buf);
  } else if (d) {
    d->state = DEDUP_REPLIED;
  }
  deliver(ex, o, msg, now);
}

int coap_exch_receive(coap_exch_t *ex, coap_exch_peer_t *peer, const uint8_t *data, size_t len,
                      uint64_t now) {
  COAPS_INVARIANT(ex && peer && (data || !len));
  if (now > ex->now) ex->now = now;
  coap_msg_t msg;
  int rc = coap_msg_parse(&msg, data, len);
  if (rc < 0) {
    ex->stats.rx_malformed++;
    coap_logf(ex->log, COAP_LOG_DEBUG, name_of(ex, peer), "malformed message: %s",
              coap_strerror(rc));
    /* §4.2: a CON we cannot process is rejected with RST; the rest are
     * dropped silently. A wrong version is ignored whatever its type. */
    if (len >= COAP_HEADER_LEN && rc != COAP_E_BAD_VERSION && msg.type == COAP_TYPE_CON)
      send_empty(ex, peer, COAP_TYPE_RST, msg.mid);
    return rc;
  }
  if (ex->cb.on_trace) ex->cb.on_trace(ex->user, peer, 0, &msg);
  unsigned cls = COAP_CODE_CLASS(msg.code);
  if (msg.code == COAP_CODE_EMPTY)
    handle_empty(ex, peer, &msg, now);
  else if (cls == 0)
    msg.type == COAP_TYPE_CON || msg.type == COAP_TYPE_NON ? handle_request(ex, peer, &msg, now)
                                                           : (void)ex->stats.rx_unmatched++;
  else
    handle_response(ex, peer, &msg, data, len, now);
  return 0;
}

/* ---- tear-down ---- */

void coap_exch_peer_fail(coap_exch_t *ex, coap_exch_peer_t *peer, int err, uint64_t now) {
  coap_exch_out_t *o;
  while ((o = peer->queue_head)) out_finish(ex, o, err, now, 1);
  while ((o = peer->out_head)) out_finish(ex, o, err, now, 1);
  peer->cons_in_flight = 0;
}

void coap_exch_peer_clear(coap_exch_t *ex, coap_exch_peer_t *peer, int err) {
  coap_exch_peer_fail(ex, peer, err ? err : COAP_E_CANCELLED, 0);
  while (peer->in_head) in_finish(ex, peer->in_head);
  dedup_free(peer);
  COAPS_INVARIANT_HOLDS(coap_exch_peer_broken(peer));
}
