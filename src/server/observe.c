/* Observe on the server (RFC 7641): the registry of observers and the
 * building of notifications. No I/O: a finished notification goes to the
 * context through coap_obs_ops_t.send, which hands it to the message
 * layer.
 *
 * Memory. An observer keeps only its identity (peer, DTLS session,
 * token), what congestion control needs (the CON in flight, NONs since
 * the last CON, the last NON message IDs for matching an RST) and a
 * pointer to its group: the registration request as encoded (no token,
 * no Observe, Block2 as block 0), shared by every observer of the
 * resource whose request has the same bytes. coap_observer_t is 80 bytes
 * on LP64, a 96-byte heap chunk, plus 8 bytes of hash bucket: 104 bytes
 * an observation when many share a group (the common case: one path, no
 * query; tests/sim/test_observe_server.c measures it with
 * coap_obs_table_t.bytes). A lone observer also pays for its group, 80
 * bytes for a short path, and 8 of group bucket.
 *
 * Cost of a notification. The handler runs once per group and the answer
 * is encoded once without a token; the message layer writes each
 * observer's header and token in front of those bytes. */
#include <stdlib.h>
#include <string.h>

#include "common/invariant.h"
#include "common/util.h"
#include "server/server.h"

/* Longest registration request kept (a FETCH body counts). */
#define OBS_MAX_REQUEST 2048
/* Max-Age of a notification when the handler sets none (RFC 7252 §5.10.5). */
#define OBS_DEFAULT_MAX_AGE 60
#define OBS_SEQ_MASK 0xFFFFFFu

struct coap_obs_group {
  coap_obs_group_t *next, *prev; /* the resource's groups */
  coap_obs_group_t *hash_next;   /* in the table's group buckets */
  coap_resource_t *res;
  coap_observer_t *first; /* its observers */
  uint32_t hash;
  uint16_t len;
  uint8_t szx, proto; /* block size and protocol of its peers */
  uint8_t req[];      /* the request as encoded */
};

struct coap_observer {
  coap_observer_t *next, *prev; /* in the group */
  coap_observer_t *hash_next;   /* in the table's bucket (by peer) */
  coap_obs_group_t *group;
  const void *peer_key, *session_key;
  void *con;           /* the CON notification in flight */
  uint32_t last_con_s; /* when the last CON went out, in s */
  uint16_t nons;       /* NONs sent since */
  uint16_t mids[2];    /* the last two NONs' message IDs */
  uint8_t n_mids;
  uint8_t pending : 1; /* a newer state waits for the CON's ACK */
  uint8_t token_len : 4;
  uint8_t token[COAP_MAX_TOKEN_LEN];
};

static void check_sampled(coap_server_t *s);

/* What a heap block of |n| bytes costs with glibc (header, 16-byte
 * alignment, 32 at least): the figure the memory test checks. */
static size_t chunk(size_t n) {
  size_t c = (n + 8 + 15) & ~(size_t)15;
  return c < 32 ? 32 : c;
}

static uint32_t hash_bytes(const uint8_t *p, size_t n, uint32_t h) {
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u; /* FNV-1a */
  return h;
}

static size_t bucket_of(const coap_obs_table_t *t, const void *peer_key) {
  return (size_t)(coap_mix64((uint64_t)(uintptr_t)peer_key) & (t->n_buckets - 1));
}

void coap_observe_set_ops(coap_server_t *s, const coap_obs_ops_t *ops, void *user,
                          coap_context_t *ctx) {
  s->obs.ops = ops;
  s->obs.user = user;
  s->obs.ctx = ctx;
}

static uint64_t now_ms(const coap_server_t *s) {
  return s->obs.ops && s->obs.ops->now ? s->obs.ops->now(s->obs.user) : 0;
}

/* ---- the table ---- */

static int table_grow(coap_obs_table_t *t) {
  size_t n = t->n_buckets ? t->n_buckets * 2 : 64;
  coap_observer_t **b = calloc(n, sizeof(*b));
  if (!b) return t->n_buckets ? 0 : COAP_E_NOMEM; /* longer chains will do */
  coap_observer_t **old = t->buckets;
  size_t n_old = t->n_buckets;
  t->buckets = b;
  t->n_buckets = n;
  for (size_t i = 0; i < n_old; i++) {
    coap_observer_t *o = old[i];
    while (o) {
      coap_observer_t *next = o->hash_next;
      size_t k = bucket_of(t, o->peer_key);
      o->hash_next = b[k];
      b[k] = o;
      o = next;
    }
  }
  free(old);
  t->bytes += n * sizeof(*b) - n_old * sizeof(*b);
  return 0;
}

static coap_observer_t *find_observer(const coap_obs_table_t *t, const void *peer_key,
                                      const void *session_key, const uint8_t *token,
                                      size_t token_len) {
  if (!t->count) return NULL;
  for (coap_observer_t *o = t->buckets[bucket_of(t, peer_key)]; o; o = o->hash_next)
    if (o->peer_key == peer_key && o->session_key == session_key && o->token_len == token_len &&
        memcmp(o->token, token, token_len) == 0)
      return o;
  return NULL;
}

static size_t count_for_peer(const coap_obs_table_t *t, const void *peer_key,
                             const void *session_key) {
  size_t n = 0;
  if (!t->count) return 0;
  for (coap_observer_t *o = t->buckets[bucket_of(t, peer_key)]; o; o = o->hash_next)
    n += o->peer_key == peer_key && o->session_key == session_key;
  return n;
}

/* Groups are found by (resource, request bytes) in a table of their
 * own, so that a registration costs the same however many different
 * requests (queries, Accept values) a resource is observed with. */
static size_t group_bucket(const coap_obs_table_t *t, const coap_resource_t *r, uint32_t h) {
  uint64_t k = (uint64_t)(uintptr_t)r ^ ((uint64_t)h << 17) ^ h;
  k ^= k >> 31;
  k *= 0x9E3779B97F4A7C15ull;
  k ^= k >> 29;
  return (size_t)(k & (t->n_gbuckets - 1));
}

