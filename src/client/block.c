/* Block-wise transfers, client side (RFC 7959): request bodies sent in
 * Block1 blocks, response bodies fetched in Block2 blocks and reassembled,
 * so the caller sees one request and one reply.
 *
 * Every follow-up request is rebuilt from a template, the first request as
 * encoded (its options; its payload only where the method makes the
 * payload part of what is asked, GET and FETCH), with the block options
 * replaced and a fresh token: the requests of a transfer are sequential
 * and independent (§2.4), and a late answer to an earlier block then
 * matches nothing instead of passing for the block asked now. A FETCH's
 * body is part of what it asks (RFC 8132 §2): when it went in Block1
 * blocks, each answer block is asked for by sending it again, Block2 on
 * its last block. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "common/invariant.h"

/* Times the blocks of a representation are fetched again from block 0
 * because its ETag changed, before the transfer is given up. */
#define RESTARTS_MAX 3
#define BLOCK_NUM_MAX ((1u << 20) - 1)
#define ETAG_MAX 8
/* First reassembly buffer when the server does not say the size. */
#define BODY_CAP_MIN 4096

enum { SENDING, FETCHING };

struct coap_client_block {
  uint8_t *tmpl; /* the request as first sent: the options of every follow-up */
  size_t tmpl_len;
  uint8_t method, phase;
  /* Block1: the request body, what the server took, the block awaiting
   * its answer. */
  uint8_t *body;
  size_t body_len, sent, in_flight;
  uint8_t szx1, in_flight_more;
  /* A FETCH's body is part of what it asks (RFC 8132 §2): each answer
   * block is asked for by sending the body again, with Block2 on its last
   * block. */
  uint8_t b2_wanted, b2_want_szx;
  uint32_t b2_want;
  /* Block2: the response body so far, the block size the server uses, the
   * first block's code and ETag. */
  uint8_t *buf;
  size_t len, cap, size2;
  uint8_t szx2, seen2, code, reassembled, has_etag, etag_len;
  uint8_t etag[ETAG_MAX];
  unsigned restarts, exchanges;
};

/* ---- words for the caller ---- */

/* The reason, kept in cl->last_error (what coap_context_last_error
 * returns) and logged after |what| (the kind of transfer). */
const char *coap_client_say(coap_client_req_t *r, const char *what, const char *fmt, ...) {
  coap_client_t *cl = r->cl;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cl->last_error, cl->last_error_size, fmt, ap);
  va_end(ap);
  if (coap_log_enabled(cl->log, COAP_LOG_INFO)) {
    char addr[64], prefix[72];
    snprintf(prefix, sizeof prefix, "[%s]", coap_address_format(&r->dest, addr, sizeof addr));
    coap_logf(cl->log, COAP_LOG_INFO, prefix, "%s: %s", what, cl->last_error);
  }
  return cl->last_error;
}

#define say(r, ...) coap_client_say((r), "block-wise", __VA_ARGS__)

/* ---- building requests ---- */

static coap_client_block_t *block_new(coap_client_req_t *r, const uint8_t *tmpl, size_t len) {
  coap_client_block_t *b = calloc(1, sizeof(*b));
  if (!b) return NULL;
  if (!(b->tmpl = malloc(len ? len : 1))) {
    free(b);
    return NULL;
  }
  memcpy(b->tmpl, tmpl, len);
  b->tmpl_len = len;
  b->method = r->method;
  return b;
}

/* The first request again, without block options and with a token to be
 * chosen; its payload kept only when |keep_payload|. */
static int from_template(const coap_client_block_t *b, coap_msg_t *m, int keep_payload) {
  int rc = coap_msg_parse(m, b->tmpl, b->tmpl_len);
  if (rc < 0) return COAP_E_INTERNAL;
  m->token_len = 0;
  coap_msg_remove_option(m, COAP_OPTION_BLOCK1);
  coap_msg_remove_option(m, COAP_OPTION_BLOCK2);
  coap_msg_remove_option(m, COAP_OPTION_SIZE1);
  coap_msg_remove_option(m, COAP_OPTION_SIZE2);
  /* The rest of a notification's body is fetched without Observe (RFC 7959 §3.4). */
  coap_msg_remove_option(m, COAP_OPTION_OBSERVE);
  if (!keep_payload) coap_msg_set_payload(m, NULL, 0);
  return 0;
}

