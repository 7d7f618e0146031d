/* From request to response: path lookup, the automatic error answers of
 * RFC 7252 §5.8/§5.9 and RFC 6690 discovery, then the handler. */
#include <stdio.h>
#include <string.h>

#include "server/server.h"

#define WELL_KNOWN_CORE ".well-known/core"

static uint8_t default_code(uint8_t method) {
  switch (method) {
    case COAP_GET:
    case COAP_FETCH: return COAP_CONTENT;
    case COAP_DELETE: return COAP_DELETED;
    default: return COAP_CHANGED;
  }
}

void coap_response_init(coap_response_t *resp, const coap_msg_t *req,
                        uint8_t *store, size_t cap) {
  coap_msg_init(&resp->msg, COAP_TYPE_ACK, default_code(req->code), 0);
  coap_msg_set_token(&resp->msg, req->token, req->token_len);
  resp->store = store;
  resp->cap = cap;
  resp->used = 0;
}

/* Copy |len| bytes into the response's store; NULL when it is full. */
static const void *keep(coap_response_t *resp, const void *data, size_t len) {
  if (len > resp->cap - resp->used) return NULL;
  uint8_t *dst = resp->store + resp->used;
  if (len) memcpy(dst, data, len);
  resp->used += len;
  return dst;
}

void coap_response_set_code(coap_response_t *resp, uint8_t code) {
  resp->msg.code = code;
}

int coap_response_add_option(coap_response_t *resp, uint16_t number,
                             const void *value, size_t len) {
  const void *v = keep(resp, value, len);
  if (!v) return COAP_E_BUFFER_TOO_SMALL;
  return coap_msg_add_option(&resp->msg, number, v, len);
}

int coap_response_add_uint(coap_response_t *resp, uint16_t number,
                           uint32_t value) {
  uint8_t be[4];
  size_t n = 0;
  for (int shift = 24; shift >= 0; shift -= 8)
    if (n || (value >> shift) & 0xFF) be[n++] = (uint8_t)(value >> shift);
  return coap_response_add_option(resp, number, be, n);
}

int coap_response_set_payload(coap_response_t *resp, int format,
                              const void *data, size_t len) {
  if (format != COAP_FORMAT_NONE) {
    coap_msg_remove_option(&resp->msg, COAP_OPTION_CONTENT_FORMAT);
    int rc = coap_response_add_uint(resp, COAP_OPTION_CONTENT_FORMAT,
                                    (uint32_t)format);
    if (rc < 0) return rc;
  }
  const void *p = keep(resp, data, len);
  if (!p) return COAP_E_BUFFER_TOO_SMALL;
  coap_msg_set_payload(&resp->msg, p, len);
  return 0;
}

int coap_response_set_max_age(coap_response_t *resp, uint32_t seconds) {
  coap_msg_remove_option(&resp->msg, COAP_OPTION_MAX_AGE);
  return coap_response_add_uint(resp, COAP_OPTION_MAX_AGE, seconds);
}

int coap_response_set_etag(coap_response_t *resp, const void *etag,
                           size_t len) {
  if (len < 1 || len > 8) return COAP_E_INVALID_ARG;
  coap_msg_remove_option(&resp->msg, COAP_OPTION_ETAG);
  return coap_response_add_option(resp, COAP_OPTION_ETAG, etag, len);
}

int coap_response_add_location_path(coap_response_t *resp,
                                    const char *segment) {
  return coap_response_add_option(resp, COAP_OPTION_LOCATION_PATH, segment,
                                  strlen(segment));
}

/* ---- reading a request ---- */

const coap_msg_t *coap_request_msg(const coap_request_t *req) { return req->msg; }
uint8_t coap_request_method(const coap_request_t *req) { return req->msg->code; }
const coap_address_t *coap_request_peer(const coap_request_t *req) {
  return req->peer;
}
coap_proto_t coap_request_proto(const coap_request_t *req) { return req->proto; }

const uint8_t *coap_request_payload(const coap_request_t *req, size_t *len) {
  *len = req->msg->payload_len;
  return req->msg->payload;
}

