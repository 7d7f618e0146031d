/* Q-Block1 and Q-Block2 (RFC 9177), client side: block-wise transfer
 * without lock-step. A body goes out as bursts of MAX_PAYLOADS NON
 * requests, the server's 2.31 Continue (or NON_TIMEOUT) releasing the
 * next burst and its 4.08 naming missing blocks in a CBOR sequence
 * (application/missing-blocks+cbor-seq, 272); a response body comes as
 * bursts of NON responses, the client asking for the next set (Q-Block2
 * with M) or for the blocks missing (one request, several Q-Block2
 * options). The caller sees one request and one reply, as with RFC 7959.
 *
 * Every request of a transfer has a token of its own, but the server may
 * answer with the token of an earlier one (libcoap answers every block
 * with the first request's token), so the exchanges of a transfer stay
 * registered (on_response returns 1) and any answer on any of them feeds
 * the same state; the first and the latest OUTS_MAX - 1 are kept.
 *
 * A server that does not know Q-Block answers 4.02 (Bad Option, the
 * options are critical): the request is then sent again the RFC 7959
 * way (Block1/Block2), which costs one round trip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "common/invariant.h"

#define QB_MP_DEFAULT 10
#define QB_MP_MAX 16 /* a DTLS session holds 16 datagrams until its handshake ends */
#define QB_NON_TIMEOUT_DEFAULT 2000
#define QB_NON_MAX_RETRANSMIT 4
#define QB_SEND_WAITS 6 /* silent NON_TIMEOUTs before a body is given up */
/* Silent waits (NON_RECEIVE_TIMEOUT each) a GET's blocks get once the
 * server has sent some: a gap is asked for by one small request a wait,
 * and with 10 % loss each way a request or its block is lost 19 % of the
 * time; NON_MAX_RETRANSMIT waits (0.19^5, 2.5e-4 a gap) ended about one
 * 200-block GET in 170 with COAP_E_TIMEOUT on a server alive and
 * answering. 12 waits: 2e-9 a gap. A server that never answered still
 * gets NON_MAX_RETRANSMIT. */
#define QB_FETCH_WAITS_LIVE 12
#define QB_OUTS_MAX 40
#define QB_MISSING_PER_REQUEST 16 /* Q-Block2 options in one request */
#define QB_RESTARTS_MAX 3
#define QB_ETAG_MAX 8
#define QB_BLOCK_NUM_MAX ((1u << 20) - 1)
#define COAP_FORMAT_MISSING_BLOCKS 272

enum { QB_SEND, QB_FETCH };

/* The transfer ended inside a send (see send_msg): returned up the call
 * chain, whose every frame then touches neither the transfer nor its
 * request again. Never seen outside this file. */
#define QB_ENDED (-1000)

/* One send in progress. The message layer may deliver the answer inside
 * coap_exch_request (a program's own transport that hands the datagram
 * to a server and its answer back at once): the exchange is then
 * answered (and kept or released by the answer's handling) before the
 * send has returned to register it. Nested sends stack up. */
typedef struct qb_send {
  coap_exch_out_t *out; /* set by the message layer before it transmits */
  int answered;         /* its answer was handled inside the send */
  struct qb_send *outer;
} qb_send_t;

struct coap_client_qb {
  coap_client_req_t *r;
  uint8_t *tmpl; /* the request's options as first built (no payload) */
  size_t tmpl_len;
  uint8_t dir, szx, orig_type, progress, probed, con_probe;
  uint16_t mp;
  uint32_t non_timeout;
  coap_timer_t timer;
  unsigned tries, exchanges, restarts;
  coap_exch_out_t *outs[QB_OUTS_MAX];
  size_t n_outs;
  coap_exch_out_t *in_cb; /* the exchange whose answer is being handled */
  coap_exch_out_t *probe; /* the first request (CON) while it may still be retransmitted */
  uint8_t probe_pending;
  /* Q-Block1: the body, its blocks, the end of the burst in flight. */
  uint8_t *body;
  size_t body_len;
  uint32_t nblocks, burst_end;
  uint8_t final_sent;
  /* Q-Block2: the body so far (random access), which blocks came, how
   * many blocks there are (0: not known yet), the blocks asked for. */
  uint8_t *buf, *got;
  size_t cap, got_cap;
  uint32_t total, have, asked_upto;
  uint32_t upto; /* 1 + the highest block number taken */
  uint8_t seen, code, has_etag, etag_len, reassembled;
  uint8_t last_seen; /* the block with M=0 came: total and body_size are the server's word */
  uint8_t etag[QB_ETAG_MAX];
  size_t body_size;   /* bytes, once the last block came */
  unsigned check_ops; /* blocks taken since the last invariant walk */
  /* Sends in progress (innermost first), how many, and whether the
   * transfer was ended (coap_client_qb_free) inside one: then it is freed
   * when the outermost send returns. */
  qb_send_t *sending;
  unsigned busy;
  uint8_t ended;
};

static void qb_release(coap_client_qb_t *q);

/* ---- words ---- */

#define say(r, ...) coap_client_say((r), "q-block", __VA_ARGS__)

/* ---- the exchanges of a transfer ---- */

static void outs_remove(coap_client_qb_t *q, coap_exch_out_t *out) {
  if (q->probe == out) q->probe = NULL;
  for (size_t i = 0; i < q->n_outs; i++)
    if (q->outs[i] == out) {
      memmove(&q->outs[i], &q->outs[i + 1], (q->n_outs - i - 1) * sizeof q->outs[0]);
      q->n_outs--;
      return;
    }
}

