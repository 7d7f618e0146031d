/* Building a response: option values and small payloads are copied into
 * the response's store; a payload larger than what is left there goes to
 * a growable body buffer, up to max_body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

static uint8_t default_code(uint8_t method) {
  switch (method) {
    case COAP_GET:
    case COAP_FETCH: return COAP_CONTENT;
    case COAP_DELETE: return COAP_DELETED;
    default: return COAP_CHANGED;
  }
}

/* The Q-Block2 options of |req| (RFC 9177 §4.4): each a block, or with
 * M a run of them; increasing numbers without duplicates, else qb_bad. */
static void note_qblock2(coap_resp_asked_t *a, const coap_msg_t *req) {
  a->qblock2 = 0;
  a->qb_n = 0;
  a->qb_bad = 0;
  for (const coap_option_t *o = coap_msg_find_option(req, COAP_OPTION_Q_BLOCK2); o;
       o = coap_msg_next_option(req, o)) {
    coap_block_t b;
    a->qblock2 = 1;
    if (coap_block_decode(o, &b) < 0 || a->qb_n == COAP_QB_ASK_MAX ||
        (a->qb_n && b.num <= a->qb[a->qb_n - 1].num)) {
      a->qb_bad = 1;
      return;
    }
    a->qb[a->qb_n].num = b.num;
    a->qb[a->qb_n].more = b.more;
    a->qb[a->qb_n].szx = b.szx;
    a->qb_n++;
  }
  if (a->qb_n) {
    a->block2 = 1;
    a->b2_num = a->qb[0].num;
    a->b2_szx = a->qb[0].szx;
  }
}

void coap_response_note_request(coap_response_t *resp, const coap_msg_t *req) {
  coap_resp_asked_t *a = &resp->asked;
  const coap_option_t *o = coap_msg_find_option(req, COAP_OPTION_BLOCK2);
  coap_block_t b;
  a->block2 = o && coap_block_decode(o, &b) == 0;
  a->b2_num = a->block2 ? b.num : 0;
  a->b2_szx = a->block2 ? b.szx : 0;
  a->size2 = coap_msg_find_option(req, COAP_OPTION_SIZE2) != NULL;
  note_qblock2(a, req);
}

void coap_response_init(coap_response_t *resp, const coap_msg_t *req, uint8_t *store, size_t cap) {
  coap_msg_init(&resp->msg, COAP_TYPE_ACK, default_code(req->code), 0);
  coap_msg_set_token(&resp->msg, req->token, req->token_len);
  resp->store = store;
  resp->cap = cap;
  resp->used = 0;
  resp->big = NULL;
  resp->max_body = 0;
  resp->szx_max = 6;
  resp->error = 0;
  resp->qb_body = NULL;
  resp->qb_len = 0;
  resp->qb_szx = 0;
  resp->silent = 0;
  memset(&resp->asked, 0, sizeof resp->asked);
  coap_response_note_request(resp, req);
}

void coap_response_set_limits(coap_response_t *resp, coap_body_buf_t *big, size_t max_body,
                              uint8_t szx_max) {
  resp->big = big;
  resp->max_body = max_body;
  resp->szx_max = szx_max > 6 ? 6 : szx_max;
}

void coap_response_reset(coap_response_t *resp, const coap_msg_t *req) {
  coap_body_buf_t *big = resp->big;
  size_t max_body = resp->max_body;
  uint8_t szx_max = resp->szx_max;
  coap_resp_asked_t asked = resp->asked;
  coap_response_init(resp, req, resp->store, resp->cap);
  coap_response_set_limits(resp, big, max_body, szx_max);
  resp->asked = asked;
}

/* Copy |len| bytes into the response's store; NULL when it is full. */
static const void *keep(coap_response_t *resp, const void *data, size_t len) {
  if (len > resp->cap - resp->used) return NULL;
  uint8_t *dst = resp->store + resp->used;
  if (len) memcpy(dst, data, len);
  resp->used += len;
  return dst;
}

/* Copy a payload too large for the store into the body buffer, grown to
 * fit (doubling, so a run of growing bodies reallocates rarely). */
