/* Client requests: URI → destination and options, one request object per
 * call, the reply handed to the caller exactly once. Block-wise transfers
 * are in block.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "common/abi.h"
#include "common/diag.h"
#include "common/invariant.h"

static void request_opts_init(coap_request_opts_t *o, uint8_t method, const char *uri) {
  memset(o, 0, sizeof(*o));
  o->method = method;
  o->uri = uri;
  o->confirmable = 1;
  o->content_format = COAP_FORMAT_NONE;
  o->accept = COAP_FORMAT_NONE;
}

int coap_request_opts_init_versioned(int version, coap_request_opts_t *o, uint8_t method,
                                     const char *uri) {
  if (!o) return COAP_E_INVALID_ARG;
  coap_request_opts_t latest;
  request_opts_init(&latest, method, uri);
  return coap_abi_write(coap_abi_struct(COAP_ABI_REQUEST_OPTS), version, &latest, o, NULL,
                        "coap_request_opts_init");
}

/* Finished request records are kept for the next requests, as the
 * exchange layer keeps its message records: a client sending requests
 * steadily allocates nothing per request. The bound keeps a burst from
 * pinning its peak. */
#define REQ_FREE_MAX 256

static coap_client_req_t *req_alloc(coap_client_t *cl) {
  coap_client_req_t *r = cl->req_free;
  if (!r) return calloc(1, sizeof(*r));
  cl->req_free = r->next;
  cl->n_req_free--;
  memset(r, 0, sizeof(*r));
  return r;
}

/* A record released twice would be handed out twice: where invariants are
 * checked, the newest records of the pool (where a record released a
 * moment ago sits) are walked first, and a short pool is counted. */
#define REQ_POOL_WALK 16
static void check_req_pool(const coap_client_t *cl, const coap_client_req_t *r) {
  if (!COAPS_CHECKING_INVARIANTS) return;
  unsigned n = 0;
  const coap_client_req_t *f = cl->req_free;
  for (; f && n < REQ_POOL_WALK; f = f->next, n++) COAPS_INVARIANT(f != r); /* released twice */
  COAPS_INVARIANT(cl->n_req_free <= REQ_FREE_MAX);
  if (!f) COAPS_INVARIANT(n == cl->n_req_free);
}

static void req_release(coap_client_t *cl, coap_client_req_t *r) {
  check_req_pool(cl, r);
  if (cl->n_req_free >= REQ_FREE_MAX) {
    free(r);
    return;
  }
  r->next = cl->req_free;
  cl->req_free = r;
  cl->n_req_free++;
}

static void req_unlink(coap_client_req_t *r) {
  coap_client_t *cl = r->cl;
  coap_timer_cancel(cl->timers, &r->deadline);
  if (r->prev)
    r->prev->next = r->next;
  else
    cl->requests = r->next;
  if (r->next) r->next->prev = r->prev;
}

void coap_client_reply_init(coap_reply_t *reply, const coap_msg_t *msg) {
  memset(reply, 0, sizeof(*reply));
  reply->content_format = COAP_FORMAT_NONE;
  reply->exchanges = 1;
  if (!msg) return;
  reply->code = msg->code;
  reply->content_format = coap_msg_content_format(msg);
  reply->msg = msg;
  reply->payload = msg->payload;
  reply->payload_len = msg->payload_len;
  /* An Observe value longer than 3 bytes is out of the option's range:
   * treated as absent (RFC 7252 §5.4.3). */
  const coap_option_t *obs = coap_msg_find_option(msg, COAP_OPTION_OBSERVE);
  if (obs && obs->length <= 3) {
    reply->has_observe = 1;
    reply->observe = (uint32_t)coap_option_uint(obs);
  }
}