/* Keep |out| registered; the oldest but the first give way. */
static void outs_add(coap_client_qb_t *q, coap_exch_out_t *out) {
  if (q->n_outs == QB_OUTS_MAX) {
    coap_exch_out_t *old = q->outs[1];
    outs_remove(q, old);
    coap_exch_cancel(q->r->cl->exch, old);
  }
  q->outs[q->n_outs++] = out;
}

static coap_exch_peer_t *peer_of(coap_client_req_t *r) {
  coap_peer_t *p = coap_peer_table_find(r->cl->peers, r->ep, &r->dest);
  return p ? &p->exch : NULL;
}

/* The request again from the template: NON, no token yet, no block
 * options. */
static int from_template(const coap_client_qb_t *q, coap_msg_t *m) {
  if (coap_msg_parse(m, q->tmpl, q->tmpl_len) < 0) return COAP_E_INTERNAL;
  m->token_len = 0;
  m->type = COAP_TYPE_NON;
  coap_msg_remove_option(m, COAP_OPTION_BLOCK1);
  coap_msg_remove_option(m, COAP_OPTION_BLOCK2);
  coap_msg_remove_option(m, COAP_OPTION_Q_BLOCK1);
  coap_msg_remove_option(m, COAP_OPTION_Q_BLOCK2);
  coap_msg_set_payload(m, NULL, 0);
  return 0;
}

static int send_msg(coap_client_req_t *r, coap_exch_peer_t *peer, coap_msg_t *m, uint64_t now) {
  coap_client_qb_t *q = r->qb;
  int hard;
  size_t room = coap_client_room(r->cl, r->proto, &hard);
  if (hard && coap_msg_encoded_size(m) > room) {
    say(r, "a Q-Block request of %zu bytes does not fit the %zu bytes a DTLS record holds",
        coap_msg_encoded_size(m), room);
    return COAP_E_TOO_LARGE;
  }
  q->exchanges++;
  qb_send_t s = {NULL, 0, q->sending};
  q->sending = &s;
  q->busy++;
  int rc = coap_exch_request(r->cl->exch, peer, m, r, &s.out, now);
  q->sending = s.outer;
  q->busy--;
  if (q->ended) {
    /* Finished, cancelled or fallen back inside: the last send out frees it. */
    if (!q->busy) qb_release(q);
    return QB_ENDED;
  }
  if (rc < 0) return rc;
  int probe = q->probe_pending;
  q->probe_pending = 0;
  /* Answered inside: its handling kept it (registered) or let it go. */
  if (!s.out || s.answered) return 0;
  outs_add(q, s.out);
  if (probe) q->probe = s.out;
  return 0;
}

/* The transfer's timer: the only thing that ends a transfer whose peer
 * falls silent, so a failure to arm it (no memory for the timer heap)
 * ends the transfer. */
static int arm(coap_client_qb_t *q, uint64_t now, uint32_t ms) {
  int rc = coap_timer_arm(q->r->cl->timers, &q->timer, now + ms);
  if (rc < 0) say(q->r, "no memory for the Q-Block transfer's timer");
  return rc;
}

/* ---- Q-Block1: sending a body ---- */

static int send_block(coap_client_req_t *r, coap_exch_peer_t *peer, uint32_t num, uint64_t now) {
  coap_client_qb_t *q = r->qb;
  coap_msg_t m;
  int rc = from_template(q, &m);
  if (rc < 0) return rc;
  size_t size = coap_block_size(q->szx), off = (size_t)num * size;
  size_t n = q->body_len - off < size ? q->body_len - off : size;
  coap_block_t b = {.num = num, .more = num + 1 < q->nblocks, .szx = q->szx};
  if ((rc = coap_msg_add_block(&m, COAP_OPTION_Q_BLOCK1, &b)) < 0) return rc;
  if ((rc = coap_msg_add_uint(&m, COAP_OPTION_SIZE1, (uint32_t)q->body_len)) < 0) return rc;
  coap_msg_set_payload(&m, q->body + off, n);
  if (!b.more) q->final_sent = 1;
  if (num == 0 && !q->probed) {
    q->probe_pending = 1;
    /* The first block goes as the caller asked (CON by default): a server
     * that does not know Q-Block1 answers a CON with 4.02, a NON with RST
     * or nothing (RFC 7252 §5.4.1), which the client would not hear. */
    m.type = q->orig_type;
    q->probed = 1;
  }
  return send_msg(r, peer, &m, now);
}

/* The next MAX_PAYLOADS blocks from |from|, then wait NON_TIMEOUT for the
 * server's 2.31 (§7.2). */
static int send_burst(coap_client_req_t *r, coap_exch_peer_t *peer, uint32_t from, uint64_t now) {
  coap_client_qb_t *q = r->qb;
  uint32_t end = from + q->mp < q->nblocks ? from + q->mp : q->nblocks;
  q->burst_end = end;
  for (uint32_t n = from; n < end; n++) {
    int rc = send_block(r, peer, n, now);
    if (rc < 0) return rc;
  }
  /* The server answers a set's last block at once: after a quarter of
   * NON_TIMEOUT without that, its last block goes again (the probe;
   * the next burst waits for NON_TIMEOUT, §7.2). */
  return arm(q, now, q->non_timeout / 4 ? q->non_timeout / 4 : 1);
}

