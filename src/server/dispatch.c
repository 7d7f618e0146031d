/* From request to response: options (RFC 7252 §5.4), path lookup, the
 * automatic error answers of §5.8/§5.9, RFC 6690 discovery, Block1
 * reassembly and preconditions, then the handler, then the response's
 * shape for the wire (Block2). */
#include <stdio.h>
#include <string.h>

#include "server/server.h"

#define WELL_KNOWN_CORE ".well-known/core"

/* ---- reading a request ---- */

const coap_msg_t *coap_request_msg(const coap_request_t *req) {
  return req ? req->msg : NULL;
}
uint8_t coap_request_method(const coap_request_t *req) {
  return req ? req->msg->code : 0;
}
const coap_address_t *coap_request_peer(const coap_request_t *req) {
  return req ? req->peer : NULL;
}
coap_proto_t coap_request_proto(const coap_request_t *req) {
  return req ? req->proto : COAP_PROTO_UDP;
}
int coap_request_is_notification(const coap_request_t *req) {
  return req && req->is_notification;
}

const uint8_t *coap_request_payload(const coap_request_t *req, size_t *len) {
  size_t ignored;
  if (!len) len = &ignored; /* the length is optional */
  *len = req ? req->msg->payload_len : 0;
  return req ? req->msg->payload : NULL;
}

int coap_request_query(const coap_request_t *req, const char *name, char *buf, size_t cap) {
  if (!req || !name || (!buf && cap)) return COAP_E_INVALID_ARG;
  size_t nlen = strlen(name);
  for (const coap_option_t *o = coap_msg_find_option(req->msg, COAP_OPTION_URI_QUERY); o;
       o = coap_msg_next_option(req->msg, o)) {
    if (o->length < nlen || memcmp(o->value, name, nlen) != 0) continue;
    const uint8_t *v = o->value + nlen;
    size_t vlen = o->length - nlen;
    if (vlen > 0) {
      if (*v != '=') continue;
      v++;
      vlen--;
    }
    if (vlen + 1 > cap) return COAP_E_BUFFER_TOO_SMALL;
    memcpy(buf, v, vlen);
    buf[vlen] = '\0';
    return (int)vlen;
  }
  return COAP_E_NOT_FOUND;
}

coap_deferred_t *coap_request_defer(const coap_request_t *req, coap_response_t *resp) {
  coap_request_t *r = (coap_request_t *)req;
  /* A notification has no request to answer later: it is built now. */
  if (!r || !resp || r->is_notification || !r->defer || r->deferred) return NULL;
  r->deferred = r->defer(r, resp, &r->deferred_resp);
  return r->deferred;
}

/* ---- dispatch ---- */

/* Join the Uri-Path segments with '/' into |buf|; -1 when too long. Every
 * segment counts, empty ones too: "//time" (segments "" and "time") is
 * not "/time" (RFC 7252 §6.4). A lone empty segment is the root, as no
 * segment at all. */
int coap_server_request_path(const coap_msg_t *req, char *buf, size_t cap) {
  size_t len = 0;
  int first = 1;
  for (const coap_option_t *o = coap_msg_find_option(req, COAP_OPTION_URI_PATH); o;
       o = coap_msg_next_option(req, o)) {
    if (len + o->length + 2 > cap) return -1;
    if (!first) buf[len++] = '/';
    first = 0;
    memcpy(buf + len, o->value, o->length);
    len += o->length;
  }
  buf[len] = '\0';
  return (int)len;
}

