#include "inproc_node.h"

#include <string.h>
#include <time.h>

#define PSK_IDENTITY "bench"
#define PSK_KEY "bench-secret"

uint64_t inproc_now = 1000;

static uint64_t fake_clock(void *user) {
  (void)user;
  return inproc_now;
}

double inproc_cpu_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

void inproc_config(coap_context_config_t *cfg, unsigned peers) {
  coap_context_config_default(cfg);
  cfg->clock = fake_clock;
  cfg->log_level = COAP_LOG_ERROR;
  cfg->max_peers = peers;
  cfg->peer_idle_ms = 24u * 3600 * 1000;
}

static coap_dtls_context_t *psk_dtls(void) {
  coap_dtls_context_t *d = coap_dtls_context_new();
  if (d && coap_dtls_set_psk(d, (const uint8_t *)PSK_IDENTITY, (const uint8_t *)PSK_KEY,
                             strlen(PSK_KEY)) < 0) {
    coap_dtls_context_free(d);
    return NULL;
  }
  return d;
}

int inproc_node_new(const coap_context_config_t *cfg, const char *ip, uint16_t port,
                    const coap_transport_t *t, void *user, coap_dtls_context_t *shared,
                    coap_context_t **ctx, coap_endpoint_t **ep, coap_address_t *addr) {
  *ctx = coap_context_new(cfg);
  if (!*ctx) return -1;
  coap_address_from_string(addr, ip, port);
  *ep = coap_context_add_endpoint(*ctx, COAP_PROTO_DTLS, addr);
  coap_context_set_transport(*ctx, t, user);
  coap_dtls_context_t *d = shared ? coap_dtls_context_ref(shared) : psk_dtls();
  if (!d || coap_context_set_dtls_context(*ctx, d) < 0) return -1;
  return *ep ? 0 : -1;
}

coap_dtls_context_t *inproc_client_dtls(void) {
  coap_dtls_context_t *d = psk_dtls();
  if (d && coap_dtls_set_resumption(d, 0) < 0) {
    coap_dtls_context_free(d);
    return NULL;
  }
  return d;
}