/* Hand |m| to the message layer as |r|'s current exchange. The last thing
 * a caller does: the answer may come (and end |r|) before this returns. */
static int send_request(coap_client_req_t *r, coap_exch_peer_t *peer, coap_msg_t *m, uint64_t now) {
  coap_client_t *cl = r->cl;
  int hard;
  size_t room = coap_client_room(cl, r->proto, &hard);
  size_t n = coap_msg_encoded_size(m);
  if (hard && n > room) {
    say(r,
        "a follow-up request of %zu bytes does not fit the %zu bytes a DTLS record holds "
        "at this MTU",
        n, room);
    return COAP_E_TOO_LARGE;
  }
  r->blk->exchanges++;
  return coap_exch_request(cl->exch, peer, m, r, &r->out, now);
}

/* 1 when a request went out, else the error. */
static int went_out(int rc) {
  return rc < 0 ? rc : 1;
}

static int send_block1(coap_client_req_t *r, coap_exch_peer_t *peer, uint64_t now) {
  coap_client_block_t *b = r->blk;
  coap_msg_t m;
  int rc = from_template(b, &m, 0);
  if (rc < 0) return rc;
  size_t size = coap_block_size(b->szx1);
  size_t n = b->body_len - b->sent < size ? b->body_len - b->sent : size;
  coap_block_t b1 = {
      .num = (uint32_t)(b->sent / size), .more = b->sent + n < b->body_len, .szx = b->szx1};
  if (b->sent / size > BLOCK_NUM_MAX) {
    say(r, "in the server's %zu-byte blocks the %zu-byte body needs more than 2^20 blocks", size,
        b->body_len);
    return COAP_E_TOO_LARGE;
  }
  if ((rc = coap_msg_add_block(&m, COAP_OPTION_BLOCK1, &b1)) < 0) return rc;
  /* Size1 on the first block lets the server refuse a body too large for
   * it before it is sent (§4). */
  if (b1.num == 0 && (rc = coap_msg_add_uint(&m, COAP_OPTION_SIZE1, (uint32_t)b->body_len)) < 0)
    return rc;
  coap_block_t b2 = {.num = b->b2_want, .more = 0, .szx = b->b2_want_szx};
  if (!b1.more && b->b2_wanted && (rc = coap_msg_add_block(&m, COAP_OPTION_BLOCK2, &b2)) < 0)
    return rc;
  coap_msg_set_payload(&m, b->body + b->sent, n);
  b->in_flight = n;
  b->in_flight_more = b1.more;
  return send_request(r, peer, &m, now);
}

static int send_block2(coap_client_req_t *r, coap_exch_peer_t *peer, uint32_t num, uint8_t szx,
                       uint64_t now) {
  coap_client_block_t *b = r->blk;
  if (b->method == COAP_FETCH && b->body) {
    /* The body went in Block1 blocks: it goes again, the block wanted
     * named on its last one. */
    b->b2_wanted = 1;
    b->b2_want = num;
    b->b2_want_szx = szx;
    b->sent = 0;
    b->phase = SENDING;
    return send_block1(r, peer, now);
  }
  coap_msg_t m;
  int rc = from_template(b, &m, b->method == COAP_GET || b->method == COAP_FETCH);
  if (rc < 0) return rc;
  coap_block_t b2 = {.num = num, .more = 0, .szx = szx};
  if ((rc = coap_msg_add_block(&m, COAP_OPTION_BLOCK2, &b2)) < 0) return rc;
  return send_request(r, peer, &m, now);
}

/* ---- Request-Tag (RFC 9175 §3) ---- */

static int same_path(const coap_msg_t *a, const coap_msg_t *b) {
  const coap_option_t *x = coap_msg_find_option(a, COAP_OPTION_URI_PATH);
  const coap_option_t *y = coap_msg_find_option(b, COAP_OPTION_URI_PATH);
  for (; x && y; x = coap_msg_next_option(a, x), y = coap_msg_next_option(b, y))
    if (x->length != y->length || (x->length && memcmp(x->value, y->value, x->length) != 0))
      return 0;
  return !x && !y;
}