/* One CBOR unsigned integer (major type 0) from a sequence. */
static int cbor_uint(const uint8_t **p, const uint8_t *end, uint32_t *v) {
  if (*p >= end || (**p >> 5) != 0) return -1;
  uint8_t ai = **p & 31;
  (*p)++;
  size_t n = ai < 24 ? 0 : ai == 24 ? 1 : ai == 25 ? 2 : ai == 26 ? 4 : 9;
  if (n == 9 || (size_t)(end - *p) < n) return -1;
  uint32_t x = n ? 0 : ai;
  for (size_t i = 0; i < n; i++) x = x << 8 | *(*p)++;
  *v = x;
  return 0;
}

/* 4.08 with the list of missing blocks (RFC 9177 §5): send them again. */
static int resend_missing(coap_client_req_t *r, coap_exch_peer_t *peer, const coap_msg_t *msg,
                          uint64_t now, const char **detail) {
  coap_client_qb_t *q = r->qb;
  if (coap_msg_content_format(msg) != COAP_FORMAT_MISSING_BLOCKS || !msg->payload_len) {
    /* The server dropped the transfer (libcoap does when the blocks it
     * has make more than 4 ranges: "Too many missing blocks"): the body
     * goes again from block 0, a bounded number of times. */
    if (q->restarts++ < QB_RESTARTS_MAX) {
      say(r,
          "the server answered 4.08 without a list of missing blocks: sending the body "
          "again from block 0");
      q->tries = 0;
      int rc = send_burst(r, peer, 0, now);
      return rc < 0 ? rc : 1;
    }
    *detail = say(r,
                  "the server answered 4.08 (Request Entity Incomplete) without a list of "
                  "missing blocks %u times: it dropped the transfer",
                  QB_RESTARTS_MAX + 1);
    return 0;
  }
  const uint8_t *p = msg->payload, *end = msg->payload + msg->payload_len;
  unsigned sent = 0;
  while (p < end) {
    uint32_t num;
    if (cbor_uint(&p, end, &num) < 0 || num >= q->nblocks) {
      say(r,
          "the server's list of missing blocks is malformed or names a block past the "
          "body's %u",
          q->nblocks);
      return COAP_E_BAD_RESPONSE;
    }
    if (sent == 4u * q->mp) break; /* a bounded burst; the server asks again */
    int rc = send_block(r, peer, num, now);
    if (rc < 0) return rc;
    sent++;
  }
  q->tries = 0;
  int rc = arm(q, now, q->non_timeout);
  return rc < 0 ? rc : 1;
}

static int send_answer(coap_client_req_t *r, coap_exch_peer_t *peer, const coap_msg_t *msg,
                       uint64_t now, const char **detail) {
  coap_client_qb_t *q = r->qb;
  if (msg->code == COAP_CONTINUE) {
    coap_block_t b;
    const coap_option_t *o = coap_msg_find_option(msg, COAP_OPTION_Q_BLOCK1);
    if (!o || coap_block_decode(o, &b) < 0) {
      say(r, "2.31 Continue without a valid Q-Block1 option");
      return COAP_E_BAD_RESPONSE;
    }
    /* Only the 2.31 for the burst in flight moves on (a late or
     * repeated one names an older block). */
    if (b.num + 1 < q->burst_end || b.num + 1 >= q->nblocks) return 1;
    q->tries = 0;
    int rc = send_burst(r, peer, b.num + 1, now);
    return rc < 0 ? rc : 1;
  }
  if (msg->code == COAP_REQUEST_ENTITY_INCOMPLETE) return resend_missing(r, peer, msg, now, detail);
  if (COAP_CODE_CLASS(msg->code) == 2 && !q->final_sent) {
    say(r, "the server answered %s before the last block of the %zu-byte body was sent",
        coap_code_name(msg->code), q->body_len);
    return COAP_E_BLOCKWISE;
  }
  const coap_option_t *o2 = coap_msg_find_option(msg, COAP_OPTION_Q_BLOCK2);
  coap_block_t b2;
  if (o2 && coap_block_decode(o2, &b2) == 0 && (b2.more || b2.num)) {
    say(r,
        "the response to the body comes in Q-Block2 blocks, which this client fetches only "
        "for GET");
    return COAP_E_BLOCKWISE;
  }
  if (COAP_CODE_CLASS(msg->code) != 2)
    *detail = say(r, "the server answered %s to the %zu-byte body", coap_code_name(msg->code),
                  q->body_len);
  return 0; /* the final response */
}

/* ---- Q-Block2: fetching a body ---- */

static int request_blocks(coap_client_req_t *r, coap_exch_peer_t *peer, const uint32_t *nums,
                          size_t n, int more, uint64_t now) {
  coap_client_qb_t *q = r->qb;
  coap_msg_t m;
  int rc = from_template(q, &m);
  if (rc < 0) return rc;
  if (!q->probed) {
    q->probe_pending = 1;
    m.type = q->orig_type; /* the first request: see send_block */
    q->probed = 1;
  }
  for (size_t i = 0; i < n; i++) {
    coap_block_t b = {.num = nums[i], .more = (uint8_t)more, .szx = q->szx};
    if ((rc = coap_msg_add_block(&m, COAP_OPTION_Q_BLOCK2, &b)) < 0) return rc;
  }
  if ((rc = send_msg(r, peer, &m, now)) < 0) return rc;
  return arm(q, now, 2 * q->non_timeout); /* NON_RECEIVE_TIMEOUT */
}