static void group_table_grow(coap_obs_table_t *t) {
  size_t n = t->n_gbuckets ? t->n_gbuckets * 2 : 16;
  coap_obs_group_t **b = calloc(n, sizeof(*b));
  if (!b) return; /* longer chains will do */
  coap_obs_group_t **old = t->gbuckets;
  size_t n_old = t->n_gbuckets;
  t->gbuckets = b;
  t->n_gbuckets = n;
  for (size_t i = 0; i < n_old; i++) {
    for (coap_obs_group_t *g = old[i], *next; g; g = next) {
      next = g->hash_next;
      size_t k = group_bucket(t, g->res, g->hash);
      g->hash_next = b[k];
      b[k] = g;
    }
  }
  free(old);
  t->bytes += (n - n_old) * sizeof(*b);
}

static void group_free(coap_server_t *s, coap_obs_group_t *g) {
  coap_obs_table_t *t = &s->obs;
  coap_obs_res_t *ro = coap_resource_obs(g->res);
  if (g->prev)
    g->prev->next = g->next;
  else
    ro->groups = g->next;
  if (g->next) g->next->prev = g->prev;
  coap_obs_group_t **link = &t->gbuckets[group_bucket(t, g->res, g->hash)];
  while (*link != g) link = &(*link)->hash_next;
  *link = g->hash_next;
  t->n_groups--;
  t->bytes -= chunk(sizeof(*g) + g->len);
  free(g);
}

static void group_unlink_observer(coap_server_t *s, coap_observer_t *o) {
  coap_obs_group_t *g = o->group;
  coap_obs_res_t *ro = coap_resource_obs(g->res);
  if (o->prev)
    o->prev->next = o->next;
  else
    g->first = o->next;
  if (o->next) o->next->prev = o->prev;
  ro->count--;
  o->group = NULL;
  if (!g->first) group_free(s, g);
}

static void group_link_observer(coap_obs_group_t *g, coap_observer_t *o) {
  o->group = g;
  o->prev = NULL;
  o->next = g->first;
  if (g->first) g->first->prev = o;
  g->first = o;
  coap_resource_obs(g->res)->count++;
}

/* Forget |o|; |counted|: it ends for a reason observers_removed counts.
 * |cancel|: a CON in flight is cancelled at the message layer (not at
 * tear-down, when that layer may be gone). */
static void observer_free(coap_server_t *s, coap_observer_t *o, int counted, int cancel) {
  coap_obs_table_t *t = &s->obs;
  if (o->con && cancel && t->ops && t->ops->cancel) t->ops->cancel(t->user, o->con);
  o->con = NULL;
  group_unlink_observer(s, o);
  coap_observer_t **link = &t->buckets[bucket_of(t, o->peer_key)];
  while (*link != o) link = &(*link)->hash_next;
  *link = o->hash_next;
  t->count--;
  t->bytes -= chunk(sizeof(*o));
  if (counted) t->removed++;
  free(o);
}

/* ---- groups: the stored registration ---- */

/* Keep from the registration what the handler reads: everything but the
 * Observe option, with a Block2 block number of 0 (its size stays: the
 * client asked for blocks that small). Encoded without token and with
 * message ID 0, so that equal requests have equal bytes. Returns the
 * length, or -1 when it is too long to keep. */
static int encode_request(const coap_msg_t *req, uint8_t *buf, size_t cap) {
  coap_msg_t m = *req;
  m.type = COAP_TYPE_CON;
  m.mid = 0;
  m.token_len = 0;
  coap_msg_remove_option(&m, COAP_OPTION_OBSERVE);
  const coap_option_t *b2 = coap_msg_find_option(req, COAP_OPTION_BLOCK2);
  coap_block_t b;
  if (b2 && coap_block_decode(b2, &b) == 0) {
    coap_msg_remove_option(&m, COAP_OPTION_BLOCK2);
    coap_block_t first = {0, 0, b.szx};
    coap_msg_add_block(&m, COAP_OPTION_BLOCK2, &first);
  }
  if (coap_msg_encoded_size(&m) > cap) return -1;
  int n = coap_msg_encode(&m, buf, cap);
  return n < 0 ? -1 : n;
}

static coap_obs_group_t *group_for(coap_server_t *s, coap_resource_t *r, const uint8_t *req,
                                   size_t len, uint8_t szx, uint8_t proto) {
  coap_obs_table_t *t = &s->obs;
  coap_obs_res_t *ro = coap_resource_obs(r);
  uint32_t h = hash_bytes(req, len, 2166136261u ^ szx ^ (uint32_t)proto << 8);
  if (t->n_gbuckets) {
    for (coap_obs_group_t *g = t->gbuckets[group_bucket(t, r, h)]; g; g = g->hash_next)
      if (g->res == r && g->hash == h && g->len == len && g->szx == szx && g->proto == proto &&
          memcmp(g->req, req, len) == 0)
        return g;
  }
  if (t->n_groups >= t->n_gbuckets) group_table_grow(t);
  if (!t->n_gbuckets) return NULL;
  coap_obs_group_t *g = malloc(sizeof(*g) + len);
  if (!g) return NULL;
  g->res = r;
  g->first = NULL;
  g->hash = h;
  g->len = (uint16_t)len;
  g->szx = szx;
  g->proto = proto;
  memcpy(g->req, req, len);
  g->prev = NULL;
  g->next = ro->groups;
  if (g->next) g->next->prev = g;
  ro->groups = g;
  size_t k = group_bucket(t, r, h);
  g->hash_next = t->gbuckets[k];
  t->gbuckets[k] = g;
  t->n_groups++;
  t->bytes += chunk(sizeof(*g) + len);
  return g;
}

/* ---- building a notification ---- */

static uint32_t next_seq(coap_resource_t *r) {
  coap_obs_res_t *ro = coap_resource_obs(r);
  ro->seq = (ro->seq + 1) & OBS_SEQ_MASK;
  return ro->seq;
}

/* A success gets the Observe sequence number and a Max-Age. */
static void add_observe(coap_resource_t *r, coap_response_t *resp) {
  coap_response_add_uint(resp, COAP_OPTION_OBSERVE, next_seq(r));
  if (!coap_msg_find_option(&resp->msg, COAP_OPTION_MAX_AGE))
    coap_response_add_uint(resp, COAP_OPTION_MAX_AGE, OBS_DEFAULT_MAX_AGE);
}