int coap_request_query(const coap_request_t *req, const char *name, char *buf,
                       size_t cap) {
  size_t nlen = strlen(name);
  for (const coap_option_t *o = coap_msg_find_option(req->msg, COAP_OPTION_URI_QUERY);
       o; o = coap_msg_next_option(req->msg, o)) {
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

coap_deferred_t *coap_request_defer(const coap_request_t *req,
                                    coap_response_t *resp) {
  coap_request_t *r = (coap_request_t *)req;
  if (!r || !r->defer || r->deferred) return NULL;
  r->deferred = r->defer(r, resp);
  return r->deferred;
}

/* ---- dispatch ---- */

static void answer_error(coap_response_t *resp, uint8_t code,
                         const char *diagnostic) {
  coap_msg_t *m = &resp->msg;
  coap_msg_remove_option(m, COAP_OPTION_CONTENT_FORMAT);
  m->code = code;
  /* A diagnostic payload (RFC 7252 §5.5.2) tells a human what was wrong. */
  coap_response_set_payload(resp, COAP_FORMAT_NONE, diagnostic,
                            strlen(diagnostic));
}

/* Join the Uri-Path segments with '/' into |buf|; -1 when too long. */
static int request_path(const coap_msg_t *req, char *buf, size_t cap) {
  size_t len = 0;
  for (const coap_option_t *o = coap_msg_find_option(req, COAP_OPTION_URI_PATH);
       o; o = coap_msg_next_option(req, o)) {
    if (len + o->length + 2 > cap) return -1;
    if (len) buf[len++] = '/';
    memcpy(buf + len, o->value, o->length);
    len += o->length;
  }
  buf[len] = '\0';
  return (int)len;
}

static void serve_discovery(coap_server_t *s, const coap_msg_t *req,
                            coap_response_t *resp) {
  if (req->code != COAP_GET) {
    answer_error(resp, COAP_METHOD_NOT_ALLOWED, "only GET on /.well-known/core");
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
    answer_error(resp, COAP_INTERNAL_SERVER_ERROR, "link format too large");
    return;
  }
  resp->msg.code = COAP_CONTENT;
  coap_response_add_uint(resp, COAP_OPTION_CONTENT_FORMAT,
                         COAP_FORMAT_LINK_FORMAT);
  resp->used += reserve + len;
  coap_msg_set_payload(&resp->msg, links, len);
}

static int payload_method(uint8_t m) {
  return m == COAP_POST || m == COAP_PUT || m == COAP_FETCH ||
         m == COAP_PATCH || m == COAP_IPATCH;
}

void coap_server_dispatch(coap_server_t *s, coap_request_t *req,
                          coap_response_t *resp) {
  const coap_msg_t *m = req->msg;
  const coap_option_t *bad = coap_msg_unknown_critical(m, NULL, 0);
  if (bad) {
    char text[64];
    snprintf(text, sizeof text, "unrecognized critical option %u", bad->number);
    answer_error(resp, COAP_BAD_OPTION, text);
    return;
  }
  char path[1024];
  int len = request_path(m, path, sizeof path);
  if (len < 0) {
    answer_error(resp, COAP_NOT_FOUND, "path too long");
    return;
  }
  coap_resource_t *r = coap_server_lookup(s, path, (size_t)len);
  if (!r) {
    if (strcmp(path, WELL_KNOWN_CORE) == 0)
      serve_discovery(s, m, resp);
    else
      answer_error(resp, COAP_NOT_FOUND, "no such resource");
    return;
  }
  void *user = NULL;
  coap_handler_fn fn = coap_resource_handler(r, m->code, &user);
  if (!fn) {
    answer_error(resp, COAP_METHOD_NOT_ALLOWED, "method not allowed here");
    return;
  }
  if (payload_method(m->code)) {
    if (m->payload_len > s->max_payload) {
      answer_error(resp, COAP_REQUEST_ENTITY_TOO_LARGE, "payload too large");
      coap_response_add_uint(resp, COAP_OPTION_SIZE1, (uint32_t)s->max_payload);
      return;
    }
    int cf = coap_msg_content_format(m);
    if (cf != COAP_FORMAT_NONE && !coap_resource_accepts_format(r, cf)) {
      answer_error(resp, COAP_UNSUPPORTED_CONTENT_FORMAT,
                   "content-format not accepted here");
      return;
    }
  }
  fn(req->ctx, r, req, resp, user);
}