static int got(const coap_client_qb_t *q, uint32_t num) {
  return (size_t)(num >> 3) < q->got_cap && (q->got[num >> 3] >> (num & 7)) & 1;
}

/* The blocks below |limit| not come yet, at most |max|. */
static size_t missing_below(const coap_client_qb_t *q, uint32_t limit, uint32_t *out, size_t max) {
  size_t n = 0;
  for (uint32_t i = 0; i < limit && n < max; i++)
    if (!got(q, i)) out[n++] = i;
  return n;
}

/* What the client asks for next: the missing blocks of what was asked,
 * else the next set; 0 when the body is complete. */
static int ask_next(coap_client_req_t *r, coap_exch_peer_t *peer, uint64_t now) {
  coap_client_qb_t *q = r->qb;
  uint32_t limit = q->total && q->total < q->asked_upto ? q->total : q->asked_upto;
  uint32_t miss[QB_MISSING_PER_REQUEST];
  size_t n = missing_below(q, limit, miss,
                           q->mp < QB_MISSING_PER_REQUEST ? q->mp : QB_MISSING_PER_REQUEST);
  /* One request per missing block: RFC 9177 lets one request carry
   * several Q-Block2 options, but libcoap 4.3.5 answers only the first. */
  for (size_t i = 0; i < n; i++) {
    int rc = request_blocks(r, peer, &miss[i], 1, 0, now);
    if (rc < 0 || i + 1 == n) return rc;
  }
  if (q->total && q->have == q->total) return 0;
  /* Sets are aligned on MAX_PAYLOADS (after the probe's block 0, the
   * first set is 1..MAX_PAYLOADS-1). */
  uint32_t next = q->asked_upto;
  if (q->con_probe) {
    /* The CON for block 0 was answered: now the body from block 0 as
     * NON bursts (libcoap answers a CON's sets with CONs, one by one). */
    q->con_probe = 0;
    next = 0;
  }
  q->asked_upto = (next / q->mp + 1) * q->mp;
  return request_blocks(r, peer, &next, 1, 1, now);
}

/* ---- invariants (common/invariant.h) ---- */

/* The exchanges it keeps: within their room, none twice, the probe among
 * them. */
static const char *outs_broken(const coap_client_qb_t *q) {
  if (q->n_outs > QB_OUTS_MAX) return "client Q-Block: more exchanges than QB_OUTS_MAX";
  int probe_kept = !q->probe;
  for (size_t i = 0; i < q->n_outs; i++) {
    if (!q->outs[i]) return "client Q-Block: an empty exchange slot";
    probe_kept |= q->outs[i] == q->probe;
    for (size_t k = i + 1; k < q->n_outs; k++)
      if (q->outs[k] == q->outs[i]) return "client Q-Block: an exchange kept twice";
  }
  return probe_kept ? NULL : "client Q-Block: the probe is not among its exchanges";
}

/* Q-Block2: the blocks counted are the bits set, all below upto, and
 * once the number of blocks is known none past it (a last block that
 * names fewer blocks than came is refused, take_last). */
static const char *got_broken(const coap_client_qb_t *q) {
  if (q->cap > q->r->cl->cfg->max_body) return "client Q-Block2: a buffer over max_body";
  if (q->have > q->upto || (q->total && q->upto > q->total))
    return "client Q-Block2: blocks counted past the body's blocks";
  if (q->last_seen && q->body_size > (size_t)q->total * coap_block_size(q->szx))
    return "client Q-Block2: the body's end past its last block";
  uint32_t set = 0;
  for (size_t i = 0; i < q->got_cap; i++) set += (uint32_t)__builtin_popcount(q->got[i]);
  return set == q->have ? NULL : "client Q-Block2: blocks counted are not the bits set";
}

const char *coap_client_qb_broken(const coap_client_qb_t *q, const coap_client_req_t *r) {
  if (q->r != r) return "client Q-Block: a transfer of another request";
  if (q->dir > QB_FETCH || q->szx > 6 || !q->mp || q->mp > QB_MP_MAX || !q->tmpl)
    return "client Q-Block: a direction, block size or MAX_PAYLOADS out of range";
  if (q->burst_end > q->nblocks || (q->dir == QB_SEND && q->body_len && !q->body))
    return "client Q-Block1: a burst past the body";
  const char *why = outs_broken(q);
  return why ? why : got_broken(q);
}

/* After a block taken: the transfer now and then, at a cost of about its
 * bitmap (invariant.h). */
static void check_sampled(coap_client_qb_t *q) {
  if (coap_invariant_walk_due(&q->check_ops, q->got_cap + q->n_outs))
    COAPS_INVARIANT_HOLDS(coap_client_qb_broken(q, q->r));
}

static size_t reassembly_elsewhere(const coap_client_req_t *r) {
  return coap_client_reassembly_bytes(r->cl) - (r->qb ? r->qb->cap : 0);
}

