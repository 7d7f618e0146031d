/* Block2 on the server (RFC 7959 §2.4): the handler builds the whole
 * representation and the answer carries the block the client asked for.
 * The ETag (the handler's own, or a hash of the representation) lets the
 * client see that the representation changed between blocks. The
 * representations of GET and FETCH answers that go block-wise are kept a
 * few seconds (below), so the later blocks do not build them again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/invariant.h"
#include "common/util.h"
#include "server/server.h"

/* A 64-bit hash over 8-byte words: an ETag is computed for every block of
 * a large representation, so it must cost little more than reading it. */
void coap_body_etag(const uint8_t *data, size_t len, uint8_t out[8]) {
  const uint64_t k = 0x9E3779B97F4A7C15ull;
  uint64_t h = 0x6A09E667F3BCC909ull ^ (len * k);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, data + i, 8);
    h = (h ^ w) * k;
    h ^= h >> 31;
  }
  uint64_t tail = 0;
  for (size_t j = 0; i + j < len; j++) tail |= (uint64_t)data[i + j] << (8 * j);
  h = coap_mix64((h ^ tail) * k);
  for (int b = 0; b < 8; b++) out[b] = (uint8_t)(h >> (8 * b));
}

size_t coap_response_etag(const coap_response_t *resp, uint8_t out[8]) {
  const coap_option_t *o = coap_msg_find_option(&resp->msg, COAP_OPTION_ETAG);
  if (o && o->length <= 8) {
    memcpy(out, o->value, o->length);
    return o->length;
  }
  if (COAP_CODE_CLASS(resp->msg.code) != 2) return 0;
  coap_body_etag(resp->msg.payload, resp->msg.payload_len, out);
  return 8;
}

/* The block size of this answer: the client's (early negotiation, or the
 * size of the blocks it continues with) when smaller than ours. */
static uint8_t answer_szx(const coap_response_t *resp) {
  uint8_t szx = resp->szx_max;
  if (resp->asked.block2 && resp->asked.b2_szx < szx) szx = resp->asked.b2_szx;
  return szx;
}

/* Keep the block at |off| of the body as the payload, with Block2, an
 * ETag for a success and Size2 on the first block or when asked. */
static void cut_block(coap_response_t *resp, size_t off, uint8_t szx) {
  size_t len = resp->msg.payload_len, size = coap_block_size(szx);
  size_t n = len - off < size ? len - off : size;
  const uint8_t *body = resp->msg.payload;
  uint32_t num = (uint32_t)(off >> (szx + 4));
  if (COAP_CODE_CLASS(resp->msg.code) == 2 && !coap_msg_find_option(&resp->msg, COAP_OPTION_ETAG)) {
    uint8_t tag[8];
    coap_body_etag(body, len, tag);
    coap_response_add_option(resp, COAP_OPTION_ETAG, tag, sizeof tag);
  }
  /* Q-Block2 (RFC 9177 §4.6): Size2 in every block, so that the client
   * knows which are missing. */
  int q = resp->asked.qblock2;
  if (num == 0 || resp->asked.size2 || q) {
    coap_msg_remove_option(&resp->msg, COAP_OPTION_SIZE2);
    coap_response_add_uint(resp, COAP_OPTION_SIZE2, (uint32_t)len);
  }
  coap_response_add_block(resp, q ? COAP_OPTION_Q_BLOCK2 : COAP_OPTION_BLOCK2, num, off + n < len,
                          szx);
  coap_msg_set_payload(&resp->msg, n ? body + off : NULL, n);
  if (q) {
    /* The rest of the burst is cut from here (qblock.c). */
    resp->qb_body = body;
    resp->qb_len = len;
    resp->qb_szx = szx;
  }
}

