/* Linked against coaps_core alone (src/common … src/context, no src/io or
 * src/seed): the sans-I/O core is a whole node. Two contexts made with the
 * core's constructor talk through an in-memory transport on a virtual
 * clock; a GET gets its answer. Without the shell a context has no
 * resolver (a host name is COAP_E_RESOLVE) and opens no socket by itself
 * (no transport: COAP_E_STATE). Run by tests/interop/layering.sh. */
#include <stdio.h>
#include <string.h>

#include "coaps/coaps.h"
#include "context/shell.h"

#define QUEUE_MAX 16

typedef struct datagram {
  coap_context_t *to_ctx;
  coap_endpoint_t *to_ep;
  coap_address_t from;
  uint8_t data[1500];
  size_t len;
} datagram_t;

typedef struct net {
  datagram_t queue[QUEUE_MAX];
  size_t n;
  uint64_t now;
  coap_context_t *server, *client;
  coap_endpoint_t *server_ep, *client_ep;
} net_t;

static net_t net;

static uint64_t virtual_now(void *user) {
  return ((net_t *)user)->now;
}

static int mem_send(void *user, coap_endpoint_t *ep, const coap_address_t *to, const uint8_t *data,
                    size_t len) {
  net_t *n = user;
  if (n->n == QUEUE_MAX || len > sizeof n->queue[0].data) return COAP_E_NOMEM;
  datagram_t *d = &n->queue[n->n++];
  int to_server = ep == n->client_ep;
  d->to_ctx = to_server ? n->server : n->client;
  d->to_ep = to_server ? n->server_ep : n->client_ep;
  d->from = *coap_endpoint_address(ep);
  memcpy(d->data, data, len);
  d->len = len;
  (void)to;
  return 0;
}

static int mem_open_client(void *user, coap_context_t *ctx, coap_proto_t proto,
                           const coap_address_t *dest, coap_endpoint_t **out) {
  net_t *n = user;
  coap_address_t local;
  coap_address_from_string(&local, "127.0.0.2", 40000);
  n->client_ep = *out = coap_context_add_endpoint(ctx, proto, &local);
  return *out ? 0 : COAP_E_NOMEM;
}

static void hello(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                  coap_response_t *resp, void *user) {
  coap_response_set_code(resp, COAP_CONTENT);
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "hello from the core", 19);
}

typedef struct outcome {
  int done, status;
  uint8_t code;
  char body[64];
} outcome_t;

static void on_reply(coap_context_t *ctx, const coap_reply_t *reply, void *user) {
  outcome_t *o = user;
  o->done = 1;
  o->status = reply->status;
  o->code = reply->code;
  size_t len = reply->payload_len < sizeof o->body - 1 ? reply->payload_len : sizeof o->body - 1;
  if (reply->status == 0 && len) memcpy(o->body, reply->payload, len);
  o->body[len] = '\0';
}

static int check(int ok, const char *what) {
  printf("%s: %s\n", ok ? "ok" : "FAIL", what);
  return ok ? 0 : 1;
}

int main(void) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.clock = virtual_now;
  cfg.clock_user = &net;
  net.now = 1000;
  net.server = coap_context_create(COAP_CONTEXT_CONFIG_VERSION, &cfg, NULL);
  net.client = coap_context_create(COAP_CONTEXT_CONFIG_VERSION, &cfg, NULL);
  coap_context_t *bare = coap_context_create(COAP_CONTEXT_CONFIG_VERSION, &cfg, NULL);
  if (!net.server || !net.client || !bare) return check(0, "contexts made");
  coap_transport_t t = {.send = mem_send, .open_client_endpoint = mem_open_client};
  coap_context_set_transport(net.server, &t, &net);
  coap_context_set_transport(net.client, &t, &net);
  coap_address_t server_addr;
  coap_address_from_string(&server_addr, "127.0.0.1", COAP_DEFAULT_PORT);
  net.server_ep = coap_context_add_endpoint(net.server, COAP_PROTO_UDP, &server_addr);
  coap_resource_set_handler(coap_resource_add(net.server, "hello"), COAP_GET, hello, NULL);

  int failures = 0;
  outcome_t got = {0};
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coap://127.0.0.1/hello");
  failures += check(coap_send_request(net.client, &o, on_reply, &got, NULL) == 0,
                    "a request goes out through the application's transport");
  for (int round = 0; round < 8 && !got.done; round++) {
    datagram_t batch[QUEUE_MAX];
    size_t n = net.n;
    memcpy(batch, net.queue, n * sizeof batch[0]);
    net.n = 0;
    net.now += 5;
    for (size_t i = 0; i < n; i++)
      coap_context_input(batch[i].to_ctx, batch[i].to_ep, &batch[i].from, batch[i].data,
                         batch[i].len, net.now);
  }
  failures += check(got.done && got.status == 0 && got.code == COAP_CONTENT &&
                        strcmp(got.body, "hello from the core") == 0,
                    "the answer is 2.05 \"hello from the core\"");

  outcome_t unused = {0};
  coap_request_opts_init(&o, COAP_GET, "coap://core-only.invalid/hello");
  int rc = coap_send_request(net.client, &o, on_reply, &unused, NULL);
  failures += check(rc == COAP_E_RESOLVE, "without the shell a host name does not resolve");
  coap_request_opts_init(&o, COAP_GET, "coap://127.0.0.1/hello");
  rc = coap_send_request(bare, &o, on_reply, &unused, NULL);
  failures += check(rc == COAP_E_STATE && !unused.done,
                    "without the shell or a transport no socket opens by itself");

  coap_context_free(bare);
  coap_context_free(net.client);
  coap_context_free(net.server);
  return failures ? 1 : 0;
}