void coap_client_req_finish(coap_client_req_t *r, const coap_msg_t *msg, int err,
                            const char *detail) {
  coap_reply_t reply;
  coap_client_reply_init(&reply, err == 0 ? msg : NULL);
  reply.status = err;
  /* (status 0 without a message: No-Response silence, code 0.) */
  if (err && (reply.diag = r->cl->ops->current_diag(r->cl->ctx, err)))
    reply.detail = reply.diag->explanation;
  if (!reply.detail) reply.detail = detail;
  /* The last call of an observation: observing stays 0. */
  if (r->obs) coap_client_obs_free(r);
  /* The body lives in the block state until the callback has returned. */
  coap_client_block_t *blk = r->blk;
  r->blk = NULL;
  coap_client_qb_t *qb = r->qb;
  r->qb = NULL;
  if (qb) {
    const uint8_t *body;
    size_t len;
    coap_client_qb_stop(r->cl, qb);
    coap_client_qb_result(qb, &body, &len, &reply.exchanges);
    if (body && err == 0) {
      reply.payload = body;
      reply.payload_len = len;
    }
  }
  if (blk) {
    const uint8_t *body;
    size_t len;
    coap_client_block_result(blk, &body, &len, &reply.exchanges);
    if (body && err == 0) {
      reply.payload = body;
      reply.payload_len = len;
    }
  }
  req_unlink(r);
  coap_reply_fn cb = r->cb;
  void *user = r->user;
  coap_client_t *cl = r->cl;
  req_release(cl, r);
  if (cb) cb(cl->ctx, &reply, user);
  coap_client_block_free(blk);
  coap_client_qb_free(qb);
}

static void req_finish(coap_client_req_t *r, const coap_msg_t *msg, int err) {
  coap_client_req_finish(r, msg, err, NULL);
}

/* A coap:// request that timed out without a single datagram from the
 * peer: say that it was silence, and what was tried. */
static void note_silence(coap_client_req_t *r, uint64_t now) {
  coap_client_t *cl = r->cl;
  coap_peer_t *peer = coap_peer_table_find(cl->peers, r->ep, &r->dest);
  /* (DTLS peers: a silent handshake is diagnosed by the session.) */
  if (!peer || peer->rx || r->proto != COAP_PROTO_UDP) return;
  coap_diag_t g;
  coap_diag_begin(&g, COAP_CAUSE_NO_ANSWER, COAP_STEP_NONE, COAP_DETECTED_NETWORK, COAP_E_TIMEOUT);
  coap_diag_explain(&g, "no answer from %s in %.1f s%s", peer->name,
                    (double)(now - r->sent_at) / 1000.0,
                    peer->probed ? ", neither to the request nor to a DTLS probe" : "");
  cl->ops->note_failure(cl->ctx, &g, peer->name, now);
  cl->ops->set_diag_current(cl->ctx, 1);
}

/* No-Response (RFC 7967): has the silence of the server at the end of
 * |r|'s wait been asked for? Some class is suppressed, and the request
 * reached the server as far as we can tell: a CON was acknowledged (the
 * server got it and chose not to answer); a NON's loss cannot be told
 * from a suppressed answer, so its silence is taken as asked. */
static int silence_asked(const coap_client_req_t *r, const coap_exch_out_t *out) {
  if (!r->no_response || !out) return 0;
  size_t len;
  const uint8_t *bytes = coap_exch_out_bytes(out, &len);
  int con = len && ((bytes[0] >> 4) & 3) == COAP_TYPE_CON;
  return !con || coap_exch_out_acked(out);
}

#define SILENCE_DETAIL "no response, as the request's No-Response option allowed"

/* A Q-Block1/Q-Block2 option (RFC 9177) in an answer to a request that
 * carried neither: the client is not in a Q-Block transfer, and taking
 * the one block for the body would hand the caller a part of it as the
 * whole (seen from a server that had spoken Q-Block with this port
 * before). The options are critical and not understood here (RFC 7252
 * §5.4.1): the response is rejected. */
static const char *unasked_qblock(const coap_exch_out_t *out, const coap_msg_t *msg) {
  static const uint16_t nums[2] = {COAP_OPTION_Q_BLOCK1, COAP_OPTION_Q_BLOCK2};
  size_t len;
  const uint8_t *bytes = coap_exch_out_bytes(out, &len);
  coap_msg_t req;
  int parsed = bytes && coap_msg_parse(&req, bytes, len) == 0;
  for (int i = 0; i < 2; i++)
    if (coap_msg_find_option(msg, nums[i]) && !(parsed && coap_msg_find_option(&req, nums[i])))
      return i ? "the response carries a Q-Block2 option (RFC 9177) the request did not ask "
                 "for (Q-Block is off): it holds one block, not the body; rejected"
               : "the response carries a Q-Block1 option (RFC 9177) the request did not ask "
                 "for (Q-Block is off); rejected";
  return NULL;
}