/* Is another body of this context on its way to the same server and
 * path (being sent, or its answer fetched)? The server would then take
 * the blocks of both for one body, or the second would replace the
 * first's kept answer. */
static int body_clash(const coap_client_req_t *r, const coap_msg_t *msg) {
  for (const coap_client_req_t *o = r->cl->requests; o; o = o->next) {
    coap_msg_t t;
    if (o == r || !o->blk || !o->blk->body || o->ep != r->ep ||
        !coap_address_equal(&o->dest, &r->dest))
      continue;
    if (coap_msg_parse(&t, o->blk->tmpl, o->blk->tmpl_len) == 0 && same_path(&t, msg)) return 1;
  }
  return 0;
}

/* A body sent while another goes to the same place gets a Request-Tag of
 * its own (its request id, unique in the context, never empty), so the
 * server keeps the two apart (RFC 9175 §3.3). A lone body gets none: a
 * server that knows no Request-Tag (a critical option) would refuse it. */
static int tag_if_needed(coap_client_req_t *r, coap_client_block_t *b) {
  coap_msg_t m;
  if (coap_msg_parse(&m, b->tmpl, b->tmpl_len) < 0) return COAP_E_INTERNAL;
  if (coap_msg_find_option(&m, COAP_OPTION_REQUEST_TAG) || !body_clash(r, &m)) return 0;
  uint8_t tag[8];
  size_t n = 0;
  for (int shift = 56; shift >= 0; shift -= 8)
    if (n || (r->id >> shift) & 0xFF || shift == 0) tag[n++] = (uint8_t)(r->id >> shift);
  int rc = coap_msg_add_option(&m, COAP_OPTION_REQUEST_TAG, tag, n);
  if (rc < 0) return rc;
  size_t len = coap_msg_encoded_size(&m);
  uint8_t *t = malloc(len);
  if (!t) return COAP_E_NOMEM;
  if ((rc = coap_msg_encode(&m, t, len)) < 0) {
    free(t);
    return rc;
  }
  free(b->tmpl);
  b->tmpl = t;
  b->tmpl_len = (size_t)rc;
  return 0;
}

/* ---- Block1: sending a body ---- */

int coap_client_block1_plan(coap_client_t *cl, coap_proto_t proto, const coap_msg_t *msg,
                            size_t len, uint16_t pref) {
  int hard;
  size_t room = coap_client_room(cl, proto, &hard);
  uint8_t szx = coap_block_szx_for(pref);
  size_t need = 0;
  for (uint8_t s = szx;; s--) {
    /* The largest block option this body can need, and Size1. */
    coap_msg_t probe = *msg;
    size_t size = coap_block_size(s);
    uint32_t last = (len - 1) / size > BLOCK_NUM_MAX ? BLOCK_NUM_MAX : (uint32_t)((len - 1) / size);
    coap_block_t b1 = {.num = last, .more = 1, .szx = s};
    if (coap_msg_add_block(&probe, COAP_OPTION_BLOCK1, &b1) < 0 ||
        coap_msg_add_uint(&probe, COAP_OPTION_SIZE1, (uint32_t)len) < 0) {
      snprintf(cl->last_error, cl->last_error_size,
               "no room for the Block1 and Size1 options among the request's options");
      return COAP_E_TOO_LARGE;
    }
    /* Room too for what a block may carry later: a Request-Tag (a body
     * sent beside another, at most 8 bytes) and, for a FETCH sending its
     * body again, Block2. (Best effort: only sizes are at stake.) */
    static const uint8_t tag[8];
    if (!coap_msg_find_option(msg, COAP_OPTION_REQUEST_TAG))
      (void)coap_msg_add_option(&probe, COAP_OPTION_REQUEST_TAG, tag, sizeof tag);
    coap_block_t b2 = {.num = BLOCK_NUM_MAX, .more = 0, .szx = 6};
    if (msg->code == COAP_FETCH) (void)coap_msg_add_block(&probe, COAP_OPTION_BLOCK2, &b2);
    need = coap_msg_encoded_size(&probe) + 1 + size;
    if (need <= room) {
      szx = s;
      break;
    }
    if (s == 0) {
      /* coap:// carries it anyway: its room is advice, not a limit. */
      if (!hard) break;
      snprintf(cl->last_error, cl->last_error_size,
               "the request does not fit a DTLS record even in 16-byte blocks: its options "
               "make %zu-byte messages, the record holds %zu bytes at this MTU; nothing was sent",
               need, room);
      return COAP_E_TOO_LARGE;
    }
  }
  if ((len - 1) / coap_block_size(szx) > BLOCK_NUM_MAX) {
    snprintf(cl->last_error, cl->last_error_size,
             "a body of %zu bytes needs more than 2^20 blocks of %zu bytes (RFC 7959's limit); "
             "nothing was sent",
             len, coap_block_size(szx));
    return COAP_E_TOO_LARGE;
  }
  return szx;
}

