#include "node_driver.h"

#include <string.h>

static uint64_t fake_now;
static uint64_t fuzz_clock(void *user) {
  return fake_now;
}
/* Fixed "randomness": a crash must replay from its input alone. */
static void fuzz_rand(void *user, uint8_t *buf, size_t len) {
  memset(buf, 0x5a, len);
}
static int fuzz_send(void *user, coap_endpoint_t *ep, const coap_address_t *to, const uint8_t *data,
                     size_t len) {
  return 0;
}
static void quiet(void *user, coap_log_level_t level, const char *line) {}

void fuzz_node_peer(coap_address_t *out, unsigned n) {
  char host[16] = "10.0.0.1";
  host[7] = (char)('1' + (n & 7));
  coap_address_from_string(out, host, 40000);
}

void fuzz_node_run(const uint8_t *data, size_t size, const fuzz_node_hooks_t *hooks) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.clock = fuzz_clock;
  cfg.rand = fuzz_rand;
  cfg.log = quiet;
  /* Debug level: the log formatting runs on fuzzed input too. */
  cfg.log_level = COAP_LOG_DEBUG;
  cfg.max_peers = 3;
  cfg.peer_evict_ms = 2000;
  fake_now = 1000;
  coap_context_t *ctx = coap_context_new(&cfg);
  if (!ctx) return;
  coap_transport_t t = {.send = fuzz_send};
  coap_context_set_transport(ctx, &t, NULL);
  coap_address_t local;
  coap_address_from_string(&local, "127.0.0.1", 5683);
  coap_endpoint_t *ep = coap_context_add_endpoint(ctx, COAP_PROTO_UDP, &local);
  hooks->setup(ctx, ep, fake_now);

  size_t pos = 0;
  while (pos + 4 <= size) {
    uint8_t peer = data[pos] & 7, advance = data[pos + 1];
    size_t len = (size_t)data[pos + 2] << 8 | data[pos + 3];
    pos += 4;
    if (len > size - pos) len = size - pos;
    coap_address_t from;
    fuzz_node_peer(&from, peer);
    coap_context_input(ctx, ep, &from, data + pos, len, fake_now);
    pos += len;
    fake_now += (uint64_t)advance * 500;
    coap_context_handle_timeouts(ctx, fake_now);
  }
  if (hooks->finish) hooks->finish(ctx);
  fake_now += 400000;
  coap_context_handle_timeouts(ctx, fake_now);
  coap_context_free(ctx);
}