int coap_client_plain_response(coap_client_req_t *r, coap_exch_out_t *out, const coap_msg_t *msg,
                               int err, uint64_t now) {
  coap_client_t *cl = r->cl;
  const char *unasked = err == 0 && msg ? unasked_qblock(out, msg) : NULL;
  if (unasked) {
    coap_client_req_finish(r, NULL, COAP_E_BAD_RESPONSE, unasked);
    return 0;
  }
  if (err == 0 && (r->blk || coap_client_block_wanted(r, msg))) {
    const char *detail;
    int rc = coap_client_block_response(r, out, msg, now, &detail);
    if (rc == 1) return 0; /* the next block's request is out; this one is done */
    coap_client_req_finish(r, rc < 0 ? NULL : msg, rc < 0 ? rc : 0, detail);
    return 0;
  }
  if (err == COAP_E_TIMEOUT && silence_asked(r, out)) {
    coap_client_req_finish(r, NULL, 0, SILENCE_DETAIL);
    return 0;
  }
  int noted = err == COAP_E_TIMEOUT && !cl->ops->diag_current(cl->ctx);
  if (noted) note_silence(r, now);
  req_finish(r, msg, err);
  if (noted) cl->ops->set_diag_current(cl->ctx, 0);
  return 0;
}

int coap_client_on_response(void *user, coap_exch_out_t *out, const coap_msg_t *msg, int err,
                            uint64_t now) {
  (void)user;
  coap_client_req_t *r = coap_exch_out_user(out);
  if (!r) return 0;
  if (r->qb) return coap_client_qb_response(r, out, msg, err, now);
  if (r->parent) return coap_client_obs_fetch_response(r, out, msg, err, now);
  if (r->obs) return coap_client_obs_response(r, out, msg, err, now);
  return coap_client_plain_response(r, out, msg, err, now);
}

static void req_deadline(coap_timer_t *t, uint64_t now, void *user) {
  coap_client_req_t *r = user;
  coap_client_t *cl = r->cl;
  coap_peer_t *peer = coap_peer_table_find(cl->peers, r->ep, &r->dest);
  int handshaking = peer && cl->ops->secure_handshaking(cl->ctx, peer);
  /* Every class suppressed: the request is out (the handshake, if any,
   * is done) and nothing will come back. */
  if ((r->no_response & COAP_NO_RESPONSE_ALL) == COAP_NO_RESPONSE_ALL && !handshaking) {
    coap_exch_cancel(cl->exch, r->out);
    coap_client_req_finish(r, NULL, 0, "sent; the No-Response option suppresses every answer");
    return;
  }
  /* A handshake still running when the caller's patience ends: end it and
   * say what the silence means (the request ends with it). */
  if (handshaking && cl->ops->secure_give_up(cl->ctx, peer, now)) return;
  if (silence_asked(r, r->out)) {
    coap_exch_cancel(cl->exch, r->out);
    coap_client_req_finish(r, NULL, 0, SILENCE_DETAIL);
    return;
  }
  coap_exch_cancel(cl->exch, r->out);
  note_silence(r, now);
  req_finish(r, NULL, COAP_E_TIMEOUT);
  cl->ops->set_diag_current(cl->ctx, 0);
}

static int resolve_destination(coap_client_t *cl, const coap_uri_t *uri, coap_address_t *dest) {
  if (coap_address_from_string(dest, uri->host, uri->port) == 0) return 0;
  if (uri->host_is_literal) return COAP_E_URI_HOST;
  /* (No resolver: a core without the I/O shell, given none.) */
  if (!cl->cfg->resolve) return COAP_E_RESOLVE;
  return cl->cfg->resolve(cl->cfg->resolve_user, uri->host, uri->port, dest);
}