static void serve_discovery(coap_server_t *s, const coap_msg_t *req, coap_response_t *resp) {
  if (req->code != COAP_GET) {
    coap_response_error(resp, COAP_METHOD_NOT_ALLOWED, "only GET on /.well-known/core");
    return;
  }
  char query[256] = "";
  const coap_option_t *q = coap_msg_find_option(req, COAP_OPTION_URI_QUERY);
  if (q && q->length < sizeof query) {
    memcpy(query, q->value, q->length);
    query[q->length] = '\0';
  }
  /* Write the links straight into the response store, then adopt them as
   * the payload: no second buffer. */
  size_t reserve = 8; /* room for the Content-Format value */
  if (resp->cap - resp->used <= reserve) return;
  char *links = (char *)resp->store + resp->used + reserve;
  size_t cap = resp->cap - resp->used - reserve, len = 0;
  if (coap_server_write_links(s, query, links, cap, &len) < 0) {
    coap_response_error(resp, COAP_INTERNAL_SERVER_ERROR, "link format too large");
    return;
  }
  resp->msg.code = COAP_CONTENT;
  coap_response_add_uint(resp, COAP_OPTION_CONTENT_FORMAT, COAP_FORMAT_LINK_FORMAT);
  resp->used += reserve + len;
  coap_msg_set_payload(&resp->msg, links, len);
}

static int payload_method(uint8_t m) {
  return m == COAP_POST || m == COAP_PUT || m == COAP_FETCH || m == COAP_PATCH || m == COAP_IPATCH;
}

static int unsafe_method(uint8_t m) {
  return m != COAP_GET && m != COAP_FETCH;
}

/* Block1/Block2 values with the reserved SZX 7 (BERT, for reliable
 * transports only): 4.00 (RFC 7959 §2.2). Fills |b1| and sets |*has_b1|. */
static int check_blocks(const coap_msg_t *m, coap_block_t *b1, int *has_b1, coap_response_t *resp) {
  static const uint16_t numbers[] = {COAP_OPTION_BLOCK1, COAP_OPTION_BLOCK2};
  *has_b1 = 0;
  for (size_t i = 0; i < 2; i++) {
    const coap_option_t *o = coap_msg_find_option(m, numbers[i]);
    coap_block_t b;
    if (!o) continue;
    if (coap_block_decode(o, &b) < 0) {
      coap_response_error(
          resp, COAP_BAD_REQUEST,
          i == 0 ? "Block1 with the reserved SZX 7" : "Block2 with the reserved SZX 7");
      return -1;
    }
    if (i == 0) {
      *b1 = b;
      *has_b1 = 1;
    }
  }
  return 0;
}

/* A single-message body over max_payload: 4.13 with Size1 (RFC 7252
 * §5.9.2.9). Up to max_body it may come block-wise: Block1 names the size
 * to use (RFC 7959 §2.9.3). */
static void answer_too_large(coap_server_t *s, const coap_request_t *req, coap_response_t *resp) {
  size_t len = req->msg->payload_len, max_body = s->cfg ? s->cfg->max_body : 0;
  char text[128];
  snprintf(text, sizeof text, "payload of %zu bytes: at most %zu in one message%s", len,
           s->max_payload, len <= max_body ? ", more with Block1" : "");
  coap_response_error(resp, COAP_REQUEST_ENTITY_TOO_LARGE, text);
  if (len > max_body) {
    coap_response_add_uint(resp, COAP_OPTION_SIZE1,
                           (uint32_t)(max_body > s->max_payload ? max_body : s->max_payload));
    return;
  }
  coap_response_add_uint(resp, COAP_OPTION_SIZE1, (uint32_t)s->max_payload);
  coap_block_t b = {0, 0, resp->szx_max};
  uint8_t v[3];
  int n = coap_block_encode(&b, v);
  if (n >= 0) coap_response_add_option(resp, COAP_OPTION_BLOCK1, v, (size_t)n);
}

/* Q-Block (RFC 9177): the peer speaks it from now on; a Q-Block2 list
 * out of order is 4.00 (§4.4). A NON GET or FETCH without any block
 * option but with a Request-Tag, from a peer known to speak Q-Block, is
 * answered with Q-Block2: libcoap probes once, then asks that way
 * (without -b). A request without Request-Tag never is: a client asking
 * RFC 7959's way from the same port (ours with qblock off) must not get
 * an option it did not ask for. Returns 0 to go on. */