static void answer_body_error(coap_response_t *resp) {
  char text[96];
  if (resp->error == COAP_E_LIMIT)
    snprintf(text, sizeof text, "response body over the server's max_body (%zu bytes)",
             resp->max_body);
  else
    snprintf(text, sizeof text, "no memory for the response body");
  coap_response_error(resp, COAP_INTERNAL_SERVER_ERROR, text);
}

void coap_response_finish(coap_response_t *resp) {
  if (resp->error) answer_body_error(resp);
  if (resp->asked.block1_echo) {
    coap_msg_remove_option(&resp->msg, COAP_OPTION_BLOCK1);
    coap_response_add_block(resp, COAP_OPTION_BLOCK1, resp->asked.b1.num, 0, resp->asked.b1.szx);
  }
  uint8_t szx = answer_szx(resp);
  size_t len = resp->msg.payload_len, size = coap_block_size(szx);
  int success = COAP_CODE_CLASS(resp->msg.code) == 2;
  if (len <= size && !(resp->asked.block2 && success)) {
    if (resp->asked.size2 && success)
      coap_response_add_uint(resp, COAP_OPTION_SIZE2, (uint32_t)len);
    return;
  }
  /* The blocks the client counts in may be larger than ours: the same
   * offset, renumbered in our size (RFC 7959 §2.4). */
  uint64_t off =
      resp->asked.block2 && success ? (uint64_t)resp->asked.b2_num << (resp->asked.b2_szx + 4) : 0;
  if (off > 0 && off >= len) {
    /* RFC 7959 names no code for it; 4.02 is for options not recognised
     * (RFC 7252 §5.9.2.3), so this is the general 4.00, as libcoap says. */
    char text[128];
    snprintf(text, sizeof text, "Block2 block %u is past the end (%zu bytes)",
             (unsigned)resp->asked.b2_num, len);
    coap_response_error(resp, COAP_BAD_REQUEST, text);
    return;
  }
  cut_block(resp, (size_t)off, szx);
}

/* ---- the last few block-wise representations (GET, FETCH) ----
 *
 * Building a representation for every block makes a large GET cost
 * O(blocks x body): a 1 MiB body in 1 KiB blocks built 1024 times. So the
 * last few representations that went block-wise are kept, and a request
 * for a later block (num > 0) is answered from a copy when
 *  - its key matches: method, every option that is part of the cache key
 *    (RFC 7252 §5.4.6: not the NoCacheKey ones such as Size1/Size2/Echo,
 *    nor Block1, Block2 and Observe, which select a part or a mode, not a
 *    representation) and, for FETCH, the body (RFC 8132 §2);
 *  - it is fresh: a few seconds (CACHE_FRESH_MS), less when the answer's
 *    Max-Age says so (0: never kept);
 *  - the asking peer (and DTLS session) got this very representation from
 *    the handler itself, at block 0 or at a block that missed: a handler
 *    may answer peers differently (by address, by PSK identity), so one
 *    peer is never served what was built for another.
 * A request for block 0 (or without Block2) always runs the handler, and
 * so does any miss; the result replaces the copy when its ETag differs, so
 * a client sees a change by the ETag and starts over (RFC 7959 §2.4).
 * Within the freshness a client fetching block after block gets one
 * consistent snapshot, at most CACHE_FRESH_MS old.
 *
 * Bounded: CACHE_ENTRIES copies (the least recently made goes), each at
 * most max_body, and their bytes count in max_reassembly with the Block1
 * bodies, which come first: a body that needs the room frees copies. */

#define CACHE_ENTRIES 8
#define CACHE_PEERS 64
#define CACHE_FRESH_MS 5000

typedef struct cache_peer {
  const void *peer, *session;
} cache_peer_t;

typedef struct cache_entry {
  coap_server_t *srv;
  coap_timer_t timer; /* frees the copy when it goes stale */
  uint64_t made;      /* the handler run that made or confirmed it */
  uint8_t code, etag_len;
  uint8_t etag[8];
  cache_peer_t peers[CACHE_PEERS];
  unsigned n_peers, next_peer; /* a full list replaces in turn */
  size_t charged;
  size_t key_len, opts_len, body_len;
  uint8_t *key, *opts, *body; /* one block after the entry */
} cache_entry_t;

