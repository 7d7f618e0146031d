#include "client_driver.h"

#include <stdlib.h>

static uint64_t env_clock(void *user) {
  return ((const fuzz_client_env_t *)user)->now;
}

uint32_t fuzz_client_rand_step(fuzz_client_env_t *env) {
  return env->rand_state = env->rand_state * 1103515245u + 12345u;
}

static void env_rand(void *user, uint8_t *buf, size_t len) {
  for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)(fuzz_client_rand_step(user) >> 16);
}

/* Every client endpoint the context asks for is the one endpoint. */
static int env_open(void *user, coap_context_t *ctx, coap_proto_t proto, const coap_address_t *dest,
                    coap_endpoint_t **out) {
  *out = ((fuzz_client_env_t *)user)->ep;
  return 0;
}

coap_context_t *fuzz_client_new(fuzz_client_env_t *env, size_t max_body, fuzz_send_fn send) {
  env->now = 1000000;
  env->rand_state = 1;
  env->ep = NULL;
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.clock = env_clock;
  cfg.clock_user = env;
  cfg.rand = env_rand;
  cfg.rand_user = env;
  cfg.max_body = max_body;
  cfg.max_reassembly = max_body + 4096;
  cfg.log_level = COAP_LOG_ERROR;
  coap_context_t *ctx = coap_context_new(&cfg);
  if (!ctx) abort();
  coap_address_t local;
  coap_address_from_string(&local, "10.0.0.2", 40000);
  env->ep = coap_context_add_endpoint(ctx, COAP_PROTO_UDP, &local);
  coap_transport_t t = {.send = send, .open_client_endpoint = env_open};
  coap_context_set_transport(ctx, &t, env);
  return ctx;
}

void fuzz_client_header(const fuzz_client_env_t *env, uint8_t type, uint8_t tkl, uint8_t code,
                        const uint8_t *last, uint8_t out[4]) {
  out[0] = (uint8_t)(0x40 | type << 4 | tkl);
  out[1] = code;
  out[2] = type == COAP_TYPE_ACK ? last[2] : (uint8_t)(env->rand_state >> 8);
  out[3] = type == COAP_TYPE_ACK ? last[3] : (uint8_t)env->rand_state;
}