/* Room for the bytes up to |end|, within max_body and max_reassembly. */
static int make_room(coap_client_req_t *r, size_t end) {
  coap_client_qb_t *q = r->qb;
  size_t max = r->cl->cfg->max_body;
  if (end > max) {
    say(r, "the response body is larger than max_body (%zu bytes)", max);
    return COAP_E_TOO_LARGE;
  }
  if (end <= q->cap) goto bits;
  size_t cap = q->cap ? q->cap : 4096;
  while (cap < end) cap *= 2;
  if (cap > max) cap = max;
  if (reassembly_elsewhere(r) + cap > r->cl->cfg->max_reassembly) cap = end;
  if (reassembly_elsewhere(r) + cap > r->cl->cfg->max_reassembly) {
    say(r,
        "the response bodies this client is fetching leave no room within max_reassembly "
        "(%zu bytes) for this one's %zu",
        r->cl->cfg->max_reassembly, cap);
    return COAP_E_TOO_LARGE;
  }
  uint8_t *p = realloc(q->buf, cap);
  if (!p) return COAP_E_NOMEM;
  q->buf = p;
  q->cap = cap;
  /* The list was walked to count the bodies: walk it for its invariants too. */
  COAPS_INVARIANT_HOLDS(coap_client_transfers_broken(r->cl));
bits:;
  /* A bit per block up to the buffer's end (and the block at |end|). */
  size_t bits = ((q->cap > end ? q->cap : end) >> (q->szx + 4)) / 8 + 1;
  if (bits > q->got_cap) {
    uint8_t *g = realloc(q->got, bits);
    if (!g) return COAP_E_NOMEM;
    memset(g + q->got_cap, 0, bits - q->got_cap);
    q->got = g;
    q->got_cap = bits;
  }
  return 0;
}

static int same_etag(const coap_client_qb_t *q, const coap_msg_t *msg) {
  const coap_option_t *e = coap_msg_find_option(msg, COAP_OPTION_ETAG);
  if (!e || !q->has_etag) return !e && !q->has_etag;
  return e->length == q->etag_len && memcmp(e->value, q->etag, q->etag_len) == 0;
}

/* The first block seen binds the code, the ETag and the block size;
 * Size2 tells early a body too large to take. */
static int first_seen(coap_client_req_t *r, const coap_msg_t *msg, const coap_block_t *b) {
  coap_client_qb_t *q = r->qb;
  const coap_option_t *e = coap_msg_find_option(msg, COAP_OPTION_ETAG);
  q->seen = 1;
  q->code = msg->code;
  q->szx = b->szx;
  q->has_etag = e != NULL;
  q->etag_len = e ? (uint8_t)(e->length < QB_ETAG_MAX ? e->length : QB_ETAG_MAX) : 0;
  if (e) memcpy(q->etag, e->value, q->etag_len);
  int64_t size2 = coap_msg_get_uint(msg, COAP_OPTION_SIZE2, -1);
  if (size2 > (int64_t)r->cl->cfg->max_body) {
    say(r, "the server announces a body of %lld bytes (Size2), over max_body (%zu bytes)",
        (long long)size2, r->cl->cfg->max_body);
    return COAP_E_TOO_LARGE;
  }
  if (size2 > 0) {
    size_t bs = coap_block_size(q->szx);
    q->total = (uint32_t)(((size_t)size2 + bs - 1) / bs);
    return make_room(r, (size_t)size2);
  }
  return 0;
}

/* Nothing of the body kept: its blocks come again. */
static void forget_blocks(coap_client_qb_t *q) {
  q->have = q->total = q->upto = 0;
  q->body_size = 0;
  q->last_seen = 0;
  if (q->got) memset(q->got, 0, q->got_cap);
}

/* The representation changed (another ETag): from block 0 again. */
static int restart(coap_client_req_t *r, coap_exch_peer_t *peer, uint64_t now) {
  coap_client_qb_t *q = r->qb;
  if (++q->restarts > QB_RESTARTS_MAX) {
    say(r,
        "the representation changed (another ETag) during the transfer %d times in a row; "
        "gave up",
        QB_RESTARTS_MAX + 1);
    return COAP_E_BLOCKWISE;
  }
  forget_blocks(q);
  q->seen = 0;
  q->asked_upto = q->mp;
  uint32_t zero = 0;
  int rc = request_blocks(r, peer, &zero, 1, 1, now);
  return rc < 0 ? rc : 1;
}

/* The block with M=0 (|b|, |len| bytes) names the body's end: it must
 * agree with every block taken before it — none past it, not taken
 * before as a block with more to follow, the same end if it came
 * already. Otherwise the count of blocks could never meet the total and
 * the transfer would wait out its timer: it is refused at once. */
static int take_last(coap_client_req_t *r, const coap_block_t *b, size_t len) {
  coap_client_qb_t *q = r->qb;
  size_t end = (size_t)b->num * coap_block_size(q->szx) + len;
  if (q->last_seen) {
    if (end == q->body_size) return 0; /* that block again */
    say(r,
        "the last block (M=0) came twice with different ends: %zu bytes, then %zu; the body "
        "is not one representation",
        q->body_size, end);
    return COAP_E_BLOCKWISE;
  }
  if (q->upto > b->num + 1) {
    say(r,
        "block %u says it is the last (M=0, %u blocks) but block %u came already; the "
        "server's blocks disagree",
        b->num, b->num + 1, q->upto - 1);
    return COAP_E_BLOCKWISE;
  }
  if (got(q, b->num)) {
    say(r, "block %u came as the last (M=0) after it came with more to follow (M=1)", b->num);
    return COAP_E_BLOCKWISE;
  }
  q->total = b->num + 1;
  q->body_size = end;
  q->last_seen = 1;
  return 0;
}

