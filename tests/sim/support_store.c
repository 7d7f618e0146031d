#include "support_store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

void sim_store_put(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                   coap_response_t *resp, void *user) {
  sim_store_t *s = user;
  size_t len;
  const uint8_t *p = coap_request_payload(req, &len);
  assert_true(len <= s->cap);
  if (len) memcpy(s->buf, p, len);
  s->len = len;
  s->calls++;
  coap_response_set_code(resp, COAP_CHANGED);
}