/* The last URI a context sent to, parsed, with its address when the host
 * is a literal: a client that asks one resource again and again (a sensor
 * reporting, a load generator) skips the parse and the address conversion
 * (an eighth of a load generator's own CPU per request). Names are
 * resolved every time: the resolver decides what it caches. */
#define URI_MEMO_MAX 256
typedef struct coap_uri_memo {
  int valid;
  char text[URI_MEMO_MAX];
  coap_uri_t uri;
  coap_address_t dest; /* when uri.host_is_literal */
} uri_memo_t;

/* Parse |text| (or find it in the memo) and resolve it. *uri points into
 * the memo, or to |scratch| for a URI too long to remember. */
static int uri_and_destination(coap_client_t *cl, const char *text, coap_uri_t *scratch,
                               const coap_uri_t **uri, coap_address_t *dest) {
  uri_memo_t *m = cl->uri_memo;
  if (m && m->valid && strcmp(m->text, text) == 0) {
    *uri = &m->uri;
    if (!m->uri.host_is_literal) return resolve_destination(cl, &m->uri, dest);
    *dest = m->dest;
    return 0;
  }
  size_t len = strlen(text);
  if (!m && len < URI_MEMO_MAX) m = cl->uri_memo = calloc(1, sizeof(*m));
  coap_uri_t *u = m && len < URI_MEMO_MAX ? &m->uri : scratch;
  if (u != scratch) m->valid = 0;
  int rc = coap_uri_parse(u, text);
  if (rc == 0) rc = resolve_destination(cl, u, dest);
  if (rc < 0) return rc;
  if (u != scratch) {
    memcpy(m->text, text, len + 1);
    m->dest = *dest;
    m->valid = 1;
  }
  *uri = u;
  return 0;
}

static int build_request(const coap_request_opts_t *o, const coap_uri_t *uri, coap_msg_t *msg,
                         uint8_t *store, size_t cap) {
  /* Nothing will answer a request that suppresses every class: a CON
   * would only be retransmitted until its ACK (RFC 7967 §2.1 advises NON). */
  int con = o->confirmable && (o->no_response & COAP_NO_RESPONSE_ALL) != COAP_NO_RESPONSE_ALL;
  coap_msg_init(msg, con ? COAP_TYPE_CON : COAP_TYPE_NON, o->method, 0);
  int rc = coap_uri_to_options(uri, msg, store, cap);
  if (rc < 0) return rc;
  if (o->observe && (rc = coap_msg_add_uint(msg, COAP_OPTION_OBSERVE, 0)) < 0) return rc;
  if (o->no_response && (rc = coap_msg_add_uint(msg, COAP_OPTION_NO_RESPONSE, o->no_response)) < 0)
    return rc;
  if (o->content_format != COAP_FORMAT_NONE &&
      (rc = coap_msg_add_uint(msg, COAP_OPTION_CONTENT_FORMAT, (uint32_t)o->content_format)) < 0)
    return rc;
  if (o->accept != COAP_FORMAT_NONE &&
      (rc = coap_msg_add_uint(msg, COAP_OPTION_ACCEPT, (uint32_t)o->accept)) < 0)
    return rc;
  for (size_t i = 0; i < o->n_options; i++) {
    rc = coap_msg_add_option(msg, o->options[i].number, o->options[i].value, o->options[i].length);
    if (rc < 0) return rc;
  }
  return 0;
}

size_t coap_client_room(const coap_client_t *cl, coap_proto_t proto, int *hard) {
  const coap_dtls_context_t *dtls = cl->ops->dtls(cl->ctx);
  if (proto == COAP_PROTO_DTLS && dtls) {
    *hard = 1;
    return coap_dtls_record_room(dtls);
  }
  *hard = 0;
  return 1152;
}

/* 0, or the block size in bytes, 16..1024 and a power of two. */
static int valid_block_size(uint16_t size) {
  return size == 0 || (size >= 16 && size <= 1024 && (size & (size - 1)) == 0);
}

static uint16_t preferred_block_size(const coap_client_t *cl, const coap_request_opts_t *o) {
  size_t size = o->block_size ? o->block_size : cl->cfg->block_size ? cl->cfg->block_size : 1024;
  return (uint16_t)coap_block_size(coap_block_szx_for(size > 1024 ? 1024 : size));
}

