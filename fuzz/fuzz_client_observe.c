/* Fuzz the client's Observe paths (RFC 7641, and RFC 7959 §3.4 for
 * notifications in blocks): one observation is registered and the fuzzer
 * writes what the server sends — notifications with any code, type,
 * options (Observe, Max-Age, Block2, ETag, ...) and payload, under the
 * registration's token or the token of the request the client sent last
 * (a block fetch, a re-registration, a deregistration) — with clock steps
 * that let Max-Age and the timeouts pass, and the caller's own moves:
 * coap_observe_cancel and coap_cancel_request. The callback must never run
 * after its last call (observing 0), must run that last call exactly once
 * (on coap_context_free at the latest) unless the request was cancelled
 * with coap_cancel_request, and a notification must carry its number.
 *
 * Input: [mode:1] then frames [op:1][flags:1][code:1][len:1][bytes]:
 * mode bit 0 NON, bits 1-3 the block size asked (7: none), bit 4 FETCH;
 * op & 3: the token (0 the registration's, 1 the last request's, 2 a
 * stranger's), op >> 2 & 3: 0 send the message, 1 coap_observe_cancel,
 * 2 coap_cancel_request, 3 nothing; flags & 3 the type, flags >> 2 a clock
 * step (its square × 100 ms, up to 397 s); bytes the options and payload
 * after the token. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client_driver.h"
#include "coaps/context.h"

#define MAX_BODY 8192

static struct {
  fuzz_client_env_t env;
  uint8_t first[2048]; /* the registration */
  size_t first_len;
  uint8_t last[2048]; /* the client's last request */
  size_t last_len;
  int calls, finals, cancelled;
} f;

static int send_fn(void *user, coap_endpoint_t *ep, const coap_address_t *to, const uint8_t *data,
                   size_t len) {
  /* Requests only (code class 0, not empty): ACKs and RSTs are ours. */
  if (len < 4 || len > sizeof f.last || data[1] == 0 || data[1] >> 5 != 0) return 0;
  memcpy(f.last, data, len);
  f.last_len = len;
  if (!f.first_len) {
    memcpy(f.first, data, len);
    f.first_len = len;
  }
  return 0;
}

static void on_reply(coap_context_t *ctx, const coap_reply_t *reply, void *user) {
  f.calls++;
  if (f.finals || f.cancelled) abort(); /* nothing after the last call */
  if (!reply->observing) f.finals++;
  if (reply->observing && (reply->status || !reply->has_observe || reply->observe > 0xffffff))
    abort();
  if (reply->payload_len > MAX_BODY || (reply->payload_len && !reply->payload)) abort();
}

/* A message from the server: |code|, |type|, the token chosen by |which|
 * (a message ID from the request for an ACK), |rest| after the token. */
static size_t message(uint8_t which, uint8_t type, uint8_t code, const uint8_t *rest, size_t n,
                      uint8_t *out) {
  const uint8_t *req = which == 0 ? f.first : f.last;
  size_t req_len = which == 0 ? f.first_len : f.last_len;
  uint8_t tkl = req_len ? req[0] & 0x0F : 0;
  if (req_len < 4u + tkl) return 0;
  fuzz_client_header(&f.env, type, which == 2 ? 4 : tkl, code, f.last, out);
  fuzz_client_rand_step(&f.env);
  if (which == 2) {
    memcpy(out + 4, "\xde\xad\xbe\xef", 4);
    tkl = 4;
  } else {
    memcpy(out + 4, req + 4, tkl);
  }
  memcpy(out + 4 + tkl, rest, n);
  return 4u + tkl + n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  memset(&f, 0, sizeof f);
  coap_context_t *ctx = fuzz_client_new(&f.env, MAX_BODY, send_fn);
  coap_address_t server;
  coap_address_from_string(&server, "10.0.0.1", 5683);
  coap_request_opts_t o;
  coap_request_opts_init(&o, data[0] & 0x10 ? COAP_FETCH : COAP_GET, "coap://10.0.0.1/obs");
  o.observe = 1;
  o.confirmable = !(data[0] & 1);
  uint8_t szx = (data[0] >> 1) & 7;
  if (szx < 7) o.block_size = (uint16_t)(16 << szx);
  coap_request_id_t id;
  if (coap_send_request(ctx, &o, on_reply, NULL, &id) < 0) abort();
  size_t pos = 1;
  while (pos + 4 <= size && !f.finals) {
    const uint8_t *fr = data + pos;
    size_t n = fr[3];
    if (pos + 4 + n > size) n = size - pos - 4;
    int action = (fr[0] >> 2) & 3;
    if (action == 0) {
      uint8_t dgram[2048];
      size_t len = message(fr[0] & 3, fr[1] & 3, fr[2], fr + 4, n, dgram);
      if (len) coap_context_input(ctx, f.env.ep, &server, dgram, len, f.env.now);
    } else if (action == 1) {
      int rc = coap_observe_cancel(ctx, id);
      if (rc != 0 && rc != COAP_E_NOT_FOUND && rc != COAP_E_INVALID_ARG) abort();
    } else if (action == 2) {
      if (coap_cancel_request(ctx, id) == 0) f.cancelled = 1;
    }
    uint64_t step = fr[1] >> 2;
    f.env.now += step * step * 100;
    coap_context_handle_timeouts(ctx, f.env.now);
    pos += 4 + n;
  }
  coap_context_free(ctx);
  /* Exactly one last call, unless it was forgotten on purpose. */
  if (f.finals != (f.cancelled ? 0 : 1)) abort();
  return 0;
}