static int fetch_answer(coap_client_req_t *r, coap_exch_peer_t *peer, const coap_msg_t *msg,
                        uint64_t now, const char **detail) {
  coap_client_qb_t *q = r->qb;
  const coap_option_t *o = coap_msg_find_option(msg, COAP_OPTION_Q_BLOCK2);
  coap_block_t b;
  if (!o) {
    /* The whole body in one message, or an error: the final answer. */
    if (!q->seen) return 0;
    if (COAP_CODE_CLASS(msg->code) == 2) {
      say(r, "the server answered %s without Q-Block2 in the middle of the transfer",
          coap_code_name(msg->code));
      return COAP_E_BLOCKWISE;
    }
    *detail =
        say(r, "the server answered %s in the middle of the transfer", coap_code_name(msg->code));
    return 0;
  }
  if (coap_block_decode(o, &b) < 0) {
    say(r, "a malformed Q-Block2 option in the answer");
    return COAP_E_BAD_RESPONSE;
  }
  if (!q->seen && b.num == 0 && !b.more) return 0; /* all of it in one block */
  int rc;
  if (!q->seen) {
    if ((rc = first_seen(r, msg, &b)) < 0) return rc;
  } else if (!q->has_etag && coap_msg_find_option(msg, COAP_OPTION_ETAG)) {
    /* The first blocks came without ETag (libcoap's answer to the CON
     * probe has none): bind the ETag now and keep nothing unbound; the
     * burst brings those blocks again. */
    uint8_t szx = q->szx;
    forget_blocks(q);
    if ((rc = first_seen(r, msg, &b)) < 0) return rc;
    if (b.szx != szx) {
      say(r, "the server changed the block size from %zu to %zu bytes", coap_block_size(szx),
          coap_block_size(b.szx));
      return COAP_E_BLOCKWISE;
    }
  } else if (!same_etag(q, msg)) {
    return restart(r, peer, now);
  } else if (msg->code != q->code || b.szx != q->szx) {
    say(r, "block %u came with %s in %zu-byte blocks; the first one with %s in %zu-byte blocks",
        b.num, coap_code_name(msg->code), coap_block_size(b.szx), coap_code_name(q->code),
        coap_block_size(q->szx));
    return COAP_E_BLOCKWISE;
  }
  size_t bs = coap_block_size(q->szx);
  if (msg->payload_len > bs || (b.more && msg->payload_len != bs) ||
      (q->total && b.num >= q->total) || (q->total && b.num + 1 == q->total && b.more) ||
      (!b.more && q->total && b.num + 1 != q->total)) {
    say(r,
        "block %u carries %zu bytes (M=%u), not what its block size (%zu) and the body's "
        "%u blocks allow",
        b.num, msg->payload_len, b.more, bs, q->total);
    return COAP_E_BLOCKWISE;
  }
  if (!b.more && (rc = take_last(r, &b, msg->payload_len)) < 0) return rc;
  if (!got(q, b.num)) {
    if ((rc = make_room(r, (size_t)b.num * bs + msg->payload_len)) < 0) return rc;
    if (msg->payload_len) memcpy(q->buf + (size_t)b.num * bs, msg->payload, msg->payload_len);
    q->got[b.num >> 3] |= (uint8_t)(1u << (b.num & 7));
    q->have++;
    if (b.num >= q->upto) q->upto = b.num + 1;
    q->progress = 1;
    q->tries = 0;
    check_sampled(q);
  }
  /* Blocks past what was asked (a server sending on by itself). */
  if (b.num >= q->asked_upto) q->asked_upto = (b.num / q->mp + 1) * q->mp;
  /* (Every block taken is below total and the last came with M=0, so the
   * count meets the total exactly when the body is whole.) */
  if (q->last_seen && q->have == q->total) {
    q->reassembled = 1;
    return 0;
  }
  /* The end of a set, or of the body: ask for the gaps or the next set;
   * the same once the last gap of a set is filled (waiting would only
   * delay the next set). Otherwise more of the set is on its way. */
  uint32_t limit = q->total && q->total < q->asked_upto ? q->total : q->asked_upto;
  uint32_t first_gap;
  if (b.num + 1 != limit && missing_below(q, limit, &first_gap, 1)) {
    /* The rest of the set follows back to back: when it stops short of
     * the set's end (that block lost), ask after a quarter of NON_TIMEOUT
     * rather than NON_RECEIVE_TIMEOUT, which is for a request or a whole
     * set lost. */
    rc = arm(q, now, q->non_timeout / 4 ? q->non_timeout / 4 : 1);
    return rc < 0 ? rc : 1;
  }
  rc = ask_next(r, peer, now);
  return rc < 0 ? rc : 1;
}

/* ---- the timer: NON_TIMEOUT (sending) / NON_RECEIVE_TIMEOUT (fetching) ---- */

static unsigned max_waits(const coap_client_qb_t *q) {
  if (q->dir == QB_SEND) return QB_SEND_WAITS;
  return q->seen ? QB_FETCH_WAITS_LIVE : QB_NON_MAX_RETRANSMIT;
}