typedef struct built {
  uint8_t code;
  const uint8_t *rest;
  size_t rest_len;
  int ends; /* no Observe in it: the observation ends with it */
} built_t;

/* Run the handler of |g|'s resource on the stored request (as if |who|
 * had asked) or, with |code|, make that error; shape the answer as any
 * (Block2 block 0 when large) and encode it without token into the
 * table's wire buffer. |observe|: a success carries Observe. Returns 0 or
 * a negative error. */
static int build(coap_server_t *s, coap_obs_group_t *g, const coap_observer_t *who, uint8_t code,
                 int observe, built_t *out) {
  coap_obs_table_t *t = &s->obs;
  if (!t->store && !(t->store = malloc(COAP_RESPONSE_STORE))) return COAP_E_NOMEM;
  coap_msg_t req;
  if (coap_msg_parse(&req, g->req, g->len) < 0) return COAP_E_INVALID_ARG;
  coap_response_t resp;
  coap_response_init(&resp, &req, t->store, COAP_RESPONSE_STORE);
  coap_response_set_limits(&resp, &t->big, s->cfg ? s->cfg->max_body : 0, g->szx);
  void *user = NULL;
  coap_handler_fn fn = code ? NULL : coap_resource_handler(g->res, req.code, &user);
  if (code) {
    coap_response_error(&resp, code, code == COAP_NOT_FOUND ? "resource removed" : "");
  } else if (!fn) {
    coap_response_error(&resp, COAP_METHOD_NOT_ALLOWED, "method not allowed here");
  } else {
    coap_request_t rq = {
        .ctx = t->ctx,
        .msg = &req,
        .peer = t->ops && t->ops->peer_addr ? t->ops->peer_addr(t->user, who->peer_key) : NULL,
        .proto = (coap_proto_t)g->proto,
        .peer_key = who->peer_key,
        .session_key = who->session_key,
        .now = now_ms(s),
        .is_notification = 1, /* no defer: coap_request_defer gets no hook */
    };
    t->building = 1; /* the store is in use until the answer is encoded */
    fn(t->ctx, g->res, &rq, &resp, user);
    t->building = 0;
  }
  int success = COAP_CODE_CLASS(resp.msg.code) == 2 && !resp.error;
  if (success && observe) add_observe(g->res, &resp);
  coap_response_finish(&resp);
  out->ends = !(observe && COAP_CODE_CLASS(resp.msg.code) == 2);
  resp.msg.type = COAP_TYPE_NON;
  resp.msg.mid = 0;
  resp.msg.token_len = 0;
  size_t need = coap_msg_encoded_size(&resp.msg);
  if (need > t->wire_cap) {
    uint8_t *w = realloc(t->wire, need);
    if (!w) return COAP_E_NOMEM;
    t->wire = w;
    t->wire_cap = need;
  }
  int n = coap_msg_encode(&resp.msg, t->wire, t->wire_cap);
  if (n < COAP_HEADER_LEN) return n < 0 ? n : COAP_E_INVALID_ARG;
  out->code = resp.msg.code;
  out->rest = t->wire + COAP_HEADER_LEN;
  out->rest_len = (size_t)n - COAP_HEADER_LEN;
  return 0;
}

/* CON every observe_con_every-th notification and at least every
 * observe_con_interval_s (RFC 7641 §4.5): an observer that is gone is
 * found out. */
static int wants_con(const coap_server_t *s, const coap_observer_t *o, uint32_t now_s) {
  uint32_t every = s->cfg && s->cfg->observe_con_every ? s->cfg->observe_con_every : 20;
  uint32_t interval =
      s->cfg && s->cfg->observe_con_interval_s ? s->cfg->observe_con_interval_s : 86400;
  return o->nons + 1u >= every || now_s - o->last_con_s >= interval;
}

/* Has an observation of |peer_key| a CON notification in flight? The
 * peer's observers share a bucket: at most max_observers_per_peer
 * entries to look at. */
static int peer_con_in_flight(const coap_obs_table_t *t, const void *peer_key) {
  if (!t->count) return 0; /* (a last message to a carried observer: maybe no buckets yet) */
  for (const coap_observer_t *o = t->buckets[bucket_of(t, peer_key)]; o; o = o->hash_next)
    if (o->peer_key == peer_key && o->con) return 1;
  return 0;
}

/* §4.5.1: one CON notification in flight per client. |o| may be sent a
 * notification now unless its own CON is in flight, or this one is due
 * as CON and another of its peer's is. Otherwise it waits (pending) for
 * that ACK, and then gets the newest state. */
static int may_send(const coap_server_t *s, const coap_observer_t *o, uint32_t now_s) {
  if (o->con) return 0;
  return !wants_con(s, o, now_s) || !peer_con_in_flight(&s->obs, o->peer_key);
}

/* Send |b| to |o|. A last message (|b->ends|) asks for no completion:
 * the observer is forgotten right after. The CON's handle is kept once
 * send returns: a transport that delivered the ACK from inside its send
 * would end it before (none does: the I/O shell batches, the simulated
 * network and the fuzzers queue). */
static int send_one(coap_server_t *s, coap_observer_t *o, const built_t *b) {
  coap_obs_table_t *t = &s->obs;
  if (!t->ops || !t->ops->send) return COAP_E_STATE;
  uint32_t now_s = (uint32_t)(now_ms(s) / 1000);
  int con = wants_con(s, o, now_s) && !peer_con_in_flight(t, o->peer_key);
  void *handle = NULL;
  uint16_t mid = 0;
  int rc = t->ops->send(t->user, o->peer_key, con, b->code, o->token, o->token_len, b->rest,
                        b->rest_len, b->ends ? NULL : o, b->ends ? NULL : &handle, &mid);
  if (rc < 0) return rc;
  t->sent++;
  if (con) {
    o->con = handle;
    o->nons = 0;
    o->last_con_s = now_s;
  } else {
    o->nons++;
    o->mids[1] = o->mids[0];
    o->mids[0] = mid;
    if (o->n_mids < 2) o->n_mids++;
  }
  return 0;
}

