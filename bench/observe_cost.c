/* What does a notification cost the server, next to a GET?
 *
 * In one process, without sockets: a coaps server context, N client
 * contexts (10,000 by default), each with its own DTLS-PSK session to the
 * server from an address of its own, each observing one resource (RFC
 * 7641). Then, interleaved round by round:
 *  - notify: the resource changes, coap_resource_notify() sends every
 *    observer a notification; the clients take them (and ACK the CON
 *    ones, one in observe_con_every) and the server takes those ACKs;
 *  - GET: every client GETs a resource with the same handler (not
 *    observed), the server answers each.
 * The server's CPU time is measured around its own calls only (input,
 * notify, timeouts; CLOCK_THREAD_CPUTIME_ID), so the clients' work is
 * left out. Printed: µs per notification, µs per DTLS GET and their
 * ratio (issue 12's target: at most 1.2).
 *
 * Memory per observation, beyond its peer: the bytes the allocator holds
 * for the server (mallinfo2: in use, chunk headers included), added up
 * over the server's calls while the N observations are registered and
 * the first notification goes out, on sessions that had already done a
 * GET of the same resource, less what a round of plain GETs leaves (the
 * message layer keeps each request a while, the registration too: that
 * is the request's, not the observation's; of a control round before and
 * one after, the smaller); divided by N (target: at most 128 bytes).
 *
 * Every notification is checked: each client must end each round holding
 * the value just published, and the run fails (exit 1) when one did not,
 * when a registration was refused or when a datagram could not be queued.
 *
 * --con-every K sets the server's observe_con_every (default 20, the
 * library's; 1: every notification CON, each with its ACK to take).
 *
 * usage: observe-cost [--observers N] [--rounds R] [--con-every K] [--json]
 * Public API only (coap.h). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coap.h"
#include "inproc_node.h"

#define SLOT 1400 /* larger than any datagram here (MTU 1280) */

/* ---- an in-memory network: datagrams wait in a queue per direction ---- */

typedef struct datagram {
  coap_address_t from, to;
  size_t len;
  uint8_t data[SLOT];
} datagram_t;

/* Allocated once, before anything is measured: the queues must not make
 * the server's allocations look bigger. */
typedef struct queue {
  datagram_t *q;
  size_t n, cap;
  unsigned long dropped;
} queue_t;

typedef struct node {
  coap_context_t *ctx;
  coap_endpoint_t *ep;
  coap_address_t addr;
  queue_t *out;
  /* client side: the observation */
  unsigned notified, last_value, replies, failed;
  int observing;
} node_t;

static queue_t to_server, to_clients;
static node_t server;
static node_t *clients;
static unsigned n_clients;

static int queue_init(queue_t *q, size_t cap) {
  q->q = malloc(cap * sizeof *q->q);
  q->cap = cap;
  return q->q ? 0 : -1;
}

static int net_send(void *user, coap_endpoint_t *ep, const coap_address_t *to, const uint8_t *data,
                    size_t len) {
  node_t *n = user;
  if (n->out->n == n->out->cap || len > SLOT) {
    n->out->dropped++; /* reported: the run fails */
    return 0;
  }
  datagram_t *d = &n->out->q[n->out->n++];
  d->from = n->addr;
  d->to = *to;
  d->len = len;
  memcpy(d->data, data, len);
  return 0;
}

static int net_open(void *user, coap_context_t *ctx, coap_proto_t proto, const coap_address_t *dest,
                    coap_endpoint_t **out) {
  node_t *n = user;
  *out = n->ep;
  return 0;
}

static int con_every; /* 0: the library's default */