static int start_sending(coap_client_req_t *r, coap_client_block_t *b, const uint8_t *payload,
                         size_t len, uint8_t szx) {
  if (!(b->body = malloc(len))) return COAP_E_NOMEM;
  memcpy(b->body, payload, len);
  b->body_len = len;
  b->szx1 = szx;
  b->phase = SENDING;
  r->blk = b;
  return 0;
}

int coap_client_block1_start(coap_client_req_t *r, coap_exch_peer_t *peer, const coap_msg_t *msg,
                             const uint8_t *payload, size_t len, uint8_t szx, uint64_t now) {
  size_t n = coap_msg_encoded_size(msg);
  uint8_t *tmpl = malloc(n);
  if (!tmpl) return COAP_E_NOMEM;
  int rc = coap_msg_encode(msg, tmpl, n);
  coap_client_block_t *b = rc < 0 ? NULL : block_new(r, tmpl, (size_t)rc);
  free(tmpl);
  if (!b) return rc < 0 ? rc : COAP_E_NOMEM;
  if ((rc = start_sending(r, b, payload, len, szx)) < 0 || (rc = tag_if_needed(r, b)) < 0) {
    r->blk = NULL;
    coap_client_block_free(b);
    return rc;
  }
  if ((rc = send_block1(r, peer, now)) < 0) {
    coap_client_block_free(r->blk);
    r->blk = NULL;
  }
  return rc;
}

static int find_block(const coap_msg_t *msg, uint16_t number, coap_block_t *out) {
  const coap_option_t *o = coap_msg_find_option(msg, number);
  if (!o) return 0;
  return coap_block_decode(o, out) == 0 ? 1 : COAP_E_BAD_RESPONSE;
}

static int fetch_answer(coap_client_req_t *r, coap_exch_peer_t *peer, const coap_msg_t *msg,
                        uint64_t now, const char **detail);

/* 2.31: the block was taken; the next one goes in the server's block size
 * when it asks for a smaller one (§2.5; the byte offset stays, the block
 * number follows from it). */
static int next_block1(coap_client_req_t *r, coap_exch_peer_t *peer, const coap_block_t *b1,
                       uint64_t now) {
  coap_client_block_t *b = r->blk;
  b->sent += b->in_flight;
  if (b1 && b1->szx < b->szx1) b->szx1 = b1->szx;
  return went_out(send_block1(r, peer, now));
}

static int too_large_answer(coap_client_req_t *r, coap_exch_peer_t *peer, const coap_msg_t *msg,
                            int has_b1, const coap_block_t *b1, uint64_t now, const char **detail) {
  coap_client_block_t *b = r->blk;
  /* A smaller SZX in the 4.13 asks for smaller blocks: start over in
   * those (the size only goes down, so this ends). */
  if (has_b1 && b1->szx < b->szx1) {
    b->szx1 = b1->szx;
    b->sent = 0;
    return went_out(send_block1(r, peer, now));
  }
  int64_t size1 = coap_msg_get_uint(msg, COAP_OPTION_SIZE1, -1);
  if (size1 >= 0)
    *detail = say(r,
                  "the server takes request bodies of at most %lld bytes (Size1); this one "
                  "is %zu bytes",
                  (long long)size1, b->body_len);
  else
    *detail = say(r, "the server refused the %zu-byte body as too large at block %zu", b->body_len,
                  b->sent / coap_block_size(b->szx1));
  return 0;
}

