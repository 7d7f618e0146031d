#include "support_handfed.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static uint64_t handfed_clock(void *user) {
  return *(const uint64_t *)user;
}

/* The C library's example LCG: cheap and the same on every platform. */
static void handfed_rand(void *user, uint8_t *buf, size_t len) {
  uint32_t *state = user;
  for (size_t i = 0; i < len; i++)
    buf[i] = (uint8_t)((*state = *state * 1103515245u + 12345u) >> 16);
}

coap_context_t *sim_handfed_new(const coap_context_config_t *cfg, uint64_t *now,
                                uint32_t *rand_state, sim_send_fn send, coap_endpoint_t **ep) {
  coap_context_config_t c;
  if (cfg)
    c = *cfg;
  else
    coap_context_config_default(&c);
  c.clock = handfed_clock;
  c.clock_user = now;
  c.rand = handfed_rand;
  c.rand_user = rand_state;
  c.log_level = COAP_LOG_ERROR;
  coap_context_t *ctx = coap_context_new(&c);
  assert_non_null(ctx);
  coap_transport_t t = {.send = send};
  coap_context_set_transport(ctx, &t, NULL);
  *ep = coap_context_add_endpoint(ctx, COAP_PROTO_UDP, NULL);
  assert_non_null(*ep);
  return ctx;
}