struct coap_b2_cache {
  cache_entry_t *slot[CACHE_ENTRIES];
};

/* Options that do not make the representation: the block-wise ones,
 * Observe (RFC 7641 §2: not part of the cache key) and NoCacheKey ones. */
static int key_option(uint16_t number) {
  return number != COAP_OPTION_BLOCK1 && number != COAP_OPTION_BLOCK2 &&
         number != COAP_OPTION_Q_BLOCK1 && number != COAP_OPTION_Q_BLOCK2 &&
         number != COAP_OPTION_OBSERVE && !COAP_OPTION_IS_NOCACHEKEY(number);
}

/* One option as the key and the kept options store it: number (2),
 * length (2), value. With |dst| NULL only its size. */
static size_t record_write(const coap_option_t *o, uint8_t *dst) {
  if (dst) {
    uint8_t h[4] = {(uint8_t)(o->number >> 8), (uint8_t)o->number, (uint8_t)(o->length >> 8),
                    (uint8_t)o->length};
    memcpy(dst, h, 4);
    if (o->length) memcpy(dst + 4, o->value, o->length);
  }
  return 4 + (size_t)o->length;
}

/* Every option of |m| that |keep| keeps, as records in message order. */
static size_t records_write(const coap_msg_t *m, int (*keep)(uint16_t), uint8_t *dst) {
  size_t n = 0;
  for (size_t i = 0; i < m->n_options; i++) {
    const coap_option_t *o = &m->options[i];
    if (keep(o->number)) n += record_write(o, dst ? dst + n : NULL);
  }
  return n;
}

/* The key, serialised: method, then number (2), length (2) and value of
 * each key option in message order, then a FETCH's body. With |dst| NULL
 * only its size. */
static size_t key_write(const coap_msg_t *m, uint8_t *dst) {
  if (dst) dst[0] = m->code;
  size_t n = 1 + records_write(m, key_option, dst ? dst + 1 : NULL);
  if (m->code == COAP_FETCH) {
    if (dst && m->payload_len) memcpy(dst + n, m->payload, m->payload_len);
    n += m->payload_len;
  }
  return n;
}

/* Does |m|'s key equal |key|? Compared piece by piece: no copy made. */
static int key_equal(const coap_msg_t *m, const uint8_t *key, size_t len) {
  if (len < 1 || key[0] != m->code) return 0;
  size_t n = 1;
  for (size_t i = 0; i < m->n_options; i++) {
    const coap_option_t *o = &m->options[i];
    if (!key_option(o->number)) continue;
    if (n + 4 + o->length > len) return 0;
    const uint8_t *k = key + n;
    if (k[0] != (uint8_t)(o->number >> 8) || k[1] != (uint8_t)o->number ||
        k[2] != (uint8_t)(o->length >> 8) || k[3] != (uint8_t)o->length ||
        (o->length && memcmp(k + 4, o->value, o->length) != 0))
      return 0;
    n += 4 + o->length;
  }
  size_t body = m->code == COAP_FETCH ? m->payload_len : 0;
  return n + body == len && (!body || memcmp(key + n, m->payload, body) == 0);
}

/* The response's options as kept: all but the block-wise ones and Size2,
 * which each block gets afresh, the ETag (kept apart) and Observe (a
 * registration's answer carries it; the later blocks are no
 * notifications, RFC 7959 §3.4). */
static int kept_option(uint16_t number) {
  return number != COAP_OPTION_BLOCK1 && number != COAP_OPTION_BLOCK2 &&
         number != COAP_OPTION_Q_BLOCK1 && number != COAP_OPTION_Q_BLOCK2 &&
         number != COAP_OPTION_SIZE2 && number != COAP_OPTION_ETAG && number != COAP_OPTION_OBSERVE;
}