static int send_answer(coap_client_req_t *r, coap_exch_peer_t *peer, const coap_msg_t *msg,
                       uint64_t now, const char **detail) {
  coap_client_block_t *b = r->blk;
  coap_block_t b1;
  int has_b1 = find_block(msg, COAP_OPTION_BLOCK1, &b1);
  if (has_b1 < 0) return COAP_E_BAD_RESPONSE;
  size_t num = b->sent / coap_block_size(b->szx1);
  if (msg->code == COAP_CONTINUE) {
    if (b->in_flight_more) return next_block1(r, peer, has_b1 ? &b1 : NULL, now);
    say(r, "the server answered 2.31 Continue to the last block (%zu) of the body", num);
    return COAP_E_BLOCKWISE;
  }
  if (msg->code == COAP_REQUEST_ENTITY_TOO_LARGE)
    return too_large_answer(r, peer, msg, has_b1, &b1, now, detail);
  if (msg->code == COAP_REQUEST_ENTITY_INCOMPLETE) {
    *detail = say(r,
                  "the server is missing blocks of the body (4.08) at block %zu of %zu: it "
                  "may have dropped the transfer's state",
                  num, (b->body_len + coap_block_size(b->szx1) - 1) / coap_block_size(b->szx1));
    return 0;
  }
  if (b->in_flight_more) {
    /* A server storing blocks as they come may answer 2.04 with Block1. */
    if (COAP_CODE_CLASS(msg->code) == 2 && has_b1) return next_block1(r, peer, &b1, now);
    if (COAP_CODE_CLASS(msg->code) == 2) {
      say(r,
          "the server answered %s to block %zu of a %zu-byte body without a Block1 option: "
          "it does not take part in block-wise transfers and may have kept only %zu bytes",
          coap_code_name(msg->code), num, b->body_len, b->sent + b->in_flight);
      return COAP_E_BLOCKWISE;
    }
    *detail = say(r,
                  "the server answered %s to block %zu of the %zu-byte body; the rest was "
                  "not sent",
                  coap_code_name(msg->code), num, b->body_len);
    return 0;
  }
  b->sent += b->in_flight;
  b->phase = FETCHING;
  return fetch_answer(r, peer, msg, now, detail);
}

/* ---- Block2: fetching a body ---- */

static int same_etag(const coap_client_block_t *b, const coap_msg_t *msg) {
  const coap_option_t *e = coap_msg_find_option(msg, COAP_OPTION_ETAG);
  if (!e || !b->has_etag) return !e && !b->has_etag;
  return e->length == b->etag_len && memcmp(e->value, b->etag, b->etag_len) == 0;
}

static void keep_etag(coap_client_block_t *b, const coap_msg_t *msg) {
  const coap_option_t *e = coap_msg_find_option(msg, COAP_OPTION_ETAG);
  b->has_etag = e != NULL;
  b->etag_len = e ? (uint8_t)(e->length < ETAG_MAX ? e->length : ETAG_MAX) : 0;
  if (e) memcpy(b->etag, e->value, b->etag_len);
}

/* The representation changed under the transfer: fetch it again from
 * block 0, a bounded number of times. Only a GET or FETCH can be asked
 * again; another method's response is gone. */
static int restart_fetch(coap_client_req_t *r, coap_exch_peer_t *peer, uint32_t num, uint64_t now) {
  coap_client_block_t *b = r->blk;
  if (b->method != COAP_GET && b->method != COAP_FETCH) {
    say(r,
        "the response changed (another ETag) at block %u; the response to a %s cannot be "
        "fetched again",
        num, coap_code_name(b->method));
    return COAP_E_BLOCKWISE;
  }
  if (++b->restarts > RESTARTS_MAX) {
    say(r,
        "the representation changed (another ETag) during the transfer %d times in a row; "
        "gave up",
        RESTARTS_MAX + 1);
    return COAP_E_BLOCKWISE;
  }
  b->len = 0;
  b->seen2 = 0;
  return went_out(send_block2(r, peer, 0, b->szx2, now));
}