static void qb_timer(coap_timer_t *t, uint64_t now, void *user) {
  (void)t;
  coap_client_req_t *r = user;
  coap_client_qb_t *q = r->qb;
  coap_exch_peer_t *peer = peer_of(r);
  int rc = COAP_E_TIMEOUT;
  if (peer && ++q->tries <= max_waits(q)) {
    if (q->dir == QB_FETCH) {
      /* Nothing for a while: ask again for what is missing (or the set
       * asked last, again). */
      if (!q->seen) {
        uint32_t zero = 0;
        rc = request_blocks(r, peer, &zero, 1, 1, now);
      } else {
        /* What is missing of what was asked, else the next set: never a
         * set that is all here again (when only its repeated last block
         * could move the transfer on, losing that block or the request
         * again and again asked for the same set until the waits ran
         * out, and the next set was never asked for). */
        rc = ask_next(r, peer, now);
      }
    } else if (q->tries % 3 == 0 && q->burst_end < q->nblocks) {
      /* Still nothing: the 2.31 was lost (libcoap does not answer a block
       * it has again), the next burst goes (§7.2). */
      rc = send_burst(r, peer, q->burst_end, now);
    } else {
      /* No 2.31 (or final answer) within NON_TIMEOUT: first the burst's
       * last block again, which the server answers with 2.31 or the list
       * of what it misses. (Going on at once would leave gaps behind, and
       * libcoap keeps 4 ranges of blocks at most: 4.08 "Too many missing
       * blocks".) */
      rc = send_block(r, peer, q->burst_end - 1, now);
      if (rc == 0) rc = arm(q, now, q->non_timeout);
    }
    if (rc == 0 || rc == QB_ENDED) return;
  }
  if (rc == COAP_E_TIMEOUT)
    say(r, "no answer to the Q-Block transfer after %u waits of %u ms", max_waits(q) + 1,
        q->dir == QB_FETCH ? 2 * q->non_timeout : q->non_timeout);
  coap_client_req_finish(r, NULL, rc, r->cl->last_error);
}

/* ---- entry points ---- */

int coap_client_qb_wanted(const coap_client_t *cl, const coap_request_opts_t *o, int block1) {
  int use = o->qblock ? o->qblock > 0 : cl->cfg->qblock_client;
  if (!use || o->observe || o->no_response) return 0;
  if (o->method == COAP_GET) return 1;
  return block1 && (o->method == COAP_PUT || o->method == COAP_POST);
}

static coap_client_qb_t *qb_new(coap_client_req_t *r, const coap_msg_t *msg) {
  coap_client_t *cl = r->cl;
  coap_client_qb_t *q = calloc(1, sizeof(*q));
  if (!q) return NULL;
  coap_msg_t m = *msg;
  coap_msg_set_payload(&m, NULL, 0);
  size_t n = coap_msg_encoded_size(&m);
  if (!(q->tmpl = malloc(n)) || coap_msg_encode(&m, q->tmpl, n) < 0) {
    free(q->tmpl);
    free(q);
    return NULL;
  }
  q->tmpl_len = n;
  q->r = r;
  q->orig_type = msg->type;
  uint16_t mp = cl->cfg->qblock_max_payloads ? cl->cfg->qblock_max_payloads : QB_MP_DEFAULT;
  q->mp = mp > QB_MP_MAX ? QB_MP_MAX : mp;
  q->non_timeout =
      cl->cfg->qblock_non_timeout_ms ? cl->cfg->qblock_non_timeout_ms : QB_NON_TIMEOUT_DEFAULT;
  coap_timer_init(&q->timer, qb_timer, r);
  return q;
}

int coap_client_qb_start(coap_client_req_t *r, coap_exch_peer_t *peer, const coap_msg_t *msg,
                         const uint8_t *payload, size_t len, uint8_t szx, uint64_t now) {
  coap_client_qb_t *q = qb_new(r, msg);
  if (!q) return COAP_E_NOMEM;
  r->qb = q;
  r->out = NULL; /* the transfer's exchanges are the state's */
  int rc;
  if (len) {
    q->dir = QB_SEND;
    q->szx = szx;
    if (!(q->body = malloc(len))) {
      rc = COAP_E_NOMEM;
      goto fail;
    }
    memcpy(q->body, payload, len);
    q->body_len = len;
    q->nblocks = (uint32_t)((len + coap_block_size(szx) - 1) / coap_block_size(szx));
    /* RFC 9177 §4.1: the blocks of one body carry one Request-Tag. */
    coap_msg_t m;
    uint8_t tag[8];
    size_t n = 0;
    if ((rc = from_template(q, &m)) < 0) goto fail;
    if (!coap_msg_find_option(&m, COAP_OPTION_REQUEST_TAG)) {
      for (int shift = 56; shift >= 0; shift -= 8)
        if (n || (r->id >> shift) & 0xFF || shift == 0) tag[n++] = (uint8_t)(r->id >> shift);
      if ((rc = coap_msg_add_option(&m, COAP_OPTION_REQUEST_TAG, tag, n)) < 0) goto fail;
      size_t sz = coap_msg_encoded_size(&m);
      uint8_t *t = malloc(sz);
      if (!t || coap_msg_encode(&m, t, sz) < 0) {
        free(t);
        rc = COAP_E_NOMEM;
        goto fail;
      }
      free(q->tmpl);
      q->tmpl = t;
      q->tmpl_len = sz;
    }
    rc = send_burst(r, peer, 0, now);
  } else {
    q->dir = QB_FETCH;
    q->szx = coap_block_szx_for(r->block_size);
    /* A CON asks for block 0 alone (the probe: 4.02 from a server without
     * Q-Block2; an answer to a CON would come as CONs, lock-step); the
     * sets after it go NON. A NON asks for the first set at once. */
    int con = q->orig_type == COAP_TYPE_CON;
    q->asked_upto = con ? 1 : q->mp;
    q->con_probe = (uint8_t)con;
    uint32_t zero = 0;
    rc = request_blocks(r, peer, &zero, 1, !con, now);
  }
  if (rc == 0 || rc == QB_ENDED) return 0; /* (answered and ended inside: done) */
fail:
  coap_client_qb_stop(r->cl, q);
  coap_client_qb_free(q);
  r->qb = NULL;
  return rc;
}

