#include "support_reply.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

void sim_reply_reset(sim_reply_t *r) {
  memset(r, 0, sizeof(*r));
}

void sim_on_reply(coap_context_t *ctx, const coap_reply_t *reply, void *user) {
  sim_reply_t *r = user;
  r->done = 1;
  r->calls++;
  r->status = reply->status;
  r->code = reply->code;
  r->content_format = reply->content_format;
  r->payload_len =
      reply->payload_len < sizeof r->payload - 1 ? reply->payload_len : sizeof r->payload - 1;
  if (r->payload_len) memcpy(r->payload, reply->payload, r->payload_len);
  r->payload[r->payload_len] = '\0';
  snprintf(r->detail, sizeof r->detail, "%s", reply->detail ? reply->detail : "");
  r->has_diag = reply->diag != NULL;
  if (reply->diag)
    r->diag = *reply->diag;
  else
    memset(&r->diag, 0, sizeof r->diag);
  r->cause = r->diag.cause;
}

void sim_send(simnet_node_t *node, const coap_request_opts_t *o, sim_reply_t *r) {
  sim_reply_reset(r);
  assert_int_equal(coap_send_request(node->ctx, o, sim_on_reply, r, NULL), 0);
}

void sim_get(simnet_node_t *node, const char *uri, sim_reply_t *r, uint64_t limit_ms) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, uri);
  sim_send(node, &o, r);
  assert_true(simnet_run_until_flag(node->net, &r->done, limit_ms));
}