/* Put the payload into |msg|, or decide it goes in Block1 blocks: returns
 * 0 (one message), the Block1 szx + 1, or COAP_E_TOO_LARGE when neither
 * can be sent (the reason in cl->last_error). A request that cannot go
 * out is refused here, before a handshake starts: it would otherwise be
 * dropped below us and end in a timeout. */
static int place_payload(coap_client_t *cl, coap_proto_t proto, const coap_request_opts_t *o,
                         uint16_t pref, coap_msg_t *msg) {
  int hard;
  size_t room = coap_client_room(cl, proto, &hard);
  size_t head = coap_msg_encoded_size(msg);
  if (o->payload_len > pref || (hard && head + 1 + o->payload_len > room)) {
    if (!o->payload_len) {
      snprintf(cl->last_error, cl->last_error_size,
               "the request's options take %zu bytes, more than the %zu a DTLS record holds "
               "at this MTU; nothing was sent",
               head, room);
      return COAP_E_TOO_LARGE;
    }
    int szx = coap_client_block1_plan(cl, proto, msg, o->payload_len, pref);
    return szx < 0 ? szx : szx + 1;
  }
  if (o->payload_len) coap_msg_set_payload(msg, o->payload, o->payload_len);
  return 0;
}

/* Observe only on GET and FETCH (RFC 7641 §2, RFC 8132 §2.4), and not
 * with No-Response (a suppressed notification would end nothing and say
 * nothing); No-Response only with its three defined bits. */
static int valid_extras(const coap_request_opts_t *o) {
  if (o->observe && ((o->method != COAP_GET && o->method != COAP_FETCH) || o->no_response))
    return 0;
  return (o->no_response & ~COAP_NO_RESPONSE_ALL) == 0;
}