/* 4.02 to Q-Block: the server does not know it. The request goes again,
 * the RFC 7959 way. Returns 1 (sent) or an error. */
static int fall_back(coap_client_req_t *r, coap_exch_peer_t *peer, uint64_t now) {
  coap_client_qb_t *q = r->qb;
  coap_client_t *cl = r->cl;
  coap_msg_t m;
  int rc = from_template(q, &m);
  if (rc < 0) return rc;
  coap_msg_remove_option(&m, COAP_OPTION_REQUEST_TAG);
  m.type = q->orig_type;
  unsigned before = q->exchanges;
  r->qb = NULL;
  coap_client_qb_stop(cl, q);
  coap_logf(cl->log, COAP_LOG_INFO, NULL,
            "q-block: the server does not know Q-Block (4.02): sending the RFC 7959 way");
  if (q->dir == QB_SEND) {
    int szx = coap_client_block1_plan(cl, r->proto, &m, q->body_len, r->block_size);
    rc = szx < 0 ? szx
                 : coap_client_block1_start(r, peer, &m, q->body, q->body_len, (uint8_t)szx, now);
  } else {
    if (r->block_size < 1024) {
      coap_block_t b2 = {.num = 0, .more = 0, .szx = coap_block_szx_for(r->block_size)};
      if ((rc = coap_msg_add_block(&m, COAP_OPTION_BLOCK2, &b2)) < 0) goto done;
    }
    rc = coap_exch_request(cl->exch, peer, &m, r, &r->out, now);
  }
  (void)before;
done:
  coap_client_qb_free(q);
  return rc < 0 ? rc : 1;
}

int coap_client_qb_response(coap_client_req_t *r, coap_exch_out_t *out, const coap_msg_t *msg,
                            int err, uint64_t now) {
  coap_client_qb_t *q = r->qb;
  outs_remove(q, out);
  for (qb_send_t *s = q->sending; s; s = s->outer)
    if (s->out == out) s->answered = 1;
  if (err == COAP_E_TIMEOUT || err == COAP_E_CANCELLED) {
    /* One exchange of the transfer ended (its response timeout): the
     * transfer's own timer decides. */
    return 0;
  }
  if (err) {
    /* ICMP unreachable, an RST to the CON probe, the session failing. */
    coap_client_req_finish(r, NULL, err, NULL);
    return 0;
  }
  coap_exch_peer_t *peer = coap_exch_out_peer(out);
  const char *detail = NULL;
  /* The server answers: the CON probe's retransmissions must stop (a
   * block 0 coming again late looks like a new body to libcoap). */
  if (q->probe && q->probe != out && msg->code != COAP_BAD_OPTION) {
    coap_exch_out_t *probe = q->probe;
    outs_remove(q, probe);
    coap_exch_cancel(r->cl->exch, probe);
  }
  if (q->probe != out || msg->code != COAP_BAD_OPTION) q->probe = NULL;
  r->cl->last_error[0] = '\0';
  int rc;
  coap_exch_out_t *outer_cb = q->in_cb; /* an answer handled inside a send of that one's */
  q->in_cb = out;
  if (msg->code == COAP_BAD_OPTION && !q->seen && !q->progress) {
    rc = fall_back(r, peer, now);
    if (rc == 1) return 0; /* r->qb is gone */
    detail = r->cl->last_error[0] ? r->cl->last_error : NULL;
    coap_client_req_finish(r, NULL, rc, detail);
    return 0;
  }
  if (q->dir == QB_SEND)
    rc = send_answer(r, peer, msg, now, &detail);
  else
    rc = fetch_answer(r, peer, msg, now, &detail);
  if (rc == QB_ENDED) return 0; /* |out| ends with it; |q| and |r| are gone */
  q->in_cb = outer_cb;
  if (rc == 1) {
    outs_add(q, out);
    return 1;
  }
  if (rc < 0 && r->cl->last_error[0]) detail = r->cl->last_error;
  coap_client_req_finish(r, rc < 0 ? NULL : msg, rc < 0 ? rc : 0, detail);
  return 0;
}

void coap_client_qb_stop(coap_client_t *cl, coap_client_qb_t *q) {
  if (!q) return;
  coap_timer_cancel(cl->timers, &q->timer);
  for (size_t i = 0; i < q->n_outs; i++)
    if (q->outs[i] != q->in_cb) coap_exch_cancel(cl->exch, q->outs[i]);
  q->n_outs = 0;
}

void coap_client_qb_result(const coap_client_qb_t *q, const uint8_t **body, size_t *len,
                           unsigned *exchanges) {
  *body = q->reassembled ? (q->buf ? q->buf : (const uint8_t *)"") : NULL;
  *len = q->reassembled ? q->body_size : 0;
  *exchanges = q->exchanges;
}

size_t coap_client_qb_bytes(const coap_client_qb_t *q) {
  return q ? q->cap : 0;
}

void coap_client_qb_free(coap_client_qb_t *q) {
  if (!q) return;
  if (q->busy) {
    q->ended = 1; /* inside a send of its own: send_msg frees it */
    return;
  }
  qb_release(q);
}

static void qb_release(coap_client_qb_t *q) {
  free(q->tmpl);
  free(q->body);
  free(q->buf);
  free(q->got);
  free(q);
}