static int admit_qblock(coap_server_t *s, coap_request_t *req, coap_response_t *resp) {
  const coap_msg_t *m = req->msg;
  int q1 = coap_msg_find_option(m, COAP_OPTION_Q_BLOCK1) != NULL;
  if (q1 || resp->asked.qblock2) coap_qblock_peer_note(s, req);
  if (resp->asked.qb_bad) {
    coap_response_error(resp, COAP_BAD_REQUEST,
                        "Q-Block2 options not in increasing order, or too many of them");
    return -1;
  }
  if (!resp->asked.qblock2 && !resp->asked.block2 && m->type == COAP_TYPE_NON &&
      (m->code == COAP_GET || m->code == COAP_FETCH) &&
      coap_msg_find_option(m, COAP_OPTION_REQUEST_TAG) && coap_qblock_peer_known(s, req))
    resp->asked.qblock2 = 1;
  return 0;
}

typedef struct target {
  coap_resource_t *res;
  coap_handler_fn fn;
  void *user;
  char path[1024];
  size_t path_len;
} target_t;

/* Find the resource and handler; answers 4.04/4.05 or discovery itself.
 * Returns 0 when there is a handler to run. */
static int find_target(coap_server_t *s, const coap_msg_t *m, target_t *t, coap_response_t *resp) {
  int len = coap_server_request_path(m, t->path, sizeof t->path);
  if (len < 0) {
    coap_response_error(resp, COAP_NOT_FOUND, "path too long");
    return -1;
  }
  t->path_len = (size_t)len;
  t->res = coap_server_lookup(s, t->path, t->path_len);
  if (!t->res) {
    if (strcmp(t->path, WELL_KNOWN_CORE) == 0)
      serve_discovery(s, m, resp);
    else
      coap_response_error(resp, COAP_NOT_FOUND, "no such resource");
    return -1;
  }
  t->fn = coap_resource_handler(t->res, m->code, &t->user);
  if (!t->fn) {
    coap_response_error(resp, COAP_METHOD_NOT_ALLOWED, "method not allowed here");
    return -1;
  }
  return 0;
}

/* The request's own checks before any body is taken: options, block
 * values, target, Content-Format. Returns 0 to go on. */
static int admit(coap_server_t *s, coap_request_t *req, coap_msg_t *scratch, target_t *t,
                 coap_block_t *b1, int *has_b1, coap_response_t *resp) {
  char why[128];
  int qblock = coap_qblock_enabled(s);
  int code = coap_server_check_options_qb(req->msg, qblock, scratch, &req->msg, why, sizeof why);
  if (code) {
    coap_response_error(resp, (uint8_t)code, why);
    return -1;
  }
  coap_response_note_request(resp, req->msg);
  if (check_blocks(req->msg, b1, has_b1, resp) < 0) return -1;
  if (qblock && admit_qblock(s, req, resp) < 0) return -1;
  if (find_target(s, req->msg, t, resp) < 0) return -1;
  const coap_msg_t *m = req->msg;
  if (*has_b1 && !payload_method(m->code)) {
    coap_response_error(resp, COAP_BAD_OPTION, "Block1 on a request without a body");
    return -1;
  }
  int cf = coap_msg_content_format(m);
  if (payload_method(m->code) && cf != COAP_FORMAT_NONE &&
      !coap_resource_accepts_format(t->res, cf)) {
    coap_response_error(resp, COAP_UNSUPPORTED_CONTENT_FORMAT, "content-format not accepted here");
    return -1;
  }
  return 0;
}

static void run_handler(coap_server_t *s, coap_request_t *req, target_t *t, coap_response_t *resp) {
  uint8_t method = req->msg->code;
  if (unsafe_method(method) && coap_server_precondition_before(s, t->res, req, resp)) return;
  t->fn(req->ctx, t->res, req, resp, t->user);
  if (req->deferred) return;
  if (!unsafe_method(method)) {
    coap_server_precondition_after(req, resp);
    /* Observe (RFC 7641): register, re-register or deregister on the
     * final answer; a deferred answer is no registration. */
    coap_observe_request(s, t->res, req, resp);
  }
}

/* Q-Block1 (RFC 9177 §4.3) on the request: 1 with |b| filled, 0 without,
 * -1 with |resp| answered (a bad value 4.00, no body 4.02). */