size_t coap_client_reassembly_bytes(const coap_client_t *cl) {
  size_t n = 0;
  for (const coap_client_req_t *r = cl->requests; r; r = r->next)
    n += (r->blk ? r->blk->cap : 0) + coap_client_qb_bytes(r->qb);
  return n;
}

/* ---- invariants (common/invariant.h) ---- */

const char *coap_client_block_broken(const coap_client_block_t *b, const coap_client_t *cl) {
  if (!b->tmpl || b->phase > FETCHING) return "client block-wise: no template, or no phase";
  if (b->sent > b->body_len || (b->phase == SENDING && b->in_flight > b->body_len - b->sent))
    return "client Block1: sent past the body";
  if (b->len > b->cap || (cl->cfg && b->cap > cl->cfg->max_body))
    return "client Block2: a body past its buffer, or a buffer over max_body";
  if (b->szx1 > 6 || b->szx2 > 6 || b->b2_want_szx > 6 || b->etag_len > ETAG_MAX)
    return "client block-wise: a block size or an ETag out of range";
  return NULL;
}

const char *coap_client_transfers_broken(const coap_client_t *cl) {
  const coap_client_req_t *prev = NULL;
  size_t bytes = 0;
  for (const coap_client_req_t *r = cl->requests; r; prev = r, r = r->next) {
    if (r->prev != prev) return "client requests: prev is not the request before (or a loop)";
    if (r->cl != cl) return "client requests: a request of another client";
    const char *why = r->blk ? coap_client_block_broken(r->blk, cl) : NULL;
    if (!why && r->qb) why = coap_client_qb_broken(r->qb, r);
    if (!why) why = coap_client_obs_broken(r);
    if (why) return why;
    bytes += (r->blk ? r->blk->cap : 0) + coap_client_qb_bytes(r->qb);
  }
  if (cl->cfg && bytes > cl->cfg->max_reassembly)
    return "client: response bodies being fetched hold more than max_reassembly";
  return NULL;
}

/* Would |r|'s buffer at |cap| bytes keep the context's bodies being
 * fetched within max_reassembly? (Counted at each growth only: the
 * buffer doubles, so a transfer looks a few times, not at each block.) */
static int within_reassembly(coap_client_req_t *r, size_t cap) {
  size_t held = coap_client_reassembly_bytes(r->cl) - r->blk->cap;
  return held + cap <= r->cl->cfg->max_reassembly;
}

static int over_reassembly(coap_client_req_t *r, size_t need) {
  size_t max = r->cl->cfg->max_reassembly;
  say(r,
      "the response bodies this client is fetching hold %zu of max_reassembly (%zu bytes): "
      "no room for this one's %zu (raise max_reassembly, or fetch fewer at once)",
      coap_client_reassembly_bytes(r->cl) - r->blk->cap, max, need);
  return COAP_E_TOO_LARGE;
}

static int append(coap_client_req_t *r, const uint8_t *data, size_t n) {
  coap_client_block_t *b = r->blk;
  size_t max = r->cl->cfg->max_body;
  if (b->len + n > max) {
    say(r, "the response body is larger than max_body (%zu bytes)", max);
    return COAP_E_TOO_LARGE;
  }
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : b->size2 > BODY_CAP_MIN ? b->size2 : BODY_CAP_MIN;
    while (cap < b->len + n) cap *= 2;
    if (cap > max) cap = max;
    /* Short of room: no spare capacity, only what is there. */
    if (!within_reassembly(r, cap)) cap = b->len + n;
    if (!within_reassembly(r, cap)) return over_reassembly(r, cap);
    uint8_t *p = realloc(b->buf, cap);
    if (!p) return COAP_E_NOMEM;
    b->buf = p;
    b->cap = cap;
    /* The list was walked to count the bodies: walk it for its invariants too. */
    COAPS_INVARIANT_HOLDS(coap_client_transfers_broken(r->cl));
  }
  if (n) memcpy(b->buf + b->len, data, n);
  b->len += n;
  return 0;
}