static int can_replace(const coap_server_t *s, const coap_observer_t *o) {
  const coap_obs_table_t *t = &s->obs;
  return o->con && t->ops && t->ops->retransmitting && t->ops->retransmitting(t->user, o->con);
}

/* |o|'s CON is in flight: if it is being retransmitted, the next
 * retransmission carries |b| instead (RFC 7641 §4.5.2), so a state lost
 * on the way is not waited for behind it. Returns 1 when done. */
static int replace_con(coap_server_t *s, coap_observer_t *o, const built_t *b) {
  coap_obs_table_t *t = &s->obs;
  uint16_t mid;
  if (b->ends || !t->ops || !t->ops->replace) return 0; /* an error goes after the ACK */
  if (t->ops->replace(t->user, o->con, b->code, b->rest, b->rest_len, &mid) != 1) return 0;
  t->sent++;
  return 1;
}

/* Build for |o| alone and send (a state that waited for a CON's ACK).
 * 1 when that state ended the observation: |o| is freed, and its group
 * too if |o| was its last observer. */
static int send_latest(coap_server_t *s, coap_observer_t *o) {
  built_t b;
  o->pending = 0;
  if (build(s, o->group, o, 0, 1, &b) < 0) return 0;
  send_one(s, o, &b);
  if (!b.ends) return 0;
  observer_free(s, o, 0, 1);
  return 1;
}

/* A CON of |peer_key| ended: the states that waited for it go, the
 * other observations of the peer first (so that one observation's CONs
 * cannot keep the rest waiting), |last| (may be NULL) after them. */
static void flush_peer(coap_server_t *s, const void *peer_key, coap_observer_t *last) {
  coap_obs_table_t *t = &s->obs;
  if (!t->count) return;
  uint32_t now_s = (uint32_t)(now_ms(s) / 1000);
  for (coap_observer_t *o = t->buckets[bucket_of(t, peer_key)], *next; o; o = next) {
    next = o->hash_next; /* |o| may go (an error answer ends it) */
    if (o != last && o->peer_key == peer_key && o->pending && may_send(s, o, now_s))
      send_latest(s, o);
  }
  if (last && last->pending && may_send(s, last, now_s)) send_latest(s, last);
}

int coap_observe_notify(coap_server_t *s, coap_resource_t *r) {
  coap_obs_res_t *ro = coap_resource_obs(r);
  /* From a handler building a notification: its answer would be built
   * over the one under way. */
  if (s->obs.building) return COAP_E_STATE;
  int notified = 0;
  coap_obs_group_t *g = ro->groups;
  while (g) {
    coap_obs_group_t *gnext = g->next; /* |g| goes when its last observer does */
    built_t b;
    int built = 0;
    uint32_t now_s = (uint32_t)(now_ms(s) / 1000);
    for (coap_observer_t *o = g->first, *onext; o; o = onext) {
      onext = o->next;
      int now_ok = may_send(s, o, now_s);
      if (!now_ok && !can_replace(s, o)) { /* the newest state waits for the ACK */
        o->pending = 1;
        continue;
      }
      if (!built) {
        if (build(s, g, o, 0, 1, &b) < 0) break;
        built = 1;
      }
      if (!now_ok) { /* its own CON is in flight */
        o->pending = !replace_con(s, o, &b);
        continue;
      }
      o->pending = 0;
      if (send_one(s, o, &b) == 0) notified++;
      if (b.ends) observer_free(s, o, 0, 1); /* a 4.xx/5.xx ends it (§3.2) */
    }
    g = gnext;
  }
  check_sampled(s);
  return notified;
}

void coap_observe_end_all(coap_server_t *s, coap_resource_t *r, uint8_t code) {
  coap_obs_res_t *ro = coap_resource_obs(r);
  while (ro->groups) {
    coap_obs_group_t *g = ro->groups;
    built_t b;
    int ok = g->first && build(s, g, g->first, code, 0, &b) == 0;
    while (ro->groups == g) { /* freeing its last observer frees |g| */
      coap_observer_t *o = g->first;
      if (o->con && s->obs.ops && s->obs.ops->cancel) s->obs.ops->cancel(s->obs.user, o->con);
      o->con = NULL;
      if (ok) send_one(s, o, &b);
      observer_free(s, o, 0, 0);
    }
  }
  check_sampled(s);
}

void coap_observe_con_done(coap_server_t *s, coap_observer_t *o, int err) {
  if (!o) return; /* a last notification: nobody waits for it */
  o->con = NULL;
  const void *peer_key = o->peer_key;
  if (err && err != COAP_E_TIMEOUT && err != COAP_E_RESET) {
    /* The peer's exchanges are torn down or it is unreachable (ICMP):
     * every observation of it ends, with nothing more sent. */
    coap_observe_peer_gone(s, peer_key); /* (checks) */
    return;
  }
  if (err) {
    /* No ACK after MAX_RETRANSMIT, or an RST: the client is gone or no
     * longer interested (§4.5, §3.6). */
    coap_logf(s->log, COAP_LOG_DEBUG, NULL, "observer removed: %s", coap_strerror(err));
    observer_free(s, o, 1, 0);
    o = NULL;
  }
  if (!s->obs.building) flush_peer(s, peer_key, o);
  check_sampled(s);
}

int coap_observe_reset(coap_server_t *s, const void *peer_key, uint16_t mid) {
  coap_obs_table_t *t = &s->obs;
  if (!t->count) return 0;
  for (coap_observer_t *o = t->buckets[bucket_of(t, peer_key)]; o; o = o->hash_next) {
    if (o->peer_key != peer_key) continue;
    if ((o->n_mids > 0 && o->mids[0] == mid) || (o->n_mids > 1 && o->mids[1] == mid)) {
      observer_free(s, o, 1, 1);
      check_sampled(s);
      return 1;
    }
  }
  return 0;
}

void coap_observe_peer_gone(coap_server_t *s, const void *peer_key) {
  coap_obs_table_t *t = &s->obs;
  if (!t->count) return;
  coap_observer_t *o = t->buckets[bucket_of(t, peer_key)];
  while (o) {
    coap_observer_t *next = o->hash_next;
    if (o->peer_key == peer_key) observer_free(s, o, 1, 1);
    o = next;
  }
  check_sampled(s);
}