static const void *keep_big(coap_response_t *resp, const void *data, size_t len) {
  coap_body_buf_t *b = resp->big;
  if (!b || len > resp->max_body) return NULL;
  if (len > b->cap) {
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < len) cap *= 2;
    if (cap > resp->max_body) cap = resp->max_body;
    uint8_t *p = realloc(b->data, cap);
    if (!p) return NULL;
    b->data = p;
    b->cap = cap;
  }
  memmove(b->data, data, len); /* |data| may be the buffer's own bytes */
  return b->data;
}

void coap_response_set_code(coap_response_t *resp, uint8_t code) {
  if (!resp) return;
  resp->msg.code = code;
}

int coap_response_add_option(coap_response_t *resp, uint16_t number, const void *value,
                             size_t len) {
  if (!resp || (!value && len)) return COAP_E_INVALID_ARG;
  const void *v = keep(resp, value, len);
  if (!v) return COAP_E_BUFFER_TOO_SMALL;
  return coap_msg_add_option(&resp->msg, number, v, len);
}

int coap_response_add_uint(coap_response_t *resp, uint16_t number, uint32_t value) {
  if (!resp) return COAP_E_INVALID_ARG;
  uint8_t be[4];
  size_t n = 0;
  for (int shift = 24; shift >= 0; shift -= 8)
    if (n || (value >> shift) & 0xFF) be[n++] = (uint8_t)(value >> shift);
  return coap_response_add_option(resp, number, be, n);
}

int coap_response_set_payload(coap_response_t *resp, int format, const void *data, size_t len) {
  if (!resp || (!data && len)) return COAP_E_INVALID_ARG;
  if (format != COAP_FORMAT_NONE) {
    coap_msg_remove_option(&resp->msg, COAP_OPTION_CONTENT_FORMAT);
    int rc = coap_response_add_uint(resp, COAP_OPTION_CONTENT_FORMAT, (uint32_t)format);
    if (rc < 0) return rc;
  }
  const void *p = keep(resp, data, len);
  if (!p) p = keep_big(resp, data, len);
  if (!p) {
    /* Never a silent truncation: the answer becomes 5.00 (finish). */
    resp->error = len > resp->max_body ? COAP_E_LIMIT : COAP_E_NOMEM;
    coap_msg_set_payload(&resp->msg, NULL, 0);
    return resp->error;
  }
  coap_msg_set_payload(&resp->msg, p, len);
  return 0;
}

int coap_response_set_max_age(coap_response_t *resp, uint32_t seconds) {
  if (!resp) return COAP_E_INVALID_ARG;
  coap_msg_remove_option(&resp->msg, COAP_OPTION_MAX_AGE);
  return coap_response_add_uint(resp, COAP_OPTION_MAX_AGE, seconds);
}

int coap_response_set_etag(coap_response_t *resp, const void *etag, size_t len) {
  if (!resp || !etag) return COAP_E_INVALID_ARG;
  if (len < 1 || len > 8) return COAP_E_INVALID_ARG;
  coap_msg_remove_option(&resp->msg, COAP_OPTION_ETAG);
  return coap_response_add_option(resp, COAP_OPTION_ETAG, etag, len);
}

int coap_response_add_location_path(coap_response_t *resp, const char *segment) {
  if (!resp || !segment) return COAP_E_INVALID_ARG;
  return coap_response_add_option(resp, COAP_OPTION_LOCATION_PATH, segment, strlen(segment));
}

void coap_response_error(coap_response_t *resp, uint8_t code, const char *diagnostic) {
  coap_msg_t *m = &resp->msg;
  /* Nothing the handler put there applies to the error. */
  m->n_options = 0;
  m->scratch_used = 0;
  m->code = code;
  resp->error = 0;
  coap_response_set_payload(resp, COAP_FORMAT_NONE, diagnostic, strlen(diagnostic));
}

void coap_response_add_block(coap_response_t *resp, uint16_t number, uint32_t num, int more,
                             uint8_t szx) {
  coap_block_t b = {num, (uint8_t)(more ? 1 : 0), szx};
  uint8_t v[3];
  int n = coap_block_encode(&b, v);
  if (n >= 0) coap_response_add_option(resp, number, v, (size_t)n);
}
