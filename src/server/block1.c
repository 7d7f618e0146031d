/* Block1 on the server (RFC 7959 §2.3, §2.5): the blocks of a request
 * body are gathered per (peer, DTLS session, method, path, Request-Tag)
 * and the handler runs once, with the whole body, when the last block
 * comes. Tokens are not part of the key: a client may use a new token for
 * each block (libcoap does), and RFC 9175 §3.3 matches blocks by request
 * and Request-Tag. Duplicates of a block are answered by the message
 * layer's deduplication; a block sent again with a new message ID finds
 * its bytes already there and gets 2.31 again, nothing is appended twice.
 *
 * The same table keeps the answer to an unsafe request when it goes
 * block-wise, so that the client's requests for its later blocks are
 * answered from it instead of running the handler (a POST) again.
 *
 * Bounded: at most PER_PEER entries a peer (a new body replaces that
 * peer's oldest), max_body a body and max_reassembly bytes in all (then
 * 5.03); an entry expires EXCHANGE_LIFETIME after its last block, and
 * goes with its peer. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/invariant.h"
#include "server/server.h"

#define PER_PEER 4
#define TAG_MAX 8

/* AWAITING: a deferred answer to an unsafe request is still to come;
 * the entry holds its key until coap_deferred_send. */
/* DONE: a Q-Block1 body whose handler ran; later copies of its blocks
 * get the same code again (RFC 9177 §4.3: a duplicate is answered as if
 * new, and the handler must not run twice). */
typedef enum kind { RECEIVING, ANSWER, AWAITING, DONE } kind_t;

struct coap_b1_entry {
  coap_b1_entry_t *hash_next;
  coap_server_t *srv;
  coap_timer_t timer;
  const void *peer, *session;
  uint64_t born; /* for the per-peer replacement: the oldest goes */
  kind_t kind;
  uint8_t method, tag_len;
  uint8_t tag[TAG_MAX];
  uint8_t code; /* ANSWER: the response's code, format, ETag */
  int content_format;
  uint8_t etag[8];
  size_t etag_len;
  size_t len, cap; /* bytes held (RECEIVING: contiguous from 0) */
  uint8_t *data;
  size_t charged; /* counted in the table's bytes */
  /* Q-Block1 (RFC 9177): blocks come in any order. */
  struct {
    uint8_t on, szx, token_len, naks; /* naks: 4.08s since the last new block */
    uint8_t token[8];                 /* of the latest block, for the timer's 4.08 */
    uint32_t nblocks, nhave, contig;  /* contig: blocks 0..contig-1 all here */
    uint32_t nak_set;                 /* a 4.08 went for gaps before this set */
    uint8_t *have;                    /* a bit per block */
    coap_timer_t timer;               /* NON_RECEIVE_TIMEOUT */
  } q;
  size_t path_len;
  char path[];
};

static void qb1_timeout(coap_timer_t *t, uint64_t now, void *user);

static uint64_t lifetime_ms(const coap_server_t *s) {
  /* EXCHANGE_LIFETIME (RFC 7252 §4.8.2): a client still retransmitting
   * a block is heard within it. */
  const coap_tx_params_t *p = &s->cfg->tx;
  uint64_t span = (uint64_t)p->ack_timeout_ms * ((1u << p->max_retransmit) - 1) *
                  p->ack_random_factor_pm / 1000;
  return span + 2 * 100000ull + p->ack_timeout_ms;
}

/* (Re)arm |e|'s expiry: EXCHANGE_LIFETIME from |now|. Arming a timer not
 * armed yet can fail (the timer heap grows, COAP_E_NOMEM): an entry
 * without its expiry would never be freed, so every caller frees it then. */
static int arm_expiry(coap_server_t *s, coap_b1_entry_t *e, uint64_t now) {
  return coap_timer_arm(s->timers, &e->timer, now + lifetime_ms(s));
}

static size_t bucket_of(const coap_b1_table_t *t, const void *peer) {
  uint64_t h = (uint64_t)(uintptr_t)peer * 0x9E3779B97F4A7C15ull;
  return (size_t)(h >> 32) & (t->n_buckets - 1);
}

static void unlink_entry(coap_b1_table_t *t, coap_b1_entry_t *e) {
  coap_b1_entry_t **p = &t->buckets[bucket_of(t, e->peer)];
  while (*p != e) p = &(*p)->hash_next;
  *p = e->hash_next;
  t->count--;
}

static void entry_free(coap_server_t *s, coap_b1_entry_t *e) {
  coap_timer_cancel(s->timers, &e->timer);
  coap_timer_cancel(s->timers, &e->q.timer);
  free(e->q.have);
  unlink_entry(&s->b1, e);
  s->b1.bytes -= e->charged;
  free(e->data);
  free(e);
  coap_b1_table_check(s);
}

static void expired(coap_timer_t *t, uint64_t now, void *user) {
  (void)t;
  (void)now;
  coap_b1_entry_t *e = user;
  coap_server_t *s = e->srv;
  coap_logf(s->log, COAP_LOG_DEBUG, NULL, "%s /%s: forgotten after EXCHANGE_LIFETIME",
            e->kind == RECEIVING ? "unfinished Block1 body"
            : e->kind == ANSWER  ? "block-wise answer"
            : e->kind == DONE    ? "handled Q-Block1 body"
                                 : "place for a deferred answer",
            e->path);
  entry_free(s, e);
}