static size_t heap_bytes(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

/* Client i lives at 10.(1 + i / 65536).(i / 256 % 256).(i % 256):5000,
 * so a datagram's destination names its client without a lookup table. */
static void client_ip(unsigned i, char *buf, size_t cap) {
  snprintf(buf, cap, "10.%u.%u.%u", 1 + i / 65536, (i / 256) % 256, i % 256);
}
static node_t *client_at(const coap_address_t *a) {
  if (a->addr.sa.sa_family != AF_INET) return NULL;
  uint32_t ip = ntohl(a->addr.sin.sin_addr.s_addr);
  unsigned i = (((ip >> 16) & 255) - 1) * 65536 + ((ip >> 8) & 255) * 256 + (ip & 255);
  return i < n_clients ? &clients[i] : NULL;
}

static int node_init(node_t *n, const char *ip, uint16_t port, queue_t *out, unsigned peers,
                     coap_dtls_context_t *shared) {
  coap_context_config_t cfg;
  inproc_config(&cfg, peers);
  cfg.max_observers = peers;
  if (con_every) cfg.observe_con_every = (uint16_t)con_every;
  n->out = out;
  coap_transport_t t = {.send = net_send, .open_client_endpoint = net_open};
  return inproc_node_new(&cfg, ip, port, &t, n, shared, &n->ctx, &n->ep, &n->addr);
}

/* ---- the server's calls, timed (and their allocations added up) ---- */

static double server_cpu;
static long long server_heap; /* bytes the server's calls left allocated */
static int count_heap;

static void server_begin(double *t0, size_t *h0) {
  *h0 = count_heap ? heap_bytes() : 0;
  *t0 = inproc_cpu_us();
}
static void server_end(double t0, size_t h0) {
  server_cpu += inproc_cpu_us() - t0;
  if (count_heap) server_heap += (long long)heap_bytes() - (long long)h0;
}

static void server_timeouts(void) {
  if (coap_context_next_timeout(server.ctx) > inproc_now) return;
  double t0;
  size_t h0;
  server_begin(&t0, &h0);
  coap_context_handle_timeouts(server.ctx, inproc_now);
  server_end(t0, h0);
}

/* Deliver until both directions are quiet: the server's share timed. */
static void pump(void) {
  server_timeouts();
  while (to_server.n || to_clients.n) {
    double t0;
    size_t h0;
    server_begin(&t0, &h0);
    for (size_t i = 0; i < to_server.n; i++) {
      datagram_t *d = &to_server.q[i];
      coap_context_input(server.ctx, server.ep, &d->from, d->data, d->len, inproc_now);
    }
    server_end(t0, h0);
    to_server.n = 0;
    /* The clients answer into to_server, which is empty now; what the
     * server sends meanwhile (nothing: it is not called) cannot mix in. */
    size_t n = to_clients.n;
    to_clients.n = 0;
    static datagram_t *batch;
    static size_t batch_cap;
    if (n > batch_cap) { /* grows before the measured rounds, not in them */
      free(batch);
      batch = malloc(n * sizeof *batch);
      batch_cap = batch ? n : 0;
      if (!batch) {
        to_clients.dropped += n;
        return;
      }
    }
    memcpy(batch, to_clients.q, n * sizeof *batch);
    for (size_t i = 0; i < n; i++) {
      node_t *c = client_at(&batch[i].to);
      if (c)
        coap_context_input(c->ctx, c->ep, &batch[i].from, batch[i].data, batch[i].len, inproc_now);
      else
        to_clients.dropped++;
    }
    server_timeouts();
  }
}

/* ---- resources and replies ---- */

static unsigned state; /* the observed value */

static void handle_value(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                         coap_response_t *resp, void *user) {
  char buf[16];
  int len = snprintf(buf, sizeof buf, "%u", state);
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, buf, (size_t)len);
}

static unsigned parse_value(const coap_reply_t *r) {
  unsigned v = 0;
  for (size_t i = 0; i < r->payload_len && r->payload[i] >= '0' && r->payload[i] <= '9'; i++)
    v = v * 10 + (unsigned)(r->payload[i] - '0');
  return v;
}