static size_t opts_write(const coap_msg_t *m, uint8_t *dst) {
  return records_write(m, kept_option, dst);
}

static void cache_drop(coap_server_t *s, unsigned i) {
  cache_entry_t *e = s->b2_cache->slot[i];
  coap_timer_cancel(s->timers, &e->timer);
  s->b1.bytes -= e->charged;
  free(e);
  s->b2_cache->slot[i] = NULL;
  coap_b1_table_check(s);
}

static void cache_expired(coap_timer_t *t, uint64_t now, void *user) {
  (void)t;
  (void)now;
  cache_entry_t *e = user;
  coap_server_t *s = e->srv;
  for (unsigned i = 0; i < CACHE_ENTRIES; i++)
    if (s->b2_cache->slot[i] == e) cache_drop(s, i);
}

/* The slot of the fresh copy whose key is |m|'s, or -1. */
static int cache_find(const coap_server_t *s, const coap_msg_t *m) {
  if (!s->b2_cache) return -1;
  for (unsigned i = 0; i < CACHE_ENTRIES; i++) {
    const cache_entry_t *e = s->b2_cache->slot[i];
    if (e && key_equal(m, e->key, e->key_len)) return (int)i;
  }
  return -1;
}

static int peer_listed(const cache_entry_t *e, const coap_request_t *req) {
  for (unsigned i = 0; i < e->n_peers; i++)
    if (e->peers[i].peer == req->peer_key && e->peers[i].session == req->session_key) return 1;
  return 0;
}

static void peer_add(cache_entry_t *e, const coap_request_t *req) {
  if (peer_listed(e, req)) return;
  cache_peer_t p = {req->peer_key, req->session_key};
  if (e->n_peers < CACHE_PEERS) {
    e->peers[e->n_peers++] = p;
    return;
  }
  /* A full list: the oldest name goes; that peer's next block then runs
   * the handler and lists it again. */
  e->peers[e->next_peer] = p;
  e->next_peer = (e->next_peer + 1) % CACHE_PEERS;
}

int coap_b2_cache_serve(coap_server_t *s, const coap_request_t *req, coap_response_t *resp) {
  /* A registration (odd with a later block) goes to the handler and the
   * Observe rules (RFC 7641). */
  if (coap_msg_find_option(req->msg, COAP_OPTION_OBSERVE)) return 0;
  int i = cache_find(s, req->msg);
  if (i < 0) return 0;
  const cache_entry_t *e = s->b2_cache->slot[i];
  if (!peer_listed(e, req)) return 0;
  coap_response_set_code(resp, e->code);
  for (size_t n = 0; n < e->opts_len;) {
    const uint8_t *h = e->opts + n;
    uint16_t number = (uint16_t)(h[0] << 8 | h[1]), len = (uint16_t)(h[2] << 8 | h[3]);
    if (coap_response_add_option(resp, number, h + 4, len) < 0) goto no_room;
    n += 4 + (size_t)len;
  }
  /* The ETag as the handler's run gave it: no hash over the body again. */
  if (coap_response_set_etag(resp, e->etag, e->etag_len) < 0) goto no_room;
  /* The bytes stay in the copy until the answer is encoded: it is freed
   * by a timer or a later request, never before this one is sent. */
  coap_msg_set_payload(&resp->msg, e->body, e->body_len);
  return 1;
no_room:
  /* (Options the handler's own answer held: it can build them again.) */
  coap_response_reset(resp, req->msg);
  return 0;
}

/* How long |resp|'s representation may be kept: CACHE_FRESH_MS, or its
 * Max-Age when shorter (RFC 7252 §5.10.5; 60 s when absent). */
static uint64_t fresh_ms(const coap_response_t *resp) {
  int64_t max_age = coap_msg_get_uint(&resp->msg, COAP_OPTION_MAX_AGE, 60);
  uint64_t ms = (uint64_t)max_age * 1000;
  return ms < CACHE_FRESH_MS ? ms : CACHE_FRESH_MS;
}