int coap_observe_peer_busy(const coap_server_t *s, const void *peer_key) {
  const coap_obs_table_t *t = &s->obs;
  if (!t->count) return 0;
  for (const coap_observer_t *o = t->buckets[bucket_of(t, peer_key)]; o; o = o->hash_next)
    if (o->peer_key == peer_key) return 1;
  return 0;
}

void coap_observe_free_all(coap_server_t *s) {
  coap_obs_table_t *t = &s->obs;
  for (size_t i = 0; i < t->n_buckets; i++)
    while (t->buckets[i]) observer_free(s, t->buckets[i], 0, 0);
  free(t->buckets);
  free(t->gbuckets);
  free(t->store);
  free(t->big.data);
  free(t->wire);
  const coap_obs_ops_t *ops = t->ops;
  void *user = t->user;
  coap_context_t *ctx = t->ctx;
  memset(t, 0, sizeof(*t));
  t->ops = ops;
  t->user = user;
  t->ctx = ctx;
}

/* ---- invariants (common/invariant.h) ---- */

static size_t limit_total(const coap_server_t *s) {
  return s->cfg && s->cfg->max_observers ? s->cfg->max_observers : 100000;
}

static size_t limit_per_peer(const coap_server_t *s) {
  return s->cfg && s->cfg->max_observers_per_peer ? s->cfg->max_observers_per_peer : 64;
}

/* |o| against the observers after it in its bucket: no second observer
 * of its peer, session and token on its resource (the second would never
 * be found; the same token may observe another resource, see
 * coap_observe_request), and no more of its peer and session than
 * max_observers_per_peer. */
static const char *observer_key_broken(const coap_server_t *s, const coap_observer_t *o) {
  size_t same_peer = 1;
  for (const coap_observer_t *q = o->hash_next; q; q = q->hash_next) {
    if (q->peer_key != o->peer_key || q->session_key != o->session_key) continue;
    if (q->token_len == o->token_len && memcmp(q->token, o->token, o->token_len) == 0 && q->group &&
        o->group && q->group->res == o->group->res)
      return "observers: two of one peer, session and token on one resource";
    same_peer++;
  }
  return same_peer > limit_per_peer(s) ? "observers: a peer over max_observers_per_peer" : NULL;
}

/* |o| is linked into its group's list both ways. */
static const char *observer_links_broken(const coap_observer_t *o) {
  if (!o->group) return "observers: an observer in no group";
  if (o->prev ? o->prev->next != o : o->group->first != o)
    return "observers: an observer not where its group's list says";
  if (o->next && (o->next->prev != o || o->next->group != o->group))
    return "observers: next->prev is not the observer, or next is of another group";
  return NULL;
}

/* Every observer: counted, in its peer's bucket, keys unique, within
 * the limits, linked into its group. Adds their heap bytes to |*bytes|. */
static const char *observers_broken(const coap_server_t *s, size_t *bytes) {
  const coap_obs_table_t *t = &s->obs;
  size_t n = 0;
  for (size_t i = 0; i < t->n_buckets; i++)
    for (const coap_observer_t *o = t->buckets[i]; o; o = o->hash_next) {
      if (++n > t->count) return "observers: more in the buckets than count (or a loop)";
      if (bucket_of(t, o->peer_key) != i) return "observers: an observer in the wrong bucket";
      if (o->token_len > COAP_MAX_TOKEN_LEN || o->n_mids > 2)
        return "observers: a token or message-ID list longer than its room";
      const char *why = observer_links_broken(o);
      if (!why) why = observer_key_broken(s, o);
      if (why) return why;
      *bytes += chunk(sizeof(*o));
    }
  if (n != t->count) return "observers: fewer in the buckets than count";
  if (n > limit_total(s)) return "observers: more than max_observers";
  return NULL;
}

/* Every group: counted, in its bucket, its hash its request's, at least
 * one observer, each pointing back at it. Adds their bytes, and counts
 * their observers into |*members|. */
static const char *groups_broken(const coap_obs_table_t *t, size_t *bytes, size_t *members) {
  size_t n = 0;
  for (size_t i = 0; i < t->n_gbuckets; i++)
    for (const coap_obs_group_t *g = t->gbuckets[i]; g; g = g->hash_next) {
      if (++n > t->n_groups) return "observer groups: more in the buckets than n_groups";
      if (group_bucket(t, g->res, g->hash) != i)
        return "observer groups: a group in the wrong bucket";
      if (hash_bytes(g->req, g->len, 2166136261u ^ g->szx ^ (uint32_t)g->proto << 8) != g->hash)
        return "observer groups: a group's hash is not its request's";
      if (!g->first) return "observer groups: a group without observers";
      for (const coap_observer_t *o = g->first; o; o = o->next) {
        if (o->group != g) return "observer groups: an observer of another group in the list";
        if (++*members > t->count) return "observer groups: more members than observers";
      }
      *bytes += chunk(sizeof(*g) + g->len);
    }
  if (n != t->n_groups) return "observer groups: fewer in the buckets than n_groups";
  return NULL;
}

/* Each resource's groups are its own, listed both ways, and its count is
 * the observers in them; together they hold every group and observer. */
static const char *resources_broken(const coap_server_t *s) {
  size_t groups = 0, observers = 0;
  for (coap_resource_t *r = coap_server_resource_next(s, NULL); r;
       r = coap_server_resource_next(s, r)) {
    const coap_obs_res_t *ro = coap_resource_obs(r);
    size_t n = 0;
    for (const coap_obs_group_t *g = ro->groups; g; g = g->next) {
      if (g->res != r) return "observe: a resource lists a group of another resource";
      if (g->prev ? g->prev->next != g : ro->groups != g)
        return "observe: a group not where its resource's list says";
      if (++groups > s->obs.n_groups) return "observe: resources list more groups than n_groups";
      for (const coap_observer_t *o = g->first; o && n <= ro->count; o = o->next) n++;
    }
    if (n != ro->count) return "observe: a resource's count is not its observers";
    observers += n;
  }
  if (groups != s->obs.n_groups) return "observe: groups that no resource lists";
  if (observers != s->obs.count) return "observe: observers that no resource counts";
  return NULL;
}