static void on_get(coap_context_t *ctx, const coap_reply_t *r, void *user) {
  node_t *c = user;
  if (r->status == 0 && r->code == COAP_CONTENT)
    c->replies++;
  else
    c->failed++;
}

static void on_notify(coap_context_t *ctx, const coap_reply_t *r, void *user) {
  node_t *c = user;
  c->observing = r->observing;
  if (r->status != 0 || r->code != COAP_CONTENT) {
    c->failed++;
    return;
  }
  c->notified++;
  c->last_value = parse_value(r);
}

static int send_get(node_t *c, const char *uri, int observe) {
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, uri);
  o.observe = observe;
  return coap_send_request(c->ctx, &o, observe ? on_notify : on_get, c, NULL);
}

/* Every client sends a GET of |uri| (observing or not), then all are
 * delivered. Returns the clients that got no 2.05. */
static unsigned get_round(const char *uri, int observe) {
  unsigned bad = 0;
  for (unsigned i = 0; i < n_clients; i++) {
    clients[i].replies = clients[i].failed = 0;
    if (send_get(&clients[i], uri, observe) < 0) clients[i].failed++;
  }
  pump();
  for (unsigned i = 0; i < n_clients; i++)
    if (clients[i].failed || (observe ? !clients[i].observing : clients[i].replies != 1)) bad++;
  return bad;
}

/* The value changes and every observer is notified. Returns the clients
 * that do not hold the new value afterwards. */
static unsigned notify_round(coap_resource_t *res, int *notified) {
  state++;
  double t0;
  size_t h0;
  server_begin(&t0, &h0);
  *notified = coap_resource_notify(res);
  server_end(t0, h0);
  pump();
  unsigned bad = 0;
  for (unsigned i = 0; i < n_clients; i++)
    if (clients[i].last_value != state || !clients[i].observing || clients[i].failed) bad++;
  return bad;
}

static void usage(void) {
  fprintf(stderr, "usage: observe-cost [--observers N] [--rounds R] [--con-every K] [--json]\n");
  exit(64);
}

/* Everything the run found, for the report. */
typedef struct results {
  unsigned rounds;
  double handshake_us, notify_us, get_us;
  int have_heap, control_steady;
  long long registered, control_before, control_after; /* heap bytes */
  double bytes_per_observation;
  unsigned long notifications, gets, stale, get_failed, dropped;
  unsigned long long sent, removed;
  int ok;
} results_t;

static unsigned parse_args(int argc, char **argv, int *json) {
  unsigned rounds = 20;
  n_clients = 10000;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--observers") && i + 1 < argc)
      n_clients = (unsigned)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
      rounds = (unsigned)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--con-every") && i + 1 < argc)
      con_every = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--json"))
      *json = 1;
    else
      usage();
  }
  if (n_clients < 1 || n_clients > 200 * 65536 || rounds < 1 || con_every < 0 || con_every > 65535)
    usage();
  return rounds;
}

/* The server with /obs (observable) and /plain, the same handler. */
static coap_resource_t *make_server(void) {
  if (node_init(&server, "10.0.0.1", 5684, &to_clients, n_clients + 16, NULL) < 0) return NULL;
  coap_resource_t *obs = coap_resource_add(server.ctx, "obs");
  coap_resource_t *plain = coap_resource_add(server.ctx, "plain");
  if (!obs || !plain || coap_resource_set_handler(obs, COAP_GET, handle_value, NULL) < 0 ||
      coap_resource_set_handler(plain, COAP_GET, handle_value, NULL) < 0 ||
      coap_resource_set_observable(obs, 1) < 0)
    return NULL;
  return obs;
}

/* Sessions: a handshake and a GET of /obs (not observing) each, one
 * client at a time. Returns the server's CPU per session, or -1. */
