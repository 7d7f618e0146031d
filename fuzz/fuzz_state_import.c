/* The inside of a session state buffer (coap_contexts_import_sessions):
 * what an attacker cannot write without the state key, but a bug in the
 * writer, a partial write or a future format could. Any bytes, sealed
 * here under the known key as format 1, 2 or 3 with any worker count,
 * are read into 1 to 3 workers (steered by CID as coaps serve sets them
 * up), each with an observable /temp, an observable /time and a /plain
 * that is not observable, so that format 3's Observe relations attach,
 * end (a resource gone or not observable, over the limit of 2 per peer)
 * or send their state again: no crash, leak or read past the buffer; a
 * buffer is taken (the count being the sessions the workers hold
 * afterwards) or refused as malformed inside its seal. Then each
 * worker's sessions, with the relations they got, are exported again,
 * which must succeed and carry no more relations than the workers hold.
 * Framing: [workers now][format (data[1] % 3 + 1) and workers then
 * (data[1] / 3 % 4 + 1)][the sealed bytes]. */
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>

#include "coaps/coaps.h"
#include "security/dtls_state.h"

#define NODE 1
#define NOW 1800000000000ull
#define MAX_WORKERS 3

static const uint8_t state_key[32] = "fuzz state key, thirty-two bytes";

static uint64_t fuzz_clock(void *user) {
  return 1000;
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

static void show(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                 coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "21.5", 4);
}

static void add(coap_context_t *ctx, const char *path, int observable) {
  coap_resource_t *r = coap_resource_add(ctx, path);
  if (!r) abort();
  coap_resource_set_handler(r, COAP_GET, show, NULL);
  coap_resource_set_handler(r, COAP_FETCH, show, NULL);
  if (coap_resource_set_observable(r, observable) < 0) abort();
}

static void put_u64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

/* |in| sealed under a header of |version| and |workers|: the length. */
static long seal(unsigned version, unsigned workers, const uint8_t *in, size_t len, uint8_t *out,
                 size_t cap) {
  memcpy(out, "coapstat", 8);
  out[8] = (uint8_t)version;
  out[9] = (uint8_t)(version == 1 ? 0 : workers);
  out[10] = out[11] = 0;
  put_u64(out + 12, NODE);
  put_u64(out + 20, NOW);
  memset(out + 28, 0x5a, 12);
  gnutls_aead_cipher_hd_t h;
  gnutls_datum_t k = {(unsigned char *)state_key, 32};
  if (gnutls_aead_cipher_init(&h, GNUTLS_CIPHER_AES_256_GCM, &k) < 0) abort();
  size_t sealed = cap - COAP_DTLS_STATE_HEADER;
  if (gnutls_aead_cipher_encrypt(h, out + 28, 12, out, COAP_DTLS_STATE_HEADER, COAP_DTLS_STATE_TAG,
                                 in, len, out + COAP_DTLS_STATE_HEADER, &sealed) < 0)
    abort();
  gnutls_aead_cipher_deinit(h);
  return (long)(COAP_DTLS_STATE_HEADER + sealed);
}

static coap_context_t *worker(size_t index, size_t of) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.clock = fuzz_clock;
  cfg.rand = fuzz_rand;
  cfg.log = quiet;
  cfg.log_level = COAP_LOG_DEBUG; /* the log lines' formatting runs too */
  cfg.max_peers = 4;
  cfg.max_observers_per_peer = 2;
  coap_context_t *ctx = coap_context_new(&cfg);
  if (!ctx) abort();
  coap_transport_t t = {.send = fuzz_send};
  coap_context_set_transport(ctx, &t, NULL);
  coap_dtls_context_t *d = coap_dtls_new_context(ctx);
  if (!d || coap_dtls_set_psk(d, (const uint8_t *)"me", (const uint8_t *)"secret", 6) < 0 ||
      (of > 1 && coap_dtls_set_cid_worker(d, (unsigned)index) < 0) ||
      coap_context_set_dtls_context(ctx, d) < 0)
    abort();
  coap_address_t local;
  coap_address_from_string(&local, "127.0.0.1", 5684);
  if (!coap_context_add_endpoint(ctx, COAP_PROTO_DTLS, &local)) abort();
  add(ctx, "temp", 1);
  add(ctx, "time", 1);
  add(ctx, "plain", 0);
  return ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2 || size > 8192) return 0;
  size_t n = (size_t)data[0] % MAX_WORKERS + 1;
  unsigned version = data[1] % 3u + 1, was = (unsigned)(data[1] / 3u) % 4 + 1;
  static uint8_t sealed[8192 + COAP_DTLS_STATE_OVERHEAD];
  long len = seal(version, was, data + 2, size - 2, sealed, sizeof sealed);
  coap_context_t *ctxs[MAX_WORKERS];
  for (size_t i = 0; i < n; i++) ctxs[i] = worker(i, n);
  const char *why = NULL;
  long rc = coap_contexts_import_sessions(ctxs, n, state_key, 32, NODE, NOW, 60000, NULL, sealed,
                                          (size_t)len, &why);
  uint64_t held = 0, observers = 0;
  for (size_t i = 0; i < n; i++) {
    coap_stats_t st;
    coap_context_get_stats(ctxs[i], &st);
    for (int m = 0; m < COAP_DTLS_MODE_SLOTS; m++) held += st.dtls_sessions_by_mode[m];
    observers += st.observers;
  }
  if (observers > held * 2) abort(); /* max_observers_per_peer, and only on sessions */
  if (rc < 0 && (rc != COAP_E_INVALID_ARG || strcmp(why, "malformed inside its seal") != 0))
    abort();
  if (rc >= 0 && (uint64_t)rc != held) abort();
  if (rc < 0 && (held || observers)) abort(); /* all or nothing */
  /* What was taken can be saved again. */
  long cap = coap_contexts_export_sessions(ctxs, n, state_key, 32, NODE, NOW, NULL, 0, NULL);
  uint8_t *out = cap > 0 ? malloc((size_t)cap) : NULL;
  size_t carried = 0;
  if (!out || coap_contexts_export_sessions(ctxs, n, state_key, 32, NODE, NOW, out, (size_t)cap,
                                            &carried) < 0)
    abort();
  if (rc >= 0 && carried > held) abort();
  free(out);
  for (size_t i = 0; i < n; i++) coap_context_free(ctxs[i]);
  return 0;
}