/* An answer with no Block2 where a block was asked for, or with another
 * code than block 0's: the server ended the transfer. */
static int fetch_ended(coap_client_req_t *r, const coap_msg_t *msg, uint32_t num,
                       const char **detail) {
  coap_client_block_t *b = r->blk;
  if (COAP_CODE_CLASS(msg->code) == 2) {
    say(r, "the server answered %s without the block asked for (block %u, after %zu bytes)",
        coap_code_name(msg->code), num, b->len);
    return COAP_E_BLOCKWISE;
  }
  *detail = say(r,
                "the server answered %s to the request for block %u; the body stopped after "
                "%zu bytes",
                coap_code_name(msg->code), num, b->len);
  b->len = 0;
  return 0;
}

/* The first block of a representation: its code and ETag bind the rest;
 * Size2 tells early a body too large to take. */
static int first_block(coap_client_req_t *r, const coap_msg_t *msg) {
  coap_client_block_t *b = r->blk;
  b->seen2 = 1;
  b->code = msg->code;
  keep_etag(b, msg);
  int64_t size2 = coap_msg_get_uint(msg, COAP_OPTION_SIZE2, -1);
  if (size2 > (int64_t)r->cl->cfg->max_body) {
    say(r, "the server announces a body of %lld bytes (Size2), over max_body (%zu bytes)",
        (long long)size2, r->cl->cfg->max_body);
    return COAP_E_TOO_LARGE;
  }
  if (size2 > 0 && !within_reassembly(r, (size_t)size2)) return over_reassembly(r, (size_t)size2);
  if (size2 > 0) b->size2 = (size_t)size2;
  return 0;
}

static int fetch_answer(coap_client_req_t *r, coap_exch_peer_t *peer, const coap_msg_t *msg,
                        uint64_t now, const char **detail) {
  coap_client_block_t *b = r->blk;
  uint32_t asked = b->seen2 ? (uint32_t)(b->len >> (b->szx2 + 4)) : 0;
  coap_block_t b2;
  int has_b2 = find_block(msg, COAP_OPTION_BLOCK2, &b2);
  if (has_b2 < 0) {
    say(r, "the Block2 option of the answer to block %u is malformed", asked);
    return COAP_E_BAD_RESPONSE;
  }
  /* Not block-wise, or all of it in the first block: the message is the body. */
  if (!b->seen2 && (!has_b2 || (b2.num == 0 && !b2.more))) return 0;
  if (!has_b2 || (b->seen2 && msg->code != b->code)) return fetch_ended(r, msg, asked, detail);
  int rc;
  if (!b->seen2) {
    if ((rc = first_block(r, msg)) < 0) return rc;
  } else if (!same_etag(b, msg)) {
    return restart_fetch(r, peer, b2.num, now);
  }
  size_t size = coap_block_size(b2.szx);
  if (((uint64_t)b2.num << (b2.szx + 4)) != b->len) {
    say(r, "asked for the block at byte %zu, got block %u of %zu bytes", b->len, b2.num, size);
    return COAP_E_BLOCKWISE;
  }
  if (msg->payload_len > size || (b2.more && msg->payload_len != size)) {
    say(r, "block %u carries %zu bytes, not the %zu of its block size", b2.num, msg->payload_len,
        size);
    return COAP_E_BLOCKWISE;
  }
  if ((rc = append(r, msg->payload, msg->payload_len)) < 0) return rc;
  if (!b2.more) {
    b->reassembled = 1;
    return 0;
  }
  /* The server's block size from now on (§2.4); the offset decides the number. */
  b->szx2 = b2.szx;
  if ((b->len >> (b2.szx + 4)) > BLOCK_NUM_MAX) {
    say(r, "the body goes past 2^20 blocks of %zu bytes", size);
    return COAP_E_BLOCKWISE;
  }
  return went_out(send_block2(r, peer, (uint32_t)(b->len >> (b2.szx + 4)), b2.szx, now));
}

