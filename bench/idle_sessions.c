/* Does the server's cost per request grow with the number of peers?
 *
 * In one process, without sockets (a socket per session would need 100k
 * file descriptors): a coaps server context, N idle DTLS sessions made by
 * throw-away clients from N distinct fake addresses, then 100 active
 * clients doing GETs round-robin. The server's CPU time per request is
 * measured around its own calls only, with 100, 10k and 100k idle
 * sessions present; memory per idle session comes from the process's
 * resident size.
 *
 * usage: idle-sessions [--idle N,N,...] [--requests R] [--no-cid] [--cookie-always] [--json]
 * --no-cid: the server grants no Connection ID (on by default);
 * --cookie-always: every handshake has the cookie exchange (the default
 * policy, when-needed, lets PSK hellos in without one).
 * Public API only (coap.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coap.h"
#include "inproc_node.h"

#define ACTIVE 100
#define MAX_OUT 64

/* ---- an in-memory network: datagrams from one side wait for the other ---- */

typedef struct datagram {
  coap_address_t from, to;
  size_t len;
  uint8_t data[1500];
} datagram_t;

typedef struct wire {
  datagram_t q[MAX_OUT];
  size_t n;
  int drop; /* a client being abandoned: its close_notify must not arrive */
} wire_t;

typedef struct node {
  coap_context_t *ctx;
  coap_endpoint_t *ep;
  coap_address_t addr;
  wire_t *out; /* where its datagrams go */
} node_t;

static int wire_send(void *user, coap_endpoint_t *ep, const coap_address_t *to, const uint8_t *data,
                     size_t len) {
  node_t *n = user;
  if (n->out->drop || n->out->n == MAX_OUT || len > sizeof n->out->q[0].data) return 0;
  datagram_t *d = &n->out->q[n->out->n++];
  d->from = n->addr;
  d->to = *to;
  d->len = len;
  memcpy(d->data, data, len);
  return 0;
}

static int wire_open(void *user, coap_context_t *ctx, coap_proto_t proto,
                     const coap_address_t *dest, coap_endpoint_t **out) {
  node_t *n = user;
  *out = n->ep;
  return 0;
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld", &kb) == 1) break;
  if (f) fclose(f);
  return kb;
}

static node_t server;
static wire_t to_server, to_client;
static double server_cpu;

static int node_init(node_t *n, const char *ip, uint16_t port, wire_t *out) {
  coap_context_config_t cfg;
  inproc_config(&cfg, 1000000);
  n->out = out;
  coap_transport_t t = {.send = wire_send, .open_client_endpoint = wire_open};
  return inproc_node_new(&cfg, ip, port, &t, n, NULL, &n->ctx, &n->ep, &n->addr);
}

/* Deliver until both directions are quiet; the server's share is timed. */
static void pump(node_t *client) {
  for (int round = 0; round < 64 && (to_server.n || to_client.n); round++) {
    size_t n = to_server.n;
    datagram_t batch[MAX_OUT];
    memcpy(batch, to_server.q, n * sizeof batch[0]);
    to_server.n = 0;
    double t0 = inproc_cpu_us();
    for (size_t i = 0; i < n; i++)
      coap_context_input(server.ctx, server.ep, &batch[i].from, batch[i].data, batch[i].len,
                         inproc_now);
    server_cpu += inproc_cpu_us() - t0;
    n = to_client.n;
    memcpy(batch, to_client.q, n * sizeof batch[0]);
    to_client.n = 0;
    for (size_t i = 0; i < n; i++)
      if (client)
        coap_context_input(client->ctx, client->ep, &batch[i].from, batch[i].data, batch[i].len,
                           inproc_now);
  }
}

typedef struct reply {
  int done, status;
} reply_t;

static void on_reply(coap_context_t *ctx, const coap_reply_t *r, void *user) {
  reply_t *rep = user;
  rep->done = 1;
  rep->status = r->status;
}

static int get(node_t *client) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/time");
  reply_t r = {0, 0};
  if (coap_send_request(client->ctx, &o, on_reply, &r, NULL) < 0) return -1;
  pump(client);
  return r.done && r.status == 0 ? 0 : -1;
}