static int qblock1_of(const coap_server_t *s, const coap_msg_t *m, coap_block_t *b,
                      coap_response_t *resp) {
  const coap_option_t *o = coap_msg_find_option(m, COAP_OPTION_Q_BLOCK1);
  if (!o || !coap_qblock_enabled(s)) return 0;
  if (coap_block_decode(o, b) < 0) {
    coap_response_error(resp, COAP_BAD_REQUEST, "Q-Block1 with the reserved SZX 7");
    return -1;
  }
  if (!payload_method(m->code)) {
    coap_response_error(resp, COAP_BAD_OPTION, "Q-Block1 on a request without a body");
    return -1;
  }
  return 1;
}

void coap_server_dispatch(coap_server_t *s, coap_request_t *req, coap_response_t *resp) {
  coap_msg_t scratch, whole;
  target_t t;
  coap_block_t b1;
  int has_b1, has_qb1;
  if (admit(s, req, &scratch, &t, &b1, &has_b1, resp) < 0 ||
      (has_qb1 = qblock1_of(s, req->msg, &b1, resp)) < 0) {
    coap_response_finish(resp);
    return;
  }
  const coap_msg_t *m = req->msg;
  if (unsafe_method(m->code) && !has_b1 && resp->asked.block2 && resp->asked.b2_num > 0) {
    if (!coap_b1_serve_kept(s, req, t.path, t.path_len, resp))
      coap_response_error(resp, COAP_BAD_REQUEST,
                          "no answer to continue: its blocks expired or never existed");
    coap_response_finish(resp);
    return;
  }
  if (has_b1 || has_qb1) {
    const uint8_t *body;
    size_t len;
    coap_b1_result_t r = has_qb1
                             ? coap_qb1_receive(s, req, t.path, t.path_len, &b1, resp, &body, &len)
                             : coap_b1_receive(s, req, t.path, t.path_len, &b1, resp, &body, &len);
    if (r == COAP_B1_SILENT) {
      resp->silent = 1;
      return;
    }
    if (r == COAP_B1_ANSWERED) {
      coap_response_finish(resp);
      return;
    }
    /* The handler sees one request carrying the whole body, as if it had
     * come in one message: the blocks are the server's business. */
    whole = *m;
    coap_msg_remove_option(&whole, COAP_OPTION_BLOCK1);
    coap_msg_remove_option(&whole, COAP_OPTION_Q_BLOCK1);
    coap_msg_set_payload(&whole, body, len);
    req->msg = &whole;
    resp->asked.block1_echo = !has_qb1;
    resp->asked.b1 = b1;
    has_b1 = 1;
  } else if (payload_method(m->code) && m->payload_len > s->max_payload) {
    answer_too_large(s, req, resp);
    coap_response_finish(resp);
    return;
  }
  /* A later block of a GET/FETCH answer: from the copy when fresh (block2.c). */
  if (!unsafe_method(req->msg->code) && resp->asked.b2_num > 0 &&
      coap_b2_cache_serve(s, req, resp)) {
    if (has_b1) coap_b1_answered(s, req, t.path, t.path_len, NULL);
    coap_response_finish(resp);
    return;
  }
  run_handler(s, req, &t, resp);
  if (req->deferred) {
    if (has_b1 || unsafe_method(req->msg->code))
      coap_b1_deferred(s, req, t.path, t.path_len, req->deferred_resp);
    return;
  }
  /* (The copy first: a FETCH's key is its body, which the Block1 entry
   * holds until coap_b1_answered.) */
  if (!unsafe_method(req->msg->code)) coap_b2_cache_keep(s, req, resp);
  if (has_b1 || unsafe_method(req->msg->code)) coap_b1_answered(s, req, t.path, t.path_len, resp);
  if (has_qb1) coap_qb1_answered(s, req, t.path, t.path_len, resp);
  coap_response_finish(resp);
  /* The final answer to a NON Q-Block1 body goes CON (RFC 7252 §5.2.3
   * allows it): lost, the client would wait for it forever, having sent
   * every block (libcoap does not send one again). Not when it is the
   * first of a Q-Block2 burst: the blocks of one body are all NON (RFC
   * 9177 §7), and a lost one is asked for again. */
  if (has_qb1 && m->type == COAP_TYPE_NON && !resp->qb_body) resp->msg.type = COAP_TYPE_CON;
}
