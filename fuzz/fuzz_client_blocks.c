/* Fuzz the client's answer path, block-wise transfers (RFC 7959) above
 * all: one request goes out (a GET asking for small blocks, or a PUT/POST
 * whose body goes in Block1 blocks), and the fuzzer writes the server's
 * side. Each answer it writes is made to match the request last sent (its
 * token, and its message ID for an ACK), so the fuzzer spends its time on
 * what the client does with codes, block options, ETags and sizes rather
 * than on guessing tokens. The callback must run exactly once per request,
 * with a body no larger than max_body, and once the answers stop it runs
 * by the request's own timers, within the hour of virtual time.
 *
 * Input: [request:1][block:1] then frames [code:1][flags:1][len:1][bytes]:
 * the answer's code, type (flags & 3), a clock step (flags >> 2, × 250 ms),
 * and the options and payload after the token. With block & 0x80 a second
 * request of the same kind goes out at once (a second body to the same
 * path gets a Request-Tag; two bodies fetched at once meet the context's
 * max_reassembly, set just above one max_body). With block & 0x40 the
 * request uses Q-Block (RFC 9177): a GET's sets and missing-block
 * requests, a body's bursts, 2.31 and 4.08 lists (CBOR), the 4.02
 * fallback, and the NON_TIMEOUT timers the clock steps reach. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client_driver.h"
#include "coaps/context.h"

#define MAX_BODY 16384

static struct {
  fuzz_client_env_t env;
  uint8_t last[2048]; /* the client's last datagram */
  size_t last_len;
  int calls, expect;
} f;

static int send_fn(void *user, coap_endpoint_t *ep, const coap_address_t *to, const uint8_t *data,
                   size_t len) {
  if (len <= sizeof f.last) {
    memcpy(f.last, data, len);
    f.last_len = len;
  }
  return 0;
}

static void on_reply(coap_context_t *ctx, const coap_reply_t *reply, void *user) {
  f.calls++;
  if (f.calls > f.expect || reply->payload_len > MAX_BODY) abort();
  if (reply->status == 0 && reply->payload_len && !reply->payload) abort();
}

static void start_request(coap_context_t *ctx, uint8_t which, uint8_t block) {
  static uint8_t body[6000];
  for (size_t i = 0; i < sizeof body; i++) body[i] = (uint8_t)i;
  static const uint8_t methods[] = {COAP_GET, COAP_PUT, COAP_POST, COAP_FETCH};
  coap_request_opts_t o;
  coap_request_opts_init(&o, methods[which & 3], "coap://10.0.0.1/x?y");
  o.block_size = (uint16_t)(16 << (block % 7));
  o.confirmable = !(which & 4);
  o.qblock = block & 0x40 ? 1 : -1;
  if (o.method != COAP_GET) {
    o.payload = body;
    o.payload_len = 1 + (size_t)(which >> 3) * 190;
  }
  if (coap_send_request(ctx, &o, on_reply, NULL, NULL) < 0) abort();
  if ((block & 0x80) && coap_send_request(ctx, &o, on_reply, NULL, NULL) < 0) abort();
}

/* The answer to the last request: its token, its message ID for an ACK. */
static size_t answer(const uint8_t *frame, size_t n, uint8_t *out) {
  uint8_t tkl = f.last[0] & 0x0F, type = frame[1] & 3;
  if (f.last_len < 4u + tkl) return 0;
  fuzz_client_header(&f.env, type, tkl, frame[0], f.last, out);
  memcpy(out + 4, f.last + 4, tkl);
  memcpy(out + 4 + tkl, frame + 3, n);
  return 4u + tkl + n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  memset(&f, 0, sizeof f);
  coap_context_t *ctx = fuzz_client_new(&f.env, MAX_BODY, send_fn);
  coap_address_t server;
  coap_address_from_string(&server, "10.0.0.1", 5683);
  f.expect = data[1] & 0x80 ? 2 : 1;
  start_request(ctx, data[0], data[1]);
  size_t pos = 2;
  while (pos + 3 <= size && f.calls < f.expect) {
    size_t n = data[pos + 2];
    if (pos + 3 + n > size) n = size - pos - 3;
    uint8_t dgram[2048];
    size_t len = answer(data + pos, n, dgram);
    if (len) coap_context_input(ctx, f.env.ep, &server, dgram, len, f.env.now);
    f.env.now += (uint64_t)(data[pos + 1] >> 2) * 250;
    coap_context_handle_timeouts(ctx, f.env.now);
    pos += 3 + n;
  }
  /* Once the answers stop, every request ends by its own timers within
   * the hour: none waits for a count that can no longer be met (a stuck
   * transfer is a finding, not something coap_context_free tidies up). */
  uint64_t quiet = f.env.now;
  while (f.calls < f.expect) {
    uint64_t next = coap_context_next_timeout(ctx);
    if (next == UINT64_MAX || next > quiet + 3600 * 1000ull) abort();
    if (next > f.env.now) f.env.now = next;
    coap_context_handle_timeouts(ctx, f.env.now);
  }
  coap_context_free(ctx);
  if (f.calls != f.expect) abort();
  return 0;
}
