/* If-Match and If-None-Match (RFC 7252 §5.10.8), for every resource: the
 * current representation is what the resource's GET handler answers (its
 * ETag, or the hash the server puts on a block-wise answer without one),
 * so a handler that sets an ETag gets conditional requests for free. */
#include <string.h>

#include "server/server.h"

typedef struct current {
  int exists; /* the GET handler answered 2.xx */
  uint8_t etag[8];
  size_t etag_len;
} current_t;

static int has_conditions(const coap_msg_t *m) {
  return coap_msg_find_option(m, COAP_OPTION_IF_MATCH) ||
         coap_msg_find_option(m, COAP_OPTION_IF_NONE_MATCH);
}

/* Do the request's conditions hold for |cur|? */
static int conditions_hold(const coap_msg_t *m, const current_t *cur) {
  if (coap_msg_find_option(m, COAP_OPTION_IF_NONE_MATCH) && cur->exists) return 0;
  const coap_option_t *o = coap_msg_find_option(m, COAP_OPTION_IF_MATCH);
  if (!o) return 1;
  for (; o; o = coap_msg_next_option(m, o)) {
    if (!cur->exists) continue;
    if (o->length == 0) return 1; /* any representation */
    if (o->length == cur->etag_len && memcmp(o->value, cur->etag, o->length) == 0) return 1;
  }
  return 0;
}

static void fail(coap_response_t *resp, const coap_msg_t *m) {
  coap_response_error(resp, COAP_PRECONDITION_FAILED,
                      coap_msg_find_option(m, COAP_OPTION_IF_NONE_MATCH)
                          ? "If-None-Match: the resource exists"
                          : "If-Match: no current representation matches");
}

static void read_current(const coap_response_t *resp, current_t *cur) {
  cur->exists = COAP_CODE_CLASS(resp->msg.code) == 2;
  cur->etag_len = cur->exists ? coap_response_etag(resp, cur->etag) : 0;
}

int coap_server_precondition_before(coap_server_t *s, coap_resource_t *r, coap_request_t *req,
                                    coap_response_t *resp) {
  (void)s;
  const coap_msg_t *m = req->msg;
  if (!has_conditions(m)) return 0;
  void *user = NULL;
  coap_handler_fn get = coap_resource_handler(r, COAP_GET, &user);
  if (!get) return 0; /* nothing tells the state: the handler judges */
  /* The GET the condition is about: same options, no body, no blocks,
   * and no way to defer (the answer is needed now). */
  coap_msg_t probe = *m;
  probe.code = COAP_GET;
  coap_msg_set_payload(&probe, NULL, 0);
  coap_msg_remove_option(&probe, COAP_OPTION_BLOCK1);
  coap_msg_remove_option(&probe, COAP_OPTION_BLOCK2);
  coap_request_t preq = *req;
  preq.msg = &probe;
  preq.defer = NULL;
  preq.deferred = NULL;
  coap_resp_asked_t asked = resp->asked;
  coap_response_reset(resp, &probe);
  get(req->ctx, r, &preq, resp, user);
  current_t cur;
  read_current(resp, &cur);
  coap_response_reset(resp, m);
  resp->asked = asked;
  if (conditions_hold(m, &cur)) return 0;
  fail(resp, m);
  return 1;
}

void coap_server_precondition_after(const coap_request_t *req, coap_response_t *resp) {
  const coap_msg_t *m = req->msg;
  if (!has_conditions(m)) return;
  current_t cur;
  read_current(resp, &cur);
  if (!conditions_hold(m, &cur)) fail(resp, m);
}
