#include "inproc_node.h"

#include <stdio.h>
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

long inproc_rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld", &kb) == 1) break;
  if (f) fclose(f);
  return kb;
}

static int queue_send(void *user, coap_endpoint_t *ep, const coap_address_t *to,
                      const uint8_t *data, size_t len) {
  inproc_node_t *n = user;
  if (n->out->drop || n->out->n == INPROC_QUEUE_MAX || len > sizeof n->out->q[0].data) return 0;
  inproc_datagram_t *d = &n->out->q[n->out->n++];
  d->from = n->addr;
  d->to = *to;
  d->len = len;
  memcpy(d->data, data, len);
  return 0;
}

static int own_endpoint(void *user, coap_context_t *ctx, coap_proto_t proto,
                        const coap_address_t *dest, coap_endpoint_t **out) {
  *out = ((inproc_node_t *)user)->ep;
  return 0;
}

int inproc_node_init(inproc_node_t *n, unsigned peers, const char *ip, uint16_t port,
                     inproc_queue_t *out, coap_dtls_context_t *shared) {
  coap_context_config_t cfg;
  inproc_config(&cfg, peers);
  n->out = out;
  coap_transport_t t = {.send = queue_send, .open_client_endpoint = own_endpoint};
  return inproc_node_new(&cfg, ip, port, &t, n, shared, &n->ctx, &n->ep, &n->addr);
}

/* What waits in |q| handed to |to| (NULL: dropped), from a copy: |to|
 * may send into |q| again while it reads. With |cpu_us|, the time |to|
 * takes over it is added there (the copy left out). */
static void deliver(inproc_queue_t *q, inproc_node_t *to, double *cpu_us) {
  inproc_datagram_t batch[INPROC_QUEUE_MAX];
  size_t n = q->n;
  memcpy(batch, q->q, n * sizeof batch[0]);
  q->n = 0;
  if (!to) return;
  double t0 = cpu_us ? inproc_cpu_us() : 0;
  for (size_t i = 0; i < n; i++)
    coap_context_input(to->ctx, to->ep, &batch[i].from, batch[i].data, batch[i].len, inproc_now);
  if (cpu_us) *cpu_us += inproc_cpu_us() - t0;
}

void inproc_pump(inproc_net_t *net, inproc_node_t *server, inproc_node_t *client) {
  for (int round = 0; round < 64 && (net->to_server.n || net->to_client.n); round++) {
    deliver(&net->to_server, server, &net->server_cpu_us);
    deliver(&net->to_client, client, NULL);
  }
}

static void answer_time(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                        coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "12:00:00", 8);
}

void inproc_serve_time(inproc_node_t *server) {
  coap_resource_set_handler(coap_resource_add(server->ctx, "time"), COAP_GET, answer_time, NULL);
}

typedef struct reply {
  int done, status;
  uint8_t code;
} reply_t;

static void on_reply(coap_context_t *ctx, const coap_reply_t *r, void *user) {
  reply_t *rep = user;
  rep->done = 1;
  rep->status = r->status;
  rep->code = r->code;
}

/* Answers that were not 2.05 Content: the first few are named. */
#define WRONG_CODES_SHOWN 5
static unsigned wrong_codes;

int inproc_get(inproc_net_t *net, inproc_node_t *server, inproc_node_t *client, const char *uri) {
  /* Static: a request left unanswered is cancelled when its context is
   * freed, and its callback must not write into a stack frame long gone. */
  static reply_t r;
  r.done = r.status = 0;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, uri);
  int sent = coap_send_request(client->ctx, &o, on_reply, &r, NULL);
  if (sent < 0) return sent;
  inproc_pump(net, server, client);
  if (!r.done) return COAP_E_TIMEOUT;
  if (r.status < 0) return r.status;
  if (r.code != COAP_CONTENT) {
    /* A request answered with an error is no request served. */
    if (wrong_codes++ < WRONG_CODES_SHOWN)
      fprintf(stderr, "GET %s: answered %s, not 2.05 Content\n", uri, coap_code_name(r.code));
    return INPROC_WRONG_CODE;
  }
  return 0;
}

const char *inproc_strerror(int rc) {
  return rc == INPROC_WRONG_CODE ? "answered with another code than 2.05 Content"
                                 : coap_strerror(rc);
}