static int grow_table(coap_b1_table_t *t) {
  size_t n = t->n_buckets ? t->n_buckets * 2 : 16;
  coap_b1_entry_t **nb = calloc(n, sizeof(*nb));
  if (!nb) return t->n_buckets ? 0 : COAP_E_NOMEM;
  coap_b1_entry_t **old = t->buckets;
  size_t old_n = t->n_buckets;
  t->buckets = nb;
  t->n_buckets = n;
  for (size_t i = 0; i < old_n; i++)
    for (coap_b1_entry_t *e = old[i], *next; e; e = next) {
      next = e->hash_next;
      size_t b = bucket_of(t, e->peer);
      e->hash_next = nb[b];
      nb[b] = e;
    }
  free(old);
  return 0;
}

/* The request's Request-Tag (RFC 9175): absent and empty differ. */
static int request_tag(const coap_msg_t *m, uint8_t tag[TAG_MAX], uint8_t *len) {
  const coap_option_t *o = coap_msg_find_option(m, COAP_OPTION_REQUEST_TAG);
  if (!o) return 0;
  *len = (uint8_t)(o->length > TAG_MAX ? TAG_MAX : o->length);
  memcpy(tag, o->value, *len);
  return 1;
}

static coap_b1_entry_t *find(coap_server_t *s, const coap_request_t *req, const char *path,
                             size_t path_len) {
  coap_b1_table_t *t = &s->b1;
  if (!t->n_buckets) return NULL;
  uint8_t tag[TAG_MAX], tag_len = 0;
  int has_tag = request_tag(req->msg, tag, &tag_len);
  for (coap_b1_entry_t *e = t->buckets[bucket_of(t, req->peer_key)]; e; e = e->hash_next) {
    if (e->peer != req->peer_key || e->session != req->session_key || e->method != req->msg->code ||
        e->path_len != path_len || memcmp(e->path, path, path_len) != 0)
      continue;
    int e_has_tag = e->tag_len != 0xFF;
    if (e_has_tag != has_tag ||
        (has_tag && (e->tag_len != tag_len || memcmp(e->tag, tag, tag_len) != 0)))
      continue;
    return e;
  }
  return NULL;
}

/* Make room for one more entry of |peer|: its oldest goes when it holds
 * PER_PEER already (a client that started more bodies than that has
 * abandoned the oldest). */
static void limit_peer(coap_server_t *s, const void *peer) {
  coap_b1_table_t *t = &s->b1;
  unsigned n = 0;
  coap_b1_entry_t *oldest = NULL;
  for (coap_b1_entry_t *e = t->buckets[bucket_of(t, peer)]; e; e = e->hash_next) {
    if (e->peer != peer) continue;
    n++;
    if (!oldest || e->born < oldest->born) oldest = e;
  }
  if (n >= PER_PEER && oldest) entry_free(s, oldest);
}

static int budget_allows(coap_server_t *s, size_t more) {
  coap_b1_table_t *t = &s->b1;
  /* Cached Block2 representations give way: they can be built again. */
  if (coap_b2_cache_make_room(s, more)) return 1;
  if (!t->full_logged)
    coap_logf(s->log, COAP_LOG_WARNING, NULL,
              "block-wise bodies hold max_reassembly (%zu bytes): new ones are "
              "answered 5.03 until some finish or expire (raise max_reassembly)",
              s->cfg->max_reassembly);
  t->full_logged = 1;
  return 0;
}

static coap_b1_entry_t *entry_new(coap_server_t *s, const coap_request_t *req, const char *path,
                                  size_t path_len, kind_t kind) {
  coap_b1_table_t *t = &s->b1;
  size_t charge = sizeof(coap_b1_entry_t) + path_len + 1;
  if (t->count >= t->n_buckets && grow_table(t) < 0) return NULL;
  limit_peer(s, req->peer_key);
  if (!budget_allows(s, charge)) return NULL;
  coap_b1_entry_t *e = calloc(1, sizeof(*e) + path_len + 1);
  if (!e) return NULL;
  e->srv = s;
  e->peer = req->peer_key;
  e->session = req->session_key;
  e->born = ++t->stamp;
  e->kind = kind;
  e->method = req->msg->code;
  if (!request_tag(req->msg, e->tag, &e->tag_len)) e->tag_len = 0xFF;
  e->content_format = COAP_FORMAT_NONE;
  e->path_len = path_len;
  memcpy(e->path, path, path_len);
  e->charged = charge;
  coap_timer_init(&e->timer, expired, e);
  coap_timer_init(&e->q.timer, qb1_timeout, e);
  size_t b = bucket_of(t, e->peer);
  e->hash_next = t->buckets[b];
  t->buckets[b] = e;
  t->count++;
  t->bytes += charge;
  coap_b1_table_check(s);
  return e;
}