const char *coap_obs_table_broken(const coap_server_t *s) {
  const coap_obs_table_t *t = &s->obs;
  if ((t->n_buckets & (t->n_buckets - 1)) || (t->n_gbuckets & (t->n_gbuckets - 1)))
    return "observers: a bucket count that is not a power of two";
  size_t bytes = (t->n_buckets + t->n_gbuckets) * sizeof(void *), members = 0;
  const char *why = observers_broken(s, &bytes);
  if (!why) why = groups_broken(t, &bytes, &members);
  if (!why && members != t->count) why = "observer groups: fewer members than observers";
  if (!why) why = resources_broken(s);
  if (!why && bytes != t->bytes) why = "observe: bytes is not what observers and groups hold";
  return why;
}

/* After a change: the whole registry now and then (invariant.h), at a
 * cost of about its size (observers, buckets, resources). */
static void check_sampled(coap_server_t *s) {
  coap_obs_table_t *t = &s->obs;
  if (coap_invariant_walk_due(&t->check_ops, t->count + t->n_buckets + t->n_gbuckets + s->count))
    COAPS_INVARIANT_HOLDS(coap_obs_table_broken(s));
}

/* ---- registration ---- */

/* Note a limit once (DESIGN: every limit is logged once). */
static int over_limit(coap_server_t *s, const coap_request_t *req) {
  coap_obs_table_t *t = &s->obs;
  size_t max = s->cfg && s->cfg->max_observers ? s->cfg->max_observers : 100000;
  size_t per_peer = s->cfg && s->cfg->max_observers_per_peer ? s->cfg->max_observers_per_peer : 64;
  if (t->count >= max) {
    if (!t->limit_logged)
      coap_logf(s->log, COAP_LOG_WARNING, NULL,
                "observer limit (%zu) reached: registrations are answered without "
                "Observe (raise max_observers)",
                max);
    t->limit_logged = 1;
    return 1;
  }
  if (count_for_peer(t, req->peer_key, req->session_key) >= per_peer) {
    if (!t->peer_limit_logged)
      coap_logf(s->log, COAP_LOG_WARNING, NULL,
                "a peer reached the observer limit per peer (%zu): its further "
                "registrations are answered without Observe (max_observers_per_peer)",
                per_peer);
    t->peer_limit_logged = 1;
    return 1;
  }
  return 0;
}

static coap_observer_t *observer_alloc(coap_server_t *s, const void *peer_key,
                                       const void *session_key, const uint8_t *token,
                                       size_t token_len) {
  coap_obs_table_t *t = &s->obs;
  if ((t->count >= t->n_buckets && table_grow(t) < 0) || !t->n_buckets) return NULL;
  coap_observer_t *o = calloc(1, sizeof(*o));
  if (!o) return NULL;
  o->peer_key = peer_key;
  o->session_key = session_key;
  o->token_len = token_len & 0xF;
  memcpy(o->token, token, o->token_len);
  size_t k = bucket_of(t, o->peer_key);
  o->hash_next = t->buckets[k];
  t->buckets[k] = o;
  t->count++;
  t->bytes += chunk(sizeof(*o));
  return o;
}

static coap_observer_t *observer_new(coap_server_t *s, const coap_request_t *req) {
  return observer_alloc(s, req->peer_key, req->session_key, req->msg->token, req->msg->token_len);
}

/* A registration (Observe=0) answered with success: the observer now, or
 * again with this request (the same token re-registers, §4.1). Returns 1
 * when the answer carries Observe. */
static int do_register(coap_server_t *s, coap_resource_t *r, const coap_request_t *req,
                       coap_response_t *resp, coap_observer_t *o) {
  uint8_t bytes[OBS_MAX_REQUEST];
  int n = encode_request(req->msg, bytes, sizeof bytes);
  if (n < 0) {
    coap_logf(s->log, COAP_LOG_INFO, NULL,
              "registration request over %d bytes: answered without Observe", OBS_MAX_REQUEST);
    if (o) observer_free(s, o, 0, 1);
    return 0;
  }
  if (!o && over_limit(s, req)) return 0;
  coap_obs_group_t *g = group_for(s, r, bytes, (size_t)n, resp->szx_max, (uint8_t)req->proto);
  if (!g) {
    if (o) observer_free(s, o, 0, 1);
    return 0;
  }
  if (!o && !(o = observer_new(s, req))) {
    if (!g->first) group_free(s, g); /* made for nothing */
    return 0;
  }
  if (o->group != g) {
    if (o->group) group_unlink_observer(s, o); /* may free the old group, never |g| */
    group_link_observer(g, o);
  }
  o->last_con_s = (uint32_t)(req->now / 1000);
  o->nons = 0;
  o->pending = 0;
  return 1;
}

static void observe_request(coap_server_t *s, coap_resource_t *r, const coap_request_t *req,
                            coap_response_t *resp) {
  const coap_msg_t *m = req->msg;
  if (req->is_notification || (m->code != COAP_GET && m->code != COAP_FETCH)) return;
  if (!coap_msg_find_option(m, COAP_OPTION_OBSERVE)) return;
  int64_t v = coap_msg_get_uint(m, COAP_OPTION_OBSERVE, -1);
  coap_observer_t *o =
      find_observer(&s->obs, req->peer_key, req->session_key, m->token, m->token_len);
  if (o && o->group->res != r) o = NULL; /* a token reused elsewhere: not this one */
  if (v != 0) {
    if (o && v == 1) observer_free(s, o, 0, 1); /* deregistration (§3.6) */
    return;
  }
  if (!coap_resource_obs(r)->observable) return;
  coap_block_t b2;
  const coap_option_t *b2o = coap_msg_find_option(m, COAP_OPTION_BLOCK2);
  if (b2o && coap_block_decode(b2o, &b2) == 0 && b2.num > 0) return; /* a later block */
  if (COAP_CODE_CLASS(resp->msg.code) != 2 || resp->error) {
    if (o) observer_free(s, o, 0, 1); /* an error is never a registration */
    return;
  }
  if (do_register(s, r, req, resp, o)) add_observe(r, resp);
}