int coap_client_send(coap_client_t *cl, const coap_request_opts_t *o, coap_reply_fn cb, void *user,
                     coap_request_id_t *id) {
  if (!o || !o->uri || o->method < COAP_GET || o->method > COAP_IPATCH ||
      (o->payload_len && !o->payload) || !valid_block_size(o->block_size) || !valid_extras(o))
    return COAP_E_INVALID_ARG;
  coap_uri_t scratch;
  const coap_uri_t *uri;
  coap_address_t dest;
  int rc = uri_and_destination(cl, o->uri, &scratch, &uri, &dest);
  if (rc < 0) return rc;
  coap_proto_t proto = uri->scheme == COAP_SCHEME_COAPS ? COAP_PROTO_DTLS : COAP_PROTO_UDP;
  /* Nothing to authenticate the server with: fail now, before a packet
   * leaves, rather than let a handshake time out. */
  if (proto == COAP_PROTO_DTLS && !coap_dtls_can_connect(cl->ops->dtls(cl->ctx))) {
    coap_diag_t g;
    coap_diag_begin(&g, COAP_CAUSE_NO_CREDENTIALS, COAP_STEP_NONE, COAP_DETECTED_CONFIG,
                    COAP_E_DTLS_NO_CREDENTIALS);
    coap_diag_explain(&g,
                      "%s is a coaps:// URI and this context has no credentials to "
                      "authenticate a server with; nothing was sent",
                      o->uri);
    cl->ops->note_failure(cl->ctx, &g, NULL, cl->ops->now(cl->ctx));
    return COAP_E_DTLS_NO_CREDENTIALS;
  }
  /* Everything taken from |uri| before any callback runs (opening an
   * endpoint, a handshake's failure): one may send another request, and
   * the memo |uri| points into would then hold another URI. */
  coap_msg_t msg;
  uint8_t store[2048];
  if ((rc = build_request(o, uri, &msg, store, sizeof store)) < 0) return rc;
  uint16_t pref = preferred_block_size(cl, o);
  /* Early negotiation (RFC 7959 §2.4): the server sends blocks no larger. */
  if (pref < 1024 && (o->method == COAP_GET || o->method == COAP_FETCH)) {
    coap_block_t b2 = {.num = 0, .more = 0, .szx = coap_block_szx_for(pref)};
    if ((rc = coap_msg_add_block(&msg, COAP_OPTION_BLOCK2, &b2)) < 0) return rc;
  }
  int block1 = place_payload(cl, proto, o, pref, &msg);
  if (block1 < 0) return block1;
  /* The blocks of a body wait for 2.31 Continue, which No-Response may
   * suppress: such a body must fit one message. */
  if (block1 && o->no_response) {
    snprintf(cl->last_error, cl->last_error_size,
             "a request with No-Response must fit one message; this body goes block-wise");
    return COAP_E_INVALID_ARG;
  }
  char host[sizeof uri->host];
  if (proto == COAP_PROTO_DTLS) memcpy(host, uri->host, strlen(uri->host) + 1);
  uint64_t now = cl->ops->now(cl->ctx);
  coap_endpoint_t *ep;
  if ((rc = cl->ops->endpoint(cl->ctx, proto, &dest, &ep)) < 0) return rc;
  coap_peer_t *peer;
  if ((rc = cl->ops->peer(cl->ctx, ep, &dest, now, &peer)) < 0) return rc;
  if (proto == COAP_PROTO_DTLS && (rc = cl->ops->secure_connect(cl->ctx, peer, host, now)) < 0)
    return rc;
  coap_client_req_t *r = req_alloc(cl);
  if (!r) return COAP_E_NOMEM;
  r->cl = cl;
  r->cb = cb;
  r->user = user;
  r->id = cl->next_request_id++;
  r->ep = ep;
  r->proto = proto;
  r->dest = dest;
  r->sent_at = now;
  r->method = o->method;
  r->payload_len = o->payload_len;
  r->block_size = pref;
  r->no_response = o->no_response;
  coap_timer_init(&r->deadline, req_deadline, r);
  if (o->observe && coap_client_obs_new(r) < 0) {
    req_release(cl, r);
    return COAP_E_NOMEM;
  }
  r->next = cl->requests;
  if (r->next) r->next->prev = r;
  cl->requests = r;
  /* Everything that touches |r| happens before the request goes out: a
   * transport may deliver the reply (and so free |r|) before send returns. */
  if (id) *id = r->id;
  /* Every class suppressed: done once sent (after the handshake, if one
   * is running: coap_client_session_up). */
  int silent = (o->no_response & COAP_NO_RESPONSE_ALL) == COAP_NO_RESPONSE_ALL;
  /* A deadline that failed to arm (no memory for the timer heap) would
   * leave a silent request, or one relying on its timeout, open forever. */
  rc = 0;
  if (silent && !cl->ops->secure_handshaking(cl->ctx, peer))
    rc = coap_timer_arm(cl->timers, &r->deadline, now);
  else if (o->timeout_ms)
    rc = coap_timer_arm(cl->timers, &r->deadline, now + o->timeout_ms);
  if (rc < 0)
    snprintf(cl->last_error, cl->last_error_size, "no memory for the request's deadline timer");
  else if (coap_client_qb_wanted(cl, o, block1) && (block1 || !o->payload_len))
    rc = coap_client_qb_start(r, &peer->exch, &msg, o->payload, block1 ? o->payload_len : 0,
                              (uint8_t)(block1 ? block1 - 1 : 0), now);
  else if (block1)
    rc = coap_client_block1_start(r, &peer->exch, &msg, o->payload, o->payload_len,
                                  (uint8_t)(block1 - 1), now);
  else
    rc = coap_exch_request(cl->exch, &peer->exch, &msg, r, &r->out, now);
  if (rc < 0) {
    req_unlink(r);
    if (r->obs) coap_client_obs_free(r);
    req_release(cl, r);
    return rc;
  }
  return 0;
}

int coap_client_cancel(coap_client_t *cl, coap_request_id_t id) {
  for (coap_client_req_t *r = cl->requests; r; r = r->next) {
    if (r->id != id) continue;
    /* An observation is forgotten here, silently too: the server's next
     * notification gets RST (RFC 7641 §3.6). */
    if (r->obs) coap_client_obs_free(r);
    /* Not sent later either, when it waits for a DTLS handshake. */
    size_t len = 0;
    const uint8_t *bytes = r->out ? coap_exch_out_bytes(r->out, &len) : NULL;
    if (bytes) cl->ops->unqueue(cl->ctx, r->ep, &r->dest, bytes, len);
    coap_exch_cancel(cl->exch, r->out);
    req_unlink(r);
    coap_client_block_free(r->blk);
    coap_client_qb_stop(cl, r->qb);
    coap_client_qb_free(r->qb);
    req_release(cl, r);
    return 0;
  }
  return COAP_E_NOT_FOUND;
}

