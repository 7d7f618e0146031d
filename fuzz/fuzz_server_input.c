/* Fuzz the whole receive path of a node: each input is split into
 * datagrams from up to 8 peers, fed to a server context with resources
 * (including a deferred one), with the virtual clock moving between them so
 * retransmission, dedup and idle timers run too. The table holds only 3
 * peers, so newcomers are refused or evict the peer silent longest. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coaps/context.h"

static uint64_t fake_now;
static uint64_t fuzz_clock(void *user) { return fake_now; }
static void fuzz_rand(void *user, uint8_t *buf, size_t len) { memset(buf, 0x5a, len); }
static int fuzz_send(void *user, coap_endpoint_t *ep, const coap_address_t *to,
                     const uint8_t *data, size_t len) {
  return 0;
}
static void quiet(void *user, coap_log_level_t level, const char *line) {}

static coap_deferred_t *parked;

static void echo(coap_context_t *ctx, coap_resource_t *res,
                 const coap_request_t *req, coap_response_t *resp, void *user) {
  size_t len;
  const uint8_t *p = coap_request_payload(req, &len);
  char q[16];
  coap_request_query(req, "q", q, sizeof q);
  coap_response_set_payload(resp, coap_msg_content_format(coap_request_msg(req)), p, len);
}

static void deferred(coap_context_t *ctx, coap_resource_t *res,
                     const coap_request_t *req, coap_response_t *resp, void *user) {
  if (parked) {
    coap_deferred_send(ctx, parked);
    parked = NULL;
  }
  parked = coap_request_defer(req, resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.clock = fuzz_clock;
  cfg.rand = fuzz_rand;
  cfg.log = quiet;
  cfg.log_level = COAP_LOG_DEBUG;
  cfg.max_peers = 3;
  cfg.peer_evict_ms = 2000;
  fake_now = 1000;
  parked = NULL;
  coap_context_t *ctx = coap_context_new(&cfg);
  if (!ctx) return 0;
  coap_transport_t t = {.send = fuzz_send};
  coap_context_set_transport(ctx, &t, NULL);
  coap_address_t local;
  coap_address_from_string(&local, "127.0.0.1", 5683);
  coap_endpoint_t *ep = coap_context_add_endpoint(ctx, COAP_PROTO_UDP, &local);
  coap_resource_t *r = coap_resource_add(ctx, "echo");
  for (uint8_t m = COAP_GET; m <= COAP_IPATCH; m++) coap_resource_set_handler(r, m, echo, NULL);
  coap_resource_set_attr(r, "rt", "echo");
  r = coap_resource_add(ctx, "later");
  coap_resource_set_handler(r, COAP_GET, deferred, NULL);

  /* Framing: [peer:1][advance:1][len:2][bytes] repeated. */
  size_t pos = 0;
  while (pos + 4 <= size) {
    uint8_t peer = data[pos] & 7, advance = data[pos + 1];
    size_t len = (size_t)data[pos + 2] << 8 | data[pos + 3];
    pos += 4;
    if (len > size - pos) len = size - pos;
    coap_address_t from;
    char host[16] = "10.0.0.1";
    host[7] = (char)('1' + peer);
    coap_address_from_string(&from, host, 40000);
    coap_context_input(ctx, ep, &from, data + pos, len, fake_now);
    pos += len;
    fake_now += (uint64_t)advance * 500;
    coap_context_handle_timeouts(ctx, fake_now);
  }
  if (parked) coap_deferred_send(ctx, parked);
  fake_now += 400000;
  coap_context_handle_timeouts(ctx, fake_now);
  coap_context_free(ctx);
  return 0;
}