void coap_observe_request(coap_server_t *s, coap_resource_t *r, const coap_request_t *req,
                          coap_response_t *resp) {
  observe_request(s, r, req, resp);
  check_sampled(s);
}

size_t coap_resource_observer_count(const coap_resource_t *res) {
  return res ? coap_resource_obs((coap_resource_t *)res)->count : 0;
}

int coap_resource_notify(coap_resource_t *res) {
  if (!res) return COAP_E_INVALID_ARG;
  return coap_observe_notify(coap_resource_server(res), res);
}

/* ---- relations carried across a restart ---- */

/* One relation as carried: token length (1) and token, flags (1), the
 * resource's last Observe value (3), NONs since the last CON (2), seconds
 * since the last CON (4), block size (1), the kept registration's length
 * (2) and bytes. */
#define REL_FIXED 14
#define REL_RESEND 0x01 /* the newest state may not have arrived */
/* The first Observe value of the new process is this far past the last
 * one carried: beyond any the old process gave out (it gave none after
 * the save: its keys were retired then), and far inside the 2^23 window
 * in which a client takes a larger value as newer (RFC 7641 §3.4). */
#define OBS_RESTART_SEQ_MARGIN 1024
/* The Observe values carried into one resource must lie this close
 * together for one next value to be newer than each of them. */
#define OBS_CARRIED_SPREAD 0x400000u