int coap_b2_cache_make_room(coap_server_t *s, size_t need) {
  size_t max = s->cfg->max_reassembly;
  while (s->b1.bytes + need > max && s->b2_cache) {
    int oldest = -1;
    for (unsigned i = 0; i < CACHE_ENTRIES; i++) {
      cache_entry_t *e = s->b2_cache->slot[i];
      if (e && (oldest < 0 || e->made < s->b2_cache->slot[oldest]->made)) oldest = (int)i;
    }
    if (oldest < 0) break;
    cache_drop(s, (unsigned)oldest);
  }
  return s->b1.bytes + need <= max;
}

/* A new copy of |resp|'s representation in the slot |i|. */
static void cache_put(coap_server_t *s, unsigned i, const coap_request_t *req,
                      const coap_response_t *resp, const uint8_t etag[8], size_t etag_len,
                      uint64_t ms) {
  size_t key_len = key_write(req->msg, NULL), opts_len = opts_write(&resp->msg, NULL);
  size_t body_len = resp->msg.payload_len;
  size_t charge = sizeof(cache_entry_t) + key_len + opts_len + body_len;
  if (!coap_b2_cache_make_room(s, charge)) return;
  cache_entry_t *e = malloc(charge);
  if (!e) return;
  memset(e, 0, sizeof *e);
  e->srv = s;
  e->key = (uint8_t *)(e + 1);
  e->opts = e->key + key_len;
  e->body = e->opts + opts_len;
  e->key_len = key_write(req->msg, e->key);
  e->opts_len = opts_write(&resp->msg, e->opts);
  e->body_len = body_len;
  if (body_len) memcpy(e->body, resp->msg.payload, body_len);
  e->code = resp->msg.code;
  memcpy(e->etag, etag, etag_len);
  e->etag_len = (uint8_t)etag_len;
  e->made = req->now;
  e->charged = charge;
  peer_add(e, req);
  coap_timer_init(&e->timer, cache_expired, e);
  if (coap_timer_arm(s->timers, &e->timer, req->now + ms) < 0) {
    /* A copy that would never expire holds its bytes until replaced:
     * none is kept (the later blocks run the handler again). */
    free(e);
    return;
  }
  s->b1.bytes += charge;
  s->b2_cache->slot[i] = e;
  coap_b1_table_check(s);
}

/* Where a new copy goes: a free slot, else the least recently made. */
static unsigned cache_slot(coap_server_t *s) {
  unsigned pick = 0;
  for (unsigned i = 0; i < CACHE_ENTRIES; i++) {
    cache_entry_t *e = s->b2_cache->slot[i];
    if (!e) return i;
    if (e->made < s->b2_cache->slot[pick]->made) pick = i;
  }
  cache_drop(s, pick);
  return pick;
}

void coap_b2_cache_keep(coap_server_t *s, const coap_request_t *req, coap_response_t *resp) {
  uint8_t method = req->msg->code;
  if ((method != COAP_GET && method != COAP_FETCH) || resp->error ||
      COAP_CODE_CLASS(resp->msg.code) != 2 ||
      resp->msg.payload_len <= coap_block_size(answer_szx(resp)) ||
      resp->msg.payload_len > s->cfg->max_body)
    return;
  uint64_t ms = fresh_ms(resp);
  if (!ms) return;
  if (!s->b2_cache && !(s->b2_cache = calloc(1, sizeof *s->b2_cache))) return;
  /* The ETag every block will carry, set now so that it is hashed once. */
  uint8_t etag[8];
  size_t etag_len = coap_response_etag(resp, etag);
  if (!coap_msg_find_option(&resp->msg, COAP_OPTION_ETAG) &&
      coap_response_set_etag(resp, etag, etag_len) < 0)
    return;
  int i = cache_find(s, req->msg);
  if (i >= 0) {
    cache_entry_t *e = s->b2_cache->slot[i];
    if (e->code == resp->msg.code && e->etag_len == etag_len &&
        memcmp(e->etag, etag, etag_len) == 0 && e->body_len == resp->msg.payload_len) {
      /* The same representation again: this peer may have it too. */
      peer_add(e, req);
      e->made = req->now;
      /* Armed since cache_put: moving it allocates nothing, cannot fail. */
      COAPS_INVARIANT(coap_timer_armed(&e->timer));
      coap_timer_arm(s->timers, &e->timer, req->now + ms);
      coap_b1_table_check(s);
      return;
    }
    cache_drop(s, (unsigned)i);
  } else {
    i = (int)cache_slot(s);
  }
  cache_put(s, (unsigned)i, req, resp, etag, etag_len, ms);
}