static double make_sessions(coap_dtls_context_t *cd) {
  server_cpu = 0;
  for (unsigned i = 0; i < n_clients; i++) {
    char ip[32];
    client_ip(i, ip, sizeof ip);
    node_t *c = &clients[i];
    if (node_init(c, ip, 5000, &to_server, 4, cd) < 0 ||
        send_get(c, "coaps://10.0.0.1/obs", 0) < 0 || (pump(), c->replies != 1)) {
      fprintf(stderr, "observe-cost: client %u got no session or no answer\n", i);
      return -1;
    }
  }
  return server_cpu / n_clients;
}

/* Registration and the first notification, their allocations counted
 * between two control rounds of plain GETs. Each request, the
 * registration too, leaves the message layer's duplicate cache an entry
 * (it holds a peer's recent requests): what a control round leaves is the
 * request's share, not the observation's, and is subtracted — the smaller
 * control, so that what it leaves out counts against the observation,
 * never for it. Returns 0, or -1 when not every client observes. */
static int register_all(coap_resource_t *obs, results_t *r) {
  count_heap = 1;
  server_heap = 0;
  unsigned bad = get_round("coaps://10.0.0.1/plain", 0);
  r->control_before = server_heap;
  server_heap = 0;
  bad += get_round("coaps://10.0.0.1/obs", 1);
  int notified = 0;
  bad += notify_round(obs, &notified);
  r->registered = server_heap;
  server_heap = 0;
  bad += get_round("coaps://10.0.0.1/plain", 0);
  r->control_after = server_heap;
  count_heap = 0;
  coap_stats_t st;
  coap_context_get_stats(server.ctx, &st);
  size_t observers = coap_resource_observer_count(obs);
  if (observers != n_clients || st.observers != n_clients || (unsigned)notified != n_clients ||
      bad) {
    fprintf(stderr,
            "observe-cost: %zu observers (stats %llu), %d notified, %u failed or without the new "
            "value, of %u\n",
            observers, (unsigned long long)st.observers, notified, bad, n_clients);
    return -1;
  }
  /* Under the sanitizers the allocator is theirs and mallinfo2 says 0:
   * no figure then, rather than a false one. */
  r->have_heap = heap_bytes() > 0;
  long long control = r->control_before < r->control_after ? r->control_before : r->control_after;
  r->bytes_per_observation = (double)(r->registered - control) / n_clients;
  /* Control rounds that differ (a cache that doubled in one) are said. */
  r->control_steady = llabs(r->control_before - r->control_after) <= 8ll * n_clients;
  return 0;
}

/* The measured rounds, notify and GET interleaved so both see the same
 * machine. */
static void measure(coap_resource_t *obs, results_t *r) {
  coap_stats_t st;
  coap_context_get_stats(server.ctx, &st);
  uint64_t sent0 = st.notifications_sent;
  double notify_cpu = 0, get_cpu = 0;
  for (unsigned i = 0; i < r->rounds; i++) {
    int notified = 0;
    inproc_now += 10;
    server_cpu = 0;
    r->stale += notify_round(obs, &notified);
    notify_cpu += server_cpu;
    r->notifications += notified > 0 ? (unsigned)notified : 0;
    inproc_now += 10;
    server_cpu = 0;
    r->get_failed += get_round("coaps://10.0.0.1/plain", 0);
    get_cpu += server_cpu;
    r->gets += n_clients;
  }
  coap_context_get_stats(server.ctx, &st);
  r->sent = st.notifications_sent - sent0;
  r->removed = st.observers_removed;
  r->notify_us = r->notifications ? notify_cpu / r->notifications : 0;
  r->get_us = r->gets ? get_cpu / r->gets : 0;
  r->dropped = to_server.dropped + to_clients.dropped;
  r->ok = !r->stale && !r->get_failed && !r->dropped && r->sent == r->notifications &&
          st.observers == n_clients && r->removed == 0;
}