static void put_be(uint8_t *p, uint32_t v, int n) {
  for (int i = n - 1; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

static uint32_t get_be(const uint8_t *p, int n) {
  uint32_t v = 0;
  for (int i = 0; i < n; i++) v = v << 8 | p[i];
  return v;
}

size_t coap_observe_export_bound(const coap_server_t *s) {
  const coap_obs_table_t *t = &s->obs;
  size_t n = 0;
  for (size_t i = 0; i < t->n_buckets; i++)
    for (const coap_observer_t *o = t->buckets[i]; o; o = o->hash_next)
      n += REL_FIXED + o->token_len + o->group->len;
  return n;
}

static size_t write_relation(const coap_server_t *s, const coap_observer_t *o, uint32_t now_s,
                             uint8_t *p) {
  const coap_obs_group_t *g = o->group;
  uint8_t *start = p;
  *p++ = o->token_len;
  memcpy(p, o->token, o->token_len);
  p += o->token_len;
  *p++ = o->con || o->pending ? REL_RESEND : 0;
  put_be(p, coap_resource_obs(g->res)->seq & OBS_SEQ_MASK, 3), p += 3;
  put_be(p, o->nons, 2), p += 2;
  put_be(p, now_s >= o->last_con_s ? now_s - o->last_con_s : 0, 4), p += 4;
  *p++ = g->szx;
  put_be(p, g->len, 2), p += 2;
  memcpy(p, g->req, g->len);
  return (size_t)(p + g->len - start);
}

long coap_observe_export(const coap_server_t *s, const void *peer_key, const void *session_key,
                         uint8_t *out, size_t cap, size_t *n) {
  const coap_obs_table_t *t = &s->obs;
  size_t used = 2, count = 0;
  uint32_t now_s = (uint32_t)(now_ms(s) / 1000);
  if (cap < 2) return -1;
  for (const coap_observer_t *o = t->count ? t->buckets[bucket_of(t, peer_key)] : NULL;
       o && count < 0xFFFF; o = o->hash_next) {
    if (o->peer_key != peer_key || o->session_key != session_key) continue;
    if (cap - used < (size_t)REL_FIXED + o->token_len + o->group->len) return -1;
    used += write_relation(s, o, now_s, out + used);
    count++;
  }
  put_be(out, (uint32_t)count, 2);
  if (n) *n = count;
  return (long)used;
}

void coap_observe_import_begin(coap_server_t *s) {
  for (coap_resource_t *r = coap_server_resource_next(s, NULL); r;
       r = coap_server_resource_next(s, r))
    coap_resource_obs(r)->carried_set = 0;
}

/* Make |ro|'s next Observe value newer (§3.4) than |seq|, the last one a
 * carried observer got, and than those carried before it: 0, or -1 when
 * they lie too far apart for any one value (workers' counters merged into
 * one context). Observers it had before the import saw at most its
 * current value. */
static int seq_take_over(coap_obs_res_t *ro, uint32_t seq) {
  if (!ro->carried_set) {
    if (!ro->count) ro->seq = seq;
    ro->carried_low = ro->seq;
    ro->carried_set = 1;
  }
  uint32_t ahead = (seq - ro->carried_low) & OBS_SEQ_MASK;
  uint32_t low = ahead < 0x800000u ? ro->carried_low : seq;
  uint32_t top = (ro->seq - low) & OBS_SEQ_MASK;
  uint32_t want = ((seq - low) & OBS_SEQ_MASK) + OBS_RESTART_SEQ_MARGIN;
  if (want > top) top = want;
  if (top > OBS_CARRIED_SPREAD) return -1;
  ro->carried_low = low;
  ro->seq = (low + top) & OBS_SEQ_MASK;
  return 0;
}

/* A relation as read: views into the buffer. */
typedef struct carried {
  const uint8_t *token;
  uint8_t token_len, flags, szx;
  uint32_t seq, since_con_s;
  uint16_t nons;
  const uint8_t *req;
  size_t req_len;
  coap_msg_t msg; /* the registration, parsed */
} carried_t;

static int read_relation(const uint8_t *in, size_t len, size_t *at, carried_t *c) {
  const uint8_t *p = in + *at;
  size_t left = len - *at;
  if (left < 1 || p[0] > COAP_MAX_TOKEN_LEN || left < REL_FIXED + (size_t)p[0]) return -1;
  c->token_len = p[0];
  c->token = p + 1;
  p += 1 + c->token_len;
  c->flags = p[0];
  c->seq = get_be(p + 1, 3);
  c->nons = (uint16_t)get_be(p + 4, 2);
  c->since_con_s = get_be(p + 6, 4);
  c->szx = p[10];
  c->req_len = get_be(p + 11, 2);
  c->req = p + 13;
  left -= REL_FIXED + c->token_len;
  if (c->flags & ~REL_RESEND || c->szx > 6 || c->req_len > left || c->req_len > OBS_MAX_REQUEST)
    return -1;
  /* The registration as encode_request keeps it. */
  if (coap_msg_parse(&c->msg, c->req, c->req_len) < 0 || c->msg.token_len ||
      (c->msg.code != COAP_GET && c->msg.code != COAP_FETCH) ||
      coap_msg_find_option(&c->msg, COAP_OPTION_OBSERVE))
    return -1;
  *at = (size_t)(c->req + c->req_len - in);
  return 0;
}

/* A last message to a carried observer that cannot go on: the 4.04 of a
 * resource that is gone (no handler to run). */
static void send_gone(coap_server_t *s, const coap_observer_t *who) {
  static const char why[] = "resource removed (at a restart)";
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_NON, COAP_NOT_FOUND, 0);
  coap_msg_set_payload(&m, why, sizeof why - 1);
  uint8_t buf[64];
  int n = coap_msg_encode(&m, buf, sizeof buf);
  if (n < COAP_HEADER_LEN) return;
  built_t b = {COAP_NOT_FOUND, buf + COAP_HEADER_LEN, (size_t)n - COAP_HEADER_LEN, 1};
  coap_observer_t o = *who;
  send_one(s, &o, &b);
}

/* A last message from the resource's handler, without Observe: the
 * client is no longer on the list (§3.2), as a registration over the
 * limit is told. */
static void send_unobserved(coap_server_t *s, coap_obs_group_t *g, const coap_observer_t *who) {
  built_t b;
  if (build(s, g, who, 0, 0, &b) < 0) return;
  b.ends = 1;
  coap_observer_t o = *who;
  send_one(s, &o, &b);
}

static int over_limits(const coap_server_t *s, const coap_observer_t *who) {
  return s->obs.count >= limit_total(s) ||
         count_for_peer(&s->obs, who->peer_key, who->session_key) >= limit_per_peer(s);
}

/* |c| attached to |who|'s peer and session on |r| in group |g|. */
/* 1 when the relation ended at once (its state sent again ended it): the
 * group may be gone with it. */
static int attach(coap_server_t *s, coap_obs_group_t *g, const coap_observer_t *who,
                  const carried_t *c, coap_obs_import_tally_t *tally) {
  coap_observer_t *o = observer_alloc(s, who->peer_key, who->session_key, c->token, c->token_len);
  if (!o) {
    tally->no_memory++;
    return 0;
  }
  group_link_observer(g, o);
  uint32_t now_s = (uint32_t)(now_ms(s) / 1000);
  o->nons = c->nons;
  if (c->since_con_s <= now_s) {
    o->last_con_s = now_s - c->since_con_s;
  } else {
    o->last_con_s = 0;
    o->nons = 0xFFFE; /* a CON was due before this clock began: the next one is */
  }
  tally->carried++;
  if (!(c->flags & REL_RESEND)) return 0;
  /* Its newest state may be lost with the old process: sent again now,
   * as CON (or once the peer's CON in flight is answered). */
  o->pending = 1;
  o->nons = 0xFFFE;
  return may_send(s, o, now_s) && send_latest(s, o);
}

/* Does |who| (peer, session, token) observe |r| already? */
static int observes(const coap_obs_table_t *t, const coap_observer_t *who,
                    const coap_resource_t *r) {
  if (!t->count) return 0;
  for (const coap_observer_t *o = t->buckets[bucket_of(t, who->peer_key)]; o; o = o->hash_next)
    if (o->peer_key == who->peer_key && o->session_key == who->session_key &&
        o->token_len == who->token_len && memcmp(o->token, who->token, o->token_len) == 0 &&
        o->group->res == r)
      return 1;
  return 0;
}

static void import_relation(coap_server_t *s, const coap_observer_t *who, coap_proto_t proto,
                            const carried_t *c, coap_obs_import_tally_t *tally) {
  char path[1024];
  int plen = coap_server_request_path(&c->msg, path, sizeof path);
  coap_resource_t *r = plen >= 0 && s->count ? coap_server_lookup(s, path, (size_t)plen) : NULL;
  if (!r) {
    tally->resource_gone++;
    send_gone(s, who);
    return;
  }
  if (observes(&s->obs, who, r)) {
    tally->duplicate++;
    return;
  }
  coap_obs_group_t *g = group_for(s, r, c->req, c->req_len, c->szx, (uint8_t)proto);
  if (!g) {
    tally->no_memory++;
    return;
  }
  coap_obs_res_t *ro = coap_resource_obs(r);
  if (!ro->observable || over_limits(s, who) || seq_take_over(ro, c->seq) < 0) {
    if (!ro->observable)
      tally->not_observable++;
    else if (over_limits(s, who))
      tally->over_limit++;
    else
      tally->seq_apart++;
    send_unobserved(s, g, who);
  } else if (attach(s, g, who, c, tally)) {
    return; /* ended at once: its group, if left empty, went with it */
  }
  if (!g->first) group_free(s, g); /* made for nothing */
}

int coap_observe_import(coap_server_t *s, const void *peer_key, const void *session_key,
                        coap_proto_t proto, const uint8_t *in, size_t len, size_t *at,
                        coap_obs_import_tally_t *tally) {
  if (*at > len || len - *at < 2) return COAP_E_INVALID_ARG;
  size_t n = get_be(in + *at, 2);
  *at += 2;
  for (size_t i = 0; i < n; i++) {
    carried_t c;
    if (read_relation(in, len, at, &c) < 0) {
      check_sampled(s);
      return COAP_E_INVALID_ARG;
    }
    if (!peer_key) {
      tally->no_session++;
      continue;
    }
    coap_observer_t who = {.peer_key = peer_key,
                           .session_key = session_key,
                           .token_len = c.token_len & 0xF,
                           .nons = 0xFFFE};
    memcpy(who.token, c.token, c.token_len);
    import_relation(s, &who, proto, &c, tally);
  }
  check_sampled(s);
  return 0;
}