/* A client at a fresh address makes a session and goes away silently. */
static int add_idle(unsigned i) {
  char ip[32];
  snprintf(ip, sizeof ip, "10.%u.%u.%u", 1 + (i >> 16) % 200, (i >> 8) & 255, i & 255);
  node_t c;
  to_client.drop = 0;
  if (node_init(&c, ip, (uint16_t)(20000 + i % 40000), &to_server) < 0) return -1;
  int rc = get(&c);
  to_server.drop = 1; /* its close_notify never arrives */
  coap_context_free(c.ctx);
  to_server.drop = 0;
  return rc;
}

static void handle_time(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                        coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "12:00:00", 8);
}

int main(int argc, char **argv) {
  const char *idle_list = "100,10000,100000";
  int requests = 100000, json = 0, no_cid = 0, cookie_always = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--idle") && i + 1 < argc)
      idle_list = argv[++i];
    else if (!strcmp(argv[i], "--requests") && i + 1 < argc)
      requests = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--no-cid"))
      no_cid = 1;
    else if (!strcmp(argv[i], "--cookie-always"))
      cookie_always = 1;
    else {
      fprintf(stderr,
              "usage: idle-sessions [--idle N,N,...] [--requests R] [--no-cid] "
              "[--cookie-always] [--json]\n");
      return 64;
    }
  }
  inproc_now = 1000;
  if (node_init(&server, "10.0.0.1", 5684, &to_client) < 0) return 1;
  coap_dtls_context_t *sd = coap_context_dtls(server.ctx);
  if ((no_cid && coap_dtls_set_cid(sd, 0, 0) < 0) ||
      (cookie_always && coap_dtls_set_cookie_policy(sd, COAP_DTLS_COOKIE_ALWAYS, 0) < 0))
    return 1;
  coap_resource_set_handler(coap_resource_add(server.ctx, "time"), COAP_GET, handle_time, NULL);
  static node_t active[ACTIVE];
  for (unsigned i = 0; i < ACTIVE; i++) {
    char ip[32];
    snprintf(ip, sizeof ip, "10.250.0.%u", i + 1);
    if (node_init(&active[i], ip, 5000, &to_server) < 0 || get(&active[i]) < 0) {
      fprintf(stderr, "idle-sessions: active client %u failed\n", i);
      return 1;
    }
  }
  if (json) printf("{\"requests\":%d,\"runs\":[", requests);
  unsigned made = 0;
  long rss_base = rss_kb();
  char *list = strdup(idle_list);
  int first = 1;
  double handshake_cpu = 0;
  unsigned handshakes = 0;
  for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
    unsigned want = (unsigned)atoi(tok);
    server_cpu = 0;
    for (unsigned from = made; made < want; made++)
      if (add_idle(made) < 0) {
        fprintf(stderr, "idle-sessions: idle session %u failed (after %u)\n", made, from);
        return 1;
      }
    handshake_cpu += server_cpu;
    handshakes = made;
    long rss = rss_kb();
    server_cpu = 0;
    int failed = 0;
    for (int r = 0; r < requests; r++) failed += get(&active[r % ACTIVE]) < 0;
    double us = server_cpu / requests;
    double per_session = made ? (double)(rss - rss_base) * 1024 / made : 0;
    if (json)
      printf(
          "%s{\"idle\":%u,\"server_us_per_request\":%.2f,\"server_requests_per_s\":%.0f,"
          "\"failed\":%d,\"rss_bytes_per_idle_session\":%.0f}",
          first ? "" : ",", made, us, 1e6 / us, failed, per_session);
    else
      printf(
          "%7u idle sessions: server %.2f us per request (%.0f req/s per core), %d failed, "
          "%.0f bytes resident per idle session\n",
          made, us, 1e6 / us, failed, per_session);
    fflush(stdout);
    first = 0;
  }
  /* Each idle session was a full PSK handshake (with the cookie exchange
   * only under --cookie-always) plus one GET: the server's share of that. */
  double hs_us = handshakes ? handshake_cpu / handshakes : 0;
  if (json)
    printf("],\"server_us_per_psk_handshake\":%.1f}\n", hs_us);
  else
    printf(
        "server CPU per PSK handshake (%shandshake, one GET): %.1f us "
        "(%.0f/s per core)\n",
        cookie_always ? "cookie, " : "", hs_us, hs_us > 0 ? 1e6 / hs_us : 0);
  free(list);
  for (unsigned i = 0; i < ACTIVE; i++) coap_context_free(active[i].ctx);
  coap_context_free(server.ctx);
  return 0;
}