/* ---- entry points ---- */

int coap_client_block_wanted(const coap_client_req_t *r, const coap_msg_t *msg) {
  if (msg->code == COAP_REQUEST_ENTITY_TOO_LARGE) return r->payload_len > 16;
  coap_block_t b2;
  return find_block(msg, COAP_OPTION_BLOCK2, &b2) != 0 && (b2.num || b2.more);
}

/* A whole request answered 4.13 "is a hint for the client to try sending
 * Block1" (§2.5), in the size of the 4.13's Block1 if it has one: once. */
static int retry_in_blocks(coap_client_req_t *r, coap_exch_peer_t *peer, const coap_msg_t *req,
                           const coap_msg_t *msg, uint64_t now) {
  coap_client_block_t *b = r->blk;
  coap_block_t b1;
  size_t size = r->block_size;
  if (r->payload_len - 1 < size) size = r->payload_len - 1;
  int64_t size1 = coap_msg_get_uint(msg, COAP_OPTION_SIZE1, -1);
  if (size1 >= 16 && (uint64_t)size1 < size) size = (size_t)size1;
  if (find_block(msg, COAP_OPTION_BLOCK1, &b1) == 1) size = coap_block_size(b1.szx);
  coap_msg_t m;
  int rc = from_template(b, &m, 0);
  if (rc < 0) return rc;
  int szx = coap_client_block1_plan(r->cl, r->proto, &m, req->payload_len, (uint16_t)size);
  if (szx < 0) return szx;
  if ((rc = start_sending(r, b, req->payload, req->payload_len, (uint8_t)szx)) < 0) return rc;
  /* The body is copied: the template keeps the options only. */
  b->tmpl_len = (size_t)(req->payload - b->tmpl) - 1;
  if ((rc = tag_if_needed(r, b)) < 0) return rc;
  return went_out(send_block1(r, peer, now));
}

/* Block state for a request sent whole whose answer calls for it. */
static int adopt(coap_client_req_t *r, coap_exch_out_t *out, const coap_msg_t *msg, uint64_t now) {
  size_t len;
  const uint8_t *bytes = coap_exch_out_bytes(out, &len);
  coap_client_block_t *b = block_new(r, bytes, len);
  if (!b) return COAP_E_NOMEM;
  b->exchanges = 1;
  r->blk = b;
  if (msg->code != COAP_REQUEST_ENTITY_TOO_LARGE) {
    b->phase = FETCHING;
    return 0;
  }
  coap_msg_t req;
  if (coap_msg_parse(&req, b->tmpl, b->tmpl_len) < 0) return COAP_E_INTERNAL;
  return retry_in_blocks(r, coap_exch_out_peer(out), &req, msg, now);
}

int coap_client_block_response(coap_client_req_t *r, coap_exch_out_t *out, const coap_msg_t *msg,
                               uint64_t now, const char **detail) {
  *detail = NULL;
  coap_client_t *cl = r->cl;
  cl->last_error[0] = '\0';
  int rc = r->blk ? 0 : adopt(r, out, msg, now);
  if (rc == 0) {
    coap_exch_peer_t *peer = coap_exch_out_peer(out);
    if (r->blk->phase == SENDING)
      rc = send_answer(r, peer, msg, now, detail);
    else
      rc = fetch_answer(r, peer, msg, now, detail);
  }
  /* A failure's reason, when there is one, is what say() left. (Not after
   * 1: the transfer may have ended already.) */
  if (rc < 0 && cl->last_error[0]) *detail = cl->last_error;
  return rc;
}

void coap_client_block_result(const coap_client_block_t *b, const uint8_t **body, size_t *len,
                              unsigned *exchanges) {
  *body = b->reassembled ? (b->buf ? b->buf : (const uint8_t *)"") : NULL;
  *len = b->reassembled ? b->len : 0;
  *exchanges = b->exchanges;
}

void coap_client_block_free(coap_client_block_t *b) {
  if (!b) return;
  free(b->tmpl);
  free(b->body);
  free(b->buf);
  free(b);
}