void coap_b2_cache_peer_gone(coap_server_t *s, const void *peer_key) {
  if (!s->b2_cache) return;
  for (unsigned i = 0; i < CACHE_ENTRIES; i++) {
    cache_entry_t *e = s->b2_cache->slot[i];
    if (!e) continue;
    for (unsigned k = 0; k < e->n_peers;) {
      if (e->peers[k].peer != peer_key) {
        k++;
        continue;
      }
      e->peers[k] = e->peers[--e->n_peers];
      e->next_peer = 0;
    }
  }
  coap_b1_table_check(s);
}

/* ---- invariants (common/invariant.h) ---- */

/* One copy: its parts where its block holds them, its charge their size,
 * its body within max_body, its peer list within its room and no peer
 * listed twice. */
static const char *copy_broken(const coap_server_t *s, const cache_entry_t *e) {
  if (e->srv != s) return "Block2 copies: a copy of another server";
  if (e->key != (const uint8_t *)(e + 1) || e->opts != e->key + e->key_len ||
      e->body != e->opts + e->opts_len)
    return "Block2 copies: a copy's parts are not where its block holds them";
  if (e->charged != sizeof(cache_entry_t) + e->key_len + e->opts_len + e->body_len)
    return "Block2 copies: a copy's charge is not its size";
  if (s->cfg && e->body_len > s->cfg->max_body) return "Block2 copies: a copy over max_body";
  if (e->etag_len > 8 || e->n_peers > CACHE_PEERS || e->next_peer >= CACHE_PEERS)
    return "Block2 copies: an ETag or peer list longer than its room";
  for (unsigned i = 0; i < e->n_peers; i++)
    for (unsigned k = i + 1; k < e->n_peers; k++)
      if (e->peers[i].peer == e->peers[k].peer && e->peers[i].session == e->peers[k].session)
        return "Block2 copies: a peer listed twice";
  return NULL;
}

const char *coap_b2_cache_broken(const coap_server_t *s, size_t *bytes) {
  *bytes = 0;
  if (!s->b2_cache) return NULL;
  for (unsigned i = 0; i < CACHE_ENTRIES; i++) {
    const cache_entry_t *e = s->b2_cache->slot[i];
    if (!e) continue;
    const char *why = copy_broken(s, e);
    if (why) return why;
    for (unsigned k = i + 1; k < CACHE_ENTRIES; k++) {
      const cache_entry_t *o = s->b2_cache->slot[k];
      if (o == e) return "Block2 copies: one copy in two slots";
      if (o && o->key_len == e->key_len && memcmp(o->key, e->key, e->key_len) == 0)
        return "Block2 copies: two copies of one key";
    }
    *bytes += e->charged;
  }
  return NULL;
}

void coap_b2_cache_free(coap_server_t *s) {
  if (!s->b2_cache) return;
  for (unsigned i = 0; i < CACHE_ENTRIES; i++)
    if (s->b2_cache->slot[i]) cache_drop(s, i);
  free(s->b2_cache);
  s->b2_cache = NULL;
}