coap_client_req_t *coap_client_req_child(coap_client_req_t *parent) {
  coap_client_t *cl = parent->cl;
  coap_client_req_t *f = req_alloc(cl);
  if (!f) return NULL;
  f->cl = cl;
  f->id = 0; /* no caller's id: coap_cancel_request never finds it */
  f->ep = parent->ep;
  f->proto = parent->proto;
  f->dest = parent->dest;
  f->sent_at = cl->ops->now(cl->ctx);
  f->method = parent->method;
  f->block_size = parent->block_size;
  f->parent = parent;
  coap_timer_init(&f->deadline, req_deadline, f); /* never armed: the parent's timers rule */
  f->next = cl->requests;
  if (f->next) f->next->prev = f;
  cl->requests = f;
  return f;
}

void coap_client_req_child_free(coap_client_req_t *f, int cancel) {
  if (cancel) coap_exch_cancel(f->cl->exch, f->out);
  req_unlink(f);
  coap_client_block_free(f->blk);
  req_release(f->cl, f);
}

void coap_client_init(coap_client_t *cl, coap_context_t *ctx, const coap_client_ops_t *ops,
                      const coap_context_config_t *cfg, coap_timer_heap_t *timers,
                      coap_exch_t *exch, coap_peer_table_t *peers, const coap_logger_t *log,
                      char *last_error, size_t last_error_size) {
  *cl = (coap_client_t){.next_request_id = 1,
                        .ctx = ctx,
                        .cfg = cfg,
                        .timers = timers,
                        .exch = exch,
                        .peers = peers,
                        .log = log,
                        .last_error = last_error,
                        .last_error_size = last_error_size,
                        .ops = ops};
}

void coap_client_free(coap_client_t *cl) {
  while (cl->exch && cl->requests) {
    /* A fetch for an observation ends with it. */
    coap_client_req_t *r = cl->requests;
    while (r && r->parent) r = r->next;
    if (!r) {
      coap_client_req_child_free(cl->requests, 1); /* (an orphan: cannot happen) */
      continue;
    }
    coap_exch_cancel(cl->exch, r->out);
    req_finish(r, NULL, COAP_E_CANCELLED);
  }
  while (cl->req_free) {
    coap_client_req_t *r = cl->req_free;
    cl->req_free = r->next;
    free(r);
  }
  cl->n_req_free = 0;
  free(cl->uri_memo);
  cl->uri_memo = NULL;
}

int coap_client_req_to_peer(const coap_client_req_t *r, const coap_peer_t *peer) {
  return r->ep == peer->ep && coap_address_equal(&r->dest, &peer->addr);
}

void coap_client_peer_moved(coap_client_t *cl, const coap_endpoint_t *from,
                            const coap_peer_t *peer) {
  for (coap_client_req_t *r = cl->requests; r; r = r->next)
    if (r->ep == from && coap_address_equal(&r->dest, &peer->addr)) r->ep = peer->ep;
}

void coap_client_session_up(coap_client_t *cl, coap_peer_t *peer, uint64_t now) {
again:
  for (coap_client_req_t *r = cl->requests; r; r = r->next)
    if ((r->no_response & COAP_NO_RESPONSE_ALL) == COAP_NO_RESPONSE_ALL &&
        coap_client_req_to_peer(r, peer) && coap_timer_arm(cl->timers, &r->deadline, now) < 0) {
      /* Without its timer it would never end: it ends now, and the walk
       * starts again (the callback may have changed the list; a timer
       * armed already moves without allocating, so each pass ends one). */
      coap_exch_cancel(cl->exch, r->out);
      coap_client_req_finish(r, NULL, COAP_E_NOMEM, "no memory for the request's timer");
      goto again;
    }
}