static void report_json(const results_t *r, int shown_con_every) {
  char bytes[32];
  snprintf(bytes, sizeof bytes, "%.1f", r->bytes_per_observation);
  printf(
      "{\"observers\":%u,\"rounds\":%u,\"con_every\":%d,\"server_us_per_notification\":%.3f,"
      "\"server_us_per_get\":%.3f,\"ratio\":%.3f,\"bytes_per_observation\":%s,"
      "\"server_us_per_psk_handshake\":%.1f,\"notifications\":%lu,"
      "\"notifications_sent\":%llu,\"stale\":%lu,\"get_failed\":%lu,\"dropped\":%lu,"
      "\"observers_removed\":%llu,\"heap_registration\":%lld,"
      "\"heap_control_get\":[%lld,%lld],\"control_steady\":%d,\"ok\":%d}\n",
      n_clients, r->rounds, shown_con_every, r->notify_us, r->get_us,
      r->get_us > 0 ? r->notify_us / r->get_us : 0, r->have_heap ? bytes : "null", r->handshake_us,
      r->notifications, r->sent, r->stale, r->get_failed, r->dropped, r->removed, r->registered,
      r->control_before, r->control_after, r->control_steady, r->ok);
}

static void report_text(const results_t *r, int shown_con_every) {
  double n = n_clients;
  printf("%u observers over coaps:// (PSK), %u rounds, observe_con_every %d%s\n", n_clients,
         r->rounds, shown_con_every, con_every ? "" : " (the default)");
  printf("server CPU per notification:  %.3f us (%lu notifications)\n", r->notify_us,
         r->notifications);
  printf("server CPU per DTLS GET:      %.3f us (%lu GETs)\n", r->get_us, r->gets);
  printf("ratio notification / GET:     %.2f (target <= 1.2)\n",
         r->get_us > 0 ? r->notify_us / r->get_us : 0);
  if (r->have_heap)
    printf(
        "memory per observation:       %.1f bytes (target <= 128): %.1f a registration with "
        "its first notification, less the smaller control of %.1f and %.1f (plain GETs)\n",
        r->bytes_per_observation, r->registered / n, r->control_before / n, r->control_after / n);
  else
    printf(
        "memory per observation:       not measured (mallinfo2 says nothing: a sanitizer's "
        "allocator)\n");
  printf("server CPU per PSK handshake (with its first GET): %.1f us\n", r->handshake_us);
  if (!r->ok)
    printf(
        "FAILED: %lu stale observers, %lu failed GETs, %lu datagrams dropped, %llu sent for "
        "%lu notified, %llu observers removed\n",
        r->stale, r->get_failed, r->dropped, r->sent, r->notifications, r->removed);
}

int main(int argc, char **argv) {
  int json = 0;
  results_t r = {0};
  r.rounds = parse_args(argc, argv, &json);
  if (queue_init(&to_server, n_clients + 64) < 0 || queue_init(&to_clients, n_clients + 64) < 0 ||
      !(clients = calloc(n_clients, sizeof *clients)))
    return fprintf(stderr, "observe-cost: out of memory\n"), 1;
  coap_resource_t *obs = make_server();
  if (!obs) return fprintf(stderr, "observe-cost: server context or resources failed\n"), 1;
  coap_dtls_context_t *cd = inproc_client_dtls();
  if (!cd) return fprintf(stderr, "observe-cost: client DTLS configuration failed\n"), 1;
  if ((r.handshake_us = make_sessions(cd)) < 0 || register_all(obs, &r) < 0) return 1;
  measure(obs, &r);
  coap_context_config_t defaults;
  coap_context_config_default(&defaults);
  int shown_con_every = con_every ? con_every : defaults.observe_con_every;
  if (json)
    report_json(&r, shown_con_every);
  else
    report_text(&r, shown_con_every);
  int ok = r.ok;
  for (unsigned i = 0; i < n_clients; i++) coap_context_free(clients[i].ctx);
  coap_dtls_context_free(cd);
  coap_context_free(server.ctx);
  free(clients);
  free(to_server.q);
  free(to_clients.q);
  return ok ? 0 : 1;
}