/* Room for |need| bytes in |e|'s buffer, within the budget. */
static int reserve(coap_server_t *s, coap_b1_entry_t *e, size_t need) {
  if (need <= e->cap) return 0;
  size_t cap = e->cap ? e->cap * 2 : 4096;
  while (cap < need) cap *= 2;
  if (cap > s->cfg->max_body && need <= s->cfg->max_body) cap = s->cfg->max_body;
  if (!budget_allows(s, cap - e->cap)) return COAP_E_LIMIT;
  uint8_t *p = realloc(e->data, cap);
  if (!p) return COAP_E_NOMEM;
  s->b1.bytes += cap - e->cap;
  e->charged += cap - e->cap;
  e->data = p;
  e->cap = cap;
  coap_b1_table_check(s);
  return 0;
}

static void too_large(coap_server_t *s, coap_response_t *resp, uint64_t size) {
  char text[96];
  snprintf(text, sizeof text, "body of %llu bytes or more: at most %zu", (unsigned long long)size,
           s->cfg->max_body);
  coap_response_error(resp, COAP_REQUEST_ENTITY_TOO_LARGE, text);
  coap_response_add_uint(resp, COAP_OPTION_SIZE1, (uint32_t)s->cfg->max_body);
}

__attribute__((format(printf, 2, 3))) static coap_b1_result_t incomplete(coap_response_t *resp,
                                                                         const char *fmt, ...) {
  char text[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  coap_response_error(resp, COAP_REQUEST_ENTITY_INCOMPLETE, text);
  return COAP_B1_ANSWERED;
}

static coap_b1_result_t unavailable(coap_response_t *resp) {
  coap_response_error(resp, COAP_SERVICE_UNAVAILABLE,
                      "too many block-wise bodies in progress: try again later");
  coap_response_add_uint(resp, COAP_OPTION_MAX_AGE, 30);
  return COAP_B1_ANSWERED;
}

/* Block 0 again for a body already under way: a copy of the first block
 * (a resend with a new message ID) changes nothing; different bytes
 * start the body afresh. */
static int same_start(const coap_b1_entry_t *e, const coap_msg_t *m) {
  return e->kind == RECEIVING && e->len >= m->payload_len &&
         (m->payload_len == 0 || memcmp(e->data, m->payload, m->payload_len) == 0);
}

/* Take the block at |off| into |e|: the bytes it shares with what is
 * there must be the same (a resend, or blocks of another size covering
 * them); the rest is appended. Returns 0, or a 4.08 already answered. */
static int take(coap_server_t *s, coap_b1_entry_t *e, uint64_t off, const coap_msg_t *m,
                coap_response_t *resp, coap_b1_result_t *r) {
  size_t len = m->payload_len;
  if (off > e->len) {
    *r = incomplete(resp, "Block1: the block at byte %llu came before the bytes from %llu",
                    (unsigned long long)off, (unsigned long long)e->len);
    return -1;
  }
  size_t shared = e->len - (size_t)off < len ? e->len - (size_t)off : len;
  if (shared && memcmp(e->data + off, m->payload, shared) != 0) {
    *r = incomplete(resp,
                    "Block1: the block at byte %llu differs from the bytes "
                    "received there (%llu of them)",
                    (unsigned long long)off, (unsigned long long)shared);
    entry_free(s, e);
    return -1;
  }
  if (len > shared) {
    int rc = reserve(s, e, (size_t)off + len);
    if (rc < 0) {
      *r = unavailable(resp);
      entry_free(s, e);
      return -1;
    }
    memcpy(e->data + e->len, m->payload + shared, len - shared);
    e->len = (size_t)off + len;
  }
  return 0;
}

/* Checks on the block itself: its size and the body's announced size. */
static int block_valid(coap_server_t *s, const coap_block_t *b, const coap_msg_t *m,
                       coap_response_t *resp) {
  size_t size = coap_block_size(b->szx), len = m->payload_len;
  uint64_t off = (uint64_t)b->num * size;
  if ((b->more && len != size) || (!b->more && len > size)) {
    char text[128];
    snprintf(text, sizeof text, "Block1 %u%s carries %zu bytes for a block size of %zu",
             (unsigned)b->num, b->more ? " (not the last)" : "", len, size);
    coap_response_error(resp, COAP_BAD_REQUEST, text);
    return -1;
  }
  int64_t size1 = coap_msg_get_uint(m, COAP_OPTION_SIZE1, -1);
  if (off + len > s->cfg->max_body || (size1 >= 0 && (uint64_t)size1 > s->cfg->max_body)) {
    too_large(s, resp, size1 > (int64_t)(off + len) ? (uint64_t)size1 : off + len);
    return -1;
  }
  return 0;
}

coap_b1_result_t coap_b1_receive(coap_server_t *s, const coap_request_t *req, const char *path,
                                 size_t path_len, const coap_block_t *b, coap_response_t *resp,
                                 const uint8_t **body, size_t *len) {
  const coap_msg_t *m = req->msg;
  if (block_valid(s, b, m, resp) < 0) return COAP_B1_ANSWERED;
  coap_b1_entry_t *e = find(s, req, path, path_len);
  if (e && e->q.on) {
    entry_free(s, e); /* a Q-Block1 body under the same key: Block1 starts anew */
    e = NULL;
  }
  if (b->num == 0 && !b->more) {
    if (e) entry_free(s, e); /* a one-block body replaces one under way */
    *body = m->payload;
    *len = m->payload_len;
    return COAP_B1_COMPLETE;
  }
  if (b->num == 0 && e && !same_start(e, m)) {
    entry_free(s, e);
    e = NULL;
  }
  if (!e && b->num == 0) {
    e = entry_new(s, req, path, path_len, RECEIVING);
    int64_t size1 = coap_msg_get_uint(m, COAP_OPTION_SIZE1, -1);
    if (!e || (size1 > 0 && reserve(s, e, (size_t)size1) < 0)) {
      if (e) entry_free(s, e);
      return unavailable(resp);
    }
  }
  if (!e || e->kind != RECEIVING)
    return incomplete(resp, "Block1 block %llu (at byte %llu) without the blocks before it",
                      (unsigned long long)b->num,
                      (unsigned long long)b->num * coap_block_size(b->szx));
  coap_b1_result_t r;
  uint64_t off = (uint64_t)b->num * coap_block_size(b->szx);
  if (take(s, e, off, m, resp, &r) < 0) return r;
  if (arm_expiry(s, e, req->now) < 0) {
    entry_free(s, e);
    return unavailable(resp);
  }
  if (b->more) {
    coap_response_set_code(resp, COAP_CONTINUE);
    /* RFC 7959 §2.5: our preferred size, when smaller, in the answer. */
    coap_response_add_block(resp, COAP_OPTION_BLOCK1, b->num, 1,
                            b->szx < resp->szx_max ? b->szx : resp->szx_max);
    return COAP_B1_ANSWERED;
  }
  if (off + m->payload_len < e->len)
    return incomplete(resp,
                      "Block1: the last block ends at byte %llu, before the %llu "
                      "bytes received",
                      (unsigned long long)(off + m->payload_len), (unsigned long long)e->len);
  *body = e->data;
  *len = e->len;
  return COAP_B1_COMPLETE;
}

/* ---- Q-Block1 (RFC 9177 §4.3, §5, §7.2) ---- */

#define CF_MISSING_BLOCKS 272 /* application/missing-blocks+cbor-seq */
#define NON_MAX_RETRANSMIT 4

/* NON_RECEIVE_TIMEOUT: twice NON_TIMEOUT, which is ACK_TIMEOUT (§7.2). */
static uint64_t non_receive_timeout(const coap_server_t *s) {
  return 2ull * s->cfg->tx.ack_timeout_ms;
}

static int qb_has(const coap_b1_entry_t *e, uint32_t n) {
  return (e->q.have[n >> 3] >> (n & 7)) & 1;
}

/* How long to wait for a block before asking (again): RFC 9177 §7.2's
 * Time-to-Wait, NON_RECEIVE_TIMEOUT * 2^(Re-Request-Count - 1), so the
 * first repeat comes after NON_RECEIVE_TIMEOUT too (libcoap's client keeps
 * a body 4 * NON_TIMEOUT after sending it all, then answers nothing). */
static uint64_t qb1_wait(const coap_server_t *s, const coap_b1_entry_t *e) {
  return non_receive_timeout(s) << (e->q.naks ? e->q.naks - 1 : 0);
}

/* A CBOR unsigned integer (RFC 8949 major type 0) at |out|; its length. */
static size_t cbor_uint(uint8_t *out, uint32_t v) {
  if (v < 24) {
    out[0] = (uint8_t)v;
    return 1;
  }
  if (v < 256) {
    out[0] = 0x18;
    out[1] = (uint8_t)v;
    return 2;
  }
  if (v < 65536) {
    out[0] = 0x19;
    out[1] = (uint8_t)(v >> 8);
    out[2] = (uint8_t)v;
    return 3;
  }
  out[0] = 0x1a;
  for (int i = 0; i < 4; i++) out[1 + i] = (uint8_t)(v >> (24 - 8 * i));
  return 5;
}

/* The missing blocks below |end| as a CBOR sequence in |out| (room for
 * MAX_PAYLOADS of them, §5's advice: a 4.08 asks for one set at most).
 * Returns the bytes written (0: none missing). */
static size_t missing_list(const coap_server_t *s, const coap_b1_entry_t *e, uint32_t end,
                           uint8_t *out, size_t cap) {
  uint32_t maxp = coap_qblock_max_payloads(s), listed = 0;
  size_t n = 0;
  for (uint32_t b = e->q.contig; b < end && b < e->q.nblocks && listed < maxp; b++) {
    if (qb_has(e, b)) continue;
    if (n + 5 > cap) break;
    n += cbor_uint(out + n, b);
    listed++;
  }
  return n;
}

/* A 4.08 with the list in |resp|. */
static coap_b1_result_t answer_missing(coap_response_t *resp, const uint8_t *list, size_t n) {
  coap_response_error(resp, COAP_REQUEST_ENTITY_INCOMPLETE, "");
  coap_response_set_payload(resp, CF_MISSING_BLOCKS, list, n);
  return COAP_B1_ANSWERED;
}

/* NON_RECEIVE_TIMEOUT passed without a new block: ask for the missing
 * ones (a NON 4.08 to the latest block's token), NON_MAX_RETRANSMIT
 * times with the wait doubling, then give the body up. */
static void qb1_timeout(coap_timer_t *t, uint64_t now, void *user) {
  (void)t;
  coap_b1_entry_t *e = user;
  coap_server_t *s = e->srv;
  if (e->kind != RECEIVING || !e->q.on) return;
  if (e->q.naks >= NON_MAX_RETRANSMIT) {
    coap_logf(s->log, COAP_LOG_DEBUG, NULL,
              "Q-Block1 body for /%s: %u of %u blocks after %u requests for the rest; "
              "given up",
              e->path, (unsigned)e->q.nhave, (unsigned)e->q.nblocks, (unsigned)e->q.naks);
    entry_free(s, e);
    return;
  }
  uint8_t list[5 * 64];
  size_t n =
      missing_list(s, e, e->q.nblocks, list,
                   sizeof list < 5 * coap_qblock_max_payloads(s) ? sizeof list
                                                                 : 5 * coap_qblock_max_payloads(s));
  if (!n) return;
  coap_msg_t m;
  coap_msg_init(&m, COAP_TYPE_NON, COAP_REQUEST_ENTITY_INCOMPLETE, 0);
  coap_msg_add_uint(&m, COAP_OPTION_CONTENT_FORMAT, CF_MISSING_BLOCKS);
  coap_msg_set_payload(&m, list, n);
  coap_qblock_send_non(s, e->peer, e->q.token, e->q.token_len, &m);
  e->q.naks++;
  /* (Should this fail, no further 4.08 goes; e->timer still expires it.) */
  (void)coap_timer_arm(s->timers, &e->q.timer, now + qb1_wait(s, e));
}

/* Checks of a Q-Block1 request on its own: Request-Tag and Size1 present
 * (§4.3: 4.00 without), the body within max_body, the block consistent
 * with Size1. Returns the number of blocks, or 0 with |resp| answered. */
static uint32_t qb1_valid(coap_server_t *s, const coap_block_t *b, const coap_msg_t *m,
                          coap_response_t *resp) {
  int64_t size1 = coap_msg_get_uint(m, COAP_OPTION_SIZE1, -1);
  if (!coap_msg_find_option(m, COAP_OPTION_REQUEST_TAG) || size1 < 0) {
    coap_response_error(resp, COAP_BAD_REQUEST,
                        "Q-Block1 needs Request-Tag and Size1 (RFC 9177 4.3)");
    return 0;
  }
  if ((uint64_t)size1 > s->cfg->max_body) {
    too_large(s, resp, (uint64_t)size1);
    return 0;
  }
  size_t size = coap_block_size(b->szx);
  uint32_t nblocks = size1 ? (uint32_t)(((uint64_t)size1 + size - 1) / size) : 1;
  size_t want = b->num + 1 < nblocks ? size : (size_t)size1 - (size_t)b->num * size;
  if (b->num >= nblocks || b->more != (b->num + 1 < nblocks) || m->payload_len != want) {
    char text[128];
    snprintf(text, sizeof text, "Q-Block1 %u/%u with %zu bytes does not fit Size1 %lld",
             (unsigned)b->num, (unsigned)b->more, m->payload_len, (long long)size1);
    coap_response_error(resp, COAP_BAD_REQUEST, text);
    return 0;
  }
  return nblocks;
}

/* A new Q-Block1 entry for |nblocks| blocks of |b->szx|; NULL when no room. */
static coap_b1_entry_t *qb1_new(coap_server_t *s, const coap_request_t *req, const char *path,
                                size_t path_len, const coap_block_t *b, uint32_t nblocks) {
  coap_b1_entry_t *e = entry_new(s, req, path, path_len, RECEIVING);
  if (!e) return NULL;
  size_t size1 = (size_t)coap_msg_get_uint(req->msg, COAP_OPTION_SIZE1, 0);
  size_t bits = (nblocks + 7) / 8;
  if ((size1 && reserve(s, e, size1) < 0) || !budget_allows(s, bits) ||
      !(e->q.have = calloc(1, bits))) {
    entry_free(s, e);
    return NULL;
  }
  s->b1.bytes += bits;
  e->charged += bits;
  e->q.on = 1;
  e->q.szx = b->szx;
  e->q.nblocks = nblocks;
  e->len = size1;
  return e;
}

/* A block of a body already handled, or whose answer is on its way. */
static coap_b1_result_t qb1_after(coap_server_t *s, const coap_request_t *req, coap_b1_entry_t *e,
                                  const char *path, size_t path_len, coap_response_t *resp) {
  if (e->kind == DONE) {
    coap_response_set_code(resp, e->code);
    return COAP_B1_ANSWERED;
  }
  if (e->kind == ANSWER && coap_b1_serve_kept(s, req, path, path_len, resp))
    return COAP_B1_ANSWERED;
  return COAP_B1_SILENT;
}

/* What a NON block that did not complete the body gets (§7.2): 2.31
 * naming the last block of the highest set complete from block 0, when
 * this block completed it (a missing block come late may complete
 * several) or is that set's last block again (the client missed the
 * 2.31); a 4.08 once per set for gaps in earlier sets; else nothing until
 * the timer. |was| is how many blocks were complete from 0 before. */
static coap_b1_result_t qb1_progress(coap_server_t *s, coap_b1_entry_t *e, const coap_block_t *b,
                                     uint32_t was, uint64_t now, coap_response_t *resp) {
  uint32_t maxp = coap_qblock_max_payloads(s), set = b->num / maxp;
  uint32_t done_sets = e->q.contig / maxp;
  if (done_sets && (done_sets > was / maxp || b->num == done_sets * maxp - 1)) {
    coap_response_set_code(resp, COAP_CONTINUE);
    coap_response_add_block(resp, COAP_OPTION_Q_BLOCK1, done_sets * maxp - 1, 1, e->q.szx);
    return COAP_B1_ANSWERED;
  }
  uint8_t list[5 * 64];
  size_t cap = 5 * (size_t)maxp < sizeof list ? 5 * (size_t)maxp : sizeof list;
  if (e->q.contig < set * maxp && e->q.nak_set < set) {
    e->q.nak_set = set;
    size_t n = missing_list(s, e, set * maxp, list, cap);
    if (n) return answer_missing(resp, list, n);
  }
  /* The last block of a set (or of the body) while some before it are
   * missing: the client has sent its burst and waits for an answer (it
   * sends that block again when none comes), so the list goes now rather
   * than after NON_RECEIVE_TIMEOUT (on UDP a reordered block is rare; one
   * arriving later is a duplicate, ignored), and counts as a request for
   * them. */
  if ((b->num + 1 == e->q.nblocks || b->num % maxp == maxp - 1) && e->q.contig < b->num) {
    size_t n = missing_list(s, e, b->num, list, cap);
    if (n) {
      e->q.naks++;
      (void)coap_timer_arm(s->timers, &e->q.timer, now + qb1_wait(s, e)); /* see qb1_receive */
      return answer_missing(resp, list, n);
    }
  }
  return COAP_B1_SILENT;
}

static coap_b1_result_t qb1_receive(coap_server_t *s, const coap_request_t *req, const char *path,
                                    size_t path_len, const coap_block_t *b, coap_response_t *resp,
                                    const uint8_t **body, size_t *len) {
  const coap_msg_t *m = req->msg;
  uint32_t nblocks = qb1_valid(s, b, m, resp);
  if (!nblocks) return COAP_B1_ANSWERED;
  coap_b1_entry_t *e = find(s, req, path, path_len);
  if (e && e->kind != RECEIVING) return qb1_after(s, req, e, path, path_len, resp);
  if (e && (!e->q.on || e->q.szx != b->szx || e->q.nblocks != nblocks)) {
    entry_free(s, e); /* another body under the same tag: the newer wins */
    e = NULL;
  }
  if (!e && !(e = qb1_new(s, req, path, path_len, b, nblocks))) return unavailable(resp);
  size_t size = coap_block_size(b->szx);
  uint32_t was = e->q.contig;
  if (!qb_has(e, b->num)) {
    /* A duplicate's payload is ignored (§4.3); a new block is progress. */
    if (m->payload_len) memcpy(e->data + (size_t)b->num * size, m->payload, m->payload_len);
    e->q.have[b->num >> 3] |= (uint8_t)(1u << (b->num & 7));
    e->q.nhave++;
    e->q.naks = 0;
    while (e->q.contig < nblocks && qb_has(e, e->q.contig)) e->q.contig++;
  }
  e->q.token_len = m->token_len;
  memcpy(e->q.token, m->token, m->token_len);
  if (arm_expiry(s, e, req->now) < 0) {
    entry_free(s, e);
    return unavailable(resp);
  }
  if (e->q.nhave == nblocks) {
    coap_timer_cancel(s->timers, &e->q.timer);
    *body = e->data;
    *len = e->len;
    return COAP_B1_COMPLETE;
  }
  /* CON blocks are reliable: the ACK is the answer until the body is whole. */
  if (m->type != COAP_TYPE_NON) return COAP_B1_SILENT;
  /* (Should this fail, no 4.08 comes by itself; the entry still expires.) */
  (void)coap_timer_arm(s->timers, &e->q.timer, req->now + qb1_wait(s, e));
  return qb1_progress(s, e, b, was, req->now, resp);
}

coap_b1_result_t coap_qb1_receive(coap_server_t *s, const coap_request_t *req, const char *path,
                                  size_t path_len, const coap_block_t *b, coap_response_t *resp,
                                  const uint8_t **body, size_t *len) {
  coap_b1_result_t r = qb1_receive(s, req, path, path_len, b, resp, body, len);
  coap_b1_table_check(s); /* the body's bitmap and counts moved on */
  return r;
}

void coap_qb1_answered(coap_server_t *s, const coap_request_t *req, const char *path,
                       size_t path_len, const coap_response_t *resp) {
  if (find(s, req, path, path_len)) return; /* the answer is kept (ANSWER) */
  coap_b1_entry_t *e = entry_new(s, req, path, path_len, DONE);
  if (!e) return;
  e->code = resp->msg.code;
  if (arm_expiry(s, e, req->now) < 0) entry_free(s, e); /* its copies run the handler again */
}

/* ---- answers kept for their later blocks ---- */

/* Will coap_response_finish cut |resp| into blocks? */
static int goes_blockwise(const coap_response_t *resp) {
  uint8_t szx = resp->szx_max;
  if (resp->asked.block2 && resp->asked.b2_szx < szx) szx = resp->asked.b2_szx;
  return !resp->error && COAP_CODE_CLASS(resp->msg.code) == 2 &&
         resp->msg.payload_len > coap_block_size(szx);
}

static void no_room_to_keep(coap_server_t *s, const char *path, size_t len) {
  /* The first block still goes out; a later one is then refused (4.00)
   * rather than run the handler again. */
  coap_logf(s->log, COAP_LOG_WARNING, NULL,
            "/%s: no room to keep a %zu-byte answer for its later blocks", path, len);
}

/* Make |e| the kept copy of |resp| (not finished yet). Returns 0, or -1
 * when there is no room, and then |e| is gone. */
static int keep_answer(coap_server_t *s, coap_b1_entry_t *e, const coap_response_t *resp,
                       uint64_t now) {
  size_t len = resp->msg.payload_len;
  if (reserve(s, e, len) < 0) {
    no_room_to_keep(s, e->path, len);
    entry_free(s, e);
    return -1;
  }
  e->kind = ANSWER;
  memcpy(e->data, resp->msg.payload, len);
  e->len = len;
  e->code = resp->msg.code;
  e->content_format = coap_msg_content_format(&resp->msg);
  e->etag_len = coap_response_etag(resp, e->etag);
  if (arm_expiry(s, e, now) < 0) {
    no_room_to_keep(s, e->path, len);
    entry_free(s, e);
    return -1;
  }
  return 0;
}

void coap_b1_answered(coap_server_t *s, const coap_request_t *req, const char *path,
                      size_t path_len, const coap_response_t *resp) {
  coap_b1_entry_t *e = find(s, req, path, path_len);
  if (e) entry_free(s, e);
  /* A GET or FETCH answer is kept by the Block2 cache instead, for any
   * peer that builds the same (block2.c). */
  uint8_t m = req->msg->code;
  if (!resp || !goes_blockwise(resp) || m == COAP_GET || m == COAP_FETCH) return;
  e = entry_new(s, req, path, path_len, ANSWER);
  if (!e) {
    no_room_to_keep(s, path, resp->msg.payload_len);
    return;
  }
  keep_answer(s, e, resp, req->now);
}

void coap_b1_deferred(coap_server_t *s, const coap_request_t *req, const char *path,
                      size_t path_len, coap_response_t *later) {
  coap_b1_answered(s, req, path, path_len, NULL); /* the body is the handler's now */
  uint8_t m = req->msg->code;
  if (!later || m == COAP_GET || m == COAP_FETCH) return;
  coap_b1_entry_t *e = entry_new(s, req, path, path_len, AWAITING);
  if (!e) return; /* (said when the answer comes, if it goes block-wise) */
  /* A handler that never answers leaves nothing behind for long; without
   * that timer, nothing is kept (its later blocks then get 4.00). */
  if (arm_expiry(s, e, req->now) < 0) {
    entry_free(s, e);
    return;
  }
  later->asked.kept_ticket = e->born;
  later->asked.kept_peer = e->peer;
}

void coap_b1_deferred_answered(coap_server_t *s, const coap_response_t *resp, uint64_t now) {
  coap_b1_table_t *t = &s->b1;
  uint64_t ticket = resp->asked.kept_ticket;
  if (!ticket || !t->n_buckets) return;
  coap_b1_entry_t *e = t->buckets[bucket_of(t, resp->asked.kept_peer)];
  while (e && !(e->born == ticket && e->kind == AWAITING)) e = e->hash_next;
  int blockwise = goes_blockwise(resp);
  if (!e) {
    /* Expired, or replaced by a newer body of the same key. */
    if (blockwise)
      coap_logf(s->log, COAP_LOG_WARNING, NULL,
                "a deferred %zu-byte answer came after its place was given up (expired or "
                "replaced): its later blocks get 4.00",
                resp->msg.payload_len);
    return;
  }
  if (!blockwise) {
    entry_free(s, e);
    return;
  }
  keep_answer(s, e, resp, now);
}

int coap_b1_serve_kept(coap_server_t *s, const coap_request_t *req, const char *path,
                       size_t path_len, coap_response_t *resp) {
  coap_b1_entry_t *e = find(s, req, path, path_len);
  if (!e || e->kind != ANSWER) return 0;
  coap_response_set_code(resp, e->code);
  if (e->etag_len) coap_response_set_etag(resp, e->etag, e->etag_len);
  /* The bytes stay in the entry until the answer is encoded: it is freed
   * only by a later request or a timer, never before this one is sent. */
  coap_response_set_payload(resp, COAP_FORMAT_NONE, NULL, 0);
  if (e->content_format != COAP_FORMAT_NONE)
    coap_response_add_uint(resp, COAP_OPTION_CONTENT_FORMAT, (uint32_t)e->content_format);
  coap_msg_set_payload(&resp->msg, e->data, e->len);
  /* Armed since keep_answer: moving it allocates nothing, cannot fail. */
  COAPS_INVARIANT(coap_timer_armed(&e->timer));
  (void)arm_expiry(s, e, req->now);
  return 1;
}

/* ---- invariants (common/invariant.h) ---- */

/* The bitmap bytes a Q-Block1 body of |e| holds. */
static size_t have_bytes(const coap_b1_entry_t *e) {
  return e->q.have ? (e->q.nblocks + 7) / 8 : 0;
}

/* A Q-Block1 body: its counts within its blocks, and as many bits set
 * as blocks counted, blocks 0..contig-1 among them. */
static const char *qb1_entry_broken(const coap_b1_entry_t *e) {
  if (!e->q.on) return e->q.have ? "block-wise table: a bitmap on a Block1 body" : NULL;
  if (!e->q.have && e->kind == RECEIVING) return "block-wise table: a Q-Block1 body without bitmap";
  if (e->q.nhave > e->q.nblocks || e->q.contig > e->q.nhave || e->q.token_len > 8)
    return "block-wise table: Q-Block1 counts past the body's blocks";
  if (!e->q.have) return NULL;
  uint32_t set = 0;
  for (size_t i = 0; i < have_bytes(e); i++) set += (uint32_t)__builtin_popcount(e->q.have[i]);
  if (set != e->q.nhave) return "block-wise table: Q-Block1 blocks counted are not the bits set";
  if (e->q.contig && !qb_has(e, e->q.contig - 1))
    return "block-wise table: a Q-Block1 block below contig missing";
  return NULL;
}

/* One entry on its own: its server, kind, length within what it holds,
 * and its charge what it holds. */
static const char *entry_broken(const coap_server_t *s, const coap_b1_entry_t *e) {
  if (e->srv != s) return "block-wise table: an entry of another server";
  if (e->kind > DONE || (e->tag_len > TAG_MAX && e->tag_len != 0xFF))
    return "block-wise table: an entry of no kind, or a tag longer than its room";
  if (e->len > e->cap) return "block-wise table: an entry longer than its buffer";
  if (e->charged != sizeof(coap_b1_entry_t) + e->path_len + 1 + e->cap + have_bytes(e))
    return "block-wise table: an entry's charge is not what it holds";
  return qb1_entry_broken(e);
}

/* |e| against the entries after it in its bucket: no second entry of its
 * key (find would never reach it), no more than PER_PEER of its peer. */
static const char *entry_key_broken(const coap_b1_entry_t *e) {
  unsigned same_peer = 1;
  for (const coap_b1_entry_t *q = e->hash_next; q; q = q->hash_next) {
    if (q->peer != e->peer) continue;
    same_peer++;
    if (q->session == e->session && q->method == e->method && q->path_len == e->path_len &&
        memcmp(q->path, e->path, e->path_len) == 0 && q->tag_len == e->tag_len &&
        (q->tag_len == 0xFF || memcmp(q->tag, e->tag, q->tag_len) == 0))
      return "block-wise table: two entries of one key";
  }
  return same_peer > PER_PEER ? "block-wise table: a peer with more than PER_PEER entries" : NULL;
}

const char *coap_b1_table_broken(const coap_server_t *s) {
  const coap_b1_table_t *t = &s->b1;
  if ((t->n_buckets & (t->n_buckets - 1)) || (t->count && !t->n_buckets))
    return "block-wise table: n_buckets is not a power of two";
  size_t n = 0, bytes = 0;
  for (size_t b = 0; b < t->n_buckets; b++)
    for (const coap_b1_entry_t *e = t->buckets[b]; e; e = e->hash_next) {
      if (++n > t->count) return "block-wise table: more entries in the buckets than count";
      if (bucket_of(t, e->peer) != b) return "block-wise table: an entry in the wrong bucket";
      const char *why = entry_broken(s, e);
      if (!why) why = entry_key_broken(e);
      if (why) return why;
      bytes += e->charged;
    }
  if (n != t->count) return "block-wise table: fewer entries in the buckets than count";
  size_t copies;
  const char *why = coap_b2_cache_broken(s, &copies);
  if (why) return why;
  if (bytes + copies != t->bytes)
    return "block-wise table: bytes is not what the entries and the Block2 copies hold";
  if (s->cfg && t->bytes > s->cfg->max_reassembly)
    return "block-wise table: more bytes than max_reassembly";
  return NULL;
}

/* ---- peers ---- */

void coap_server_peer_gone(coap_server_t *s, const void *peer_key) {
  coap_observe_peer_gone(s, peer_key); /* its observations end with it (observe.c) */
  coap_b2_cache_peer_gone(s, peer_key);
  coap_qblock_peer_gone(s, peer_key);
  coap_b1_table_t *t = &s->b1;
  if (!t->n_buckets) return;
  coap_b1_entry_t *e = t->buckets[bucket_of(t, peer_key)];
  while (e) {
    coap_b1_entry_t *next = e->hash_next;
    if (e->peer == peer_key) entry_free(s, e);
    e = next;
  }
}

int coap_server_peer_busy(const coap_server_t *s, const void *peer_key) {
  const coap_b1_table_t *t = &s->b1;
  if (!t->count) return 0;
  for (const coap_b1_entry_t *e = t->buckets[bucket_of(t, peer_key)]; e; e = e->hash_next)
    if (e->peer == peer_key) return 1;
  return 0;
}

void coap_b1_free_all(coap_server_t *s) {
  coap_b2_cache_free(s); /* its bytes are counted in the table's */
  coap_b1_table_t *t = &s->b1;
  for (size_t i = 0; i < t->n_buckets; i++)
    while (t->buckets[i]) entry_free(s, t->buckets[i]);
  free(t->buckets);
  memset(t, 0, sizeof(*t));
}
