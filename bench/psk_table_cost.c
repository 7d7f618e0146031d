/* psk-table-cost: what a PSK file of many identities costs (bench/README.md,
 * "PSK files of many identities").
 *
 *  1. Loading: for each size, a PSK file of N identities ("device-%07u",
 *     a 16-byte hex: key, as a fleet would have them) is written to a
 *     scratch directory and loaded with coap_psk_table_load_file: wall
 *     time, the table's heap bytes (coap_psk_table_memory) and the process
 *     RSS growth, each per identity.
 *  2. Handshakes: in process, no sockets (bench/inproc_node.c), a server
 *     whose identities are a table of the largest size and one whose only
 *     identity is coap_dtls_set_psk's: the server's CPU time per full PSK
 *     handshake (with one GET), and the ratio table / single key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "coaps/credentials.h"
#include "inproc_node.h"

#define MAX_OUT 64

typedef struct datagram {
  coap_address_t from, to;
  size_t len;
  uint8_t data[1500];
} datagram_t;

typedef struct wire {
  datagram_t q[MAX_OUT];
  size_t n;
} wire_t;

typedef struct node {
  coap_context_t *ctx;
  coap_endpoint_t *ep;
  coap_address_t addr;
  wire_t *out;
} node_t;

static wire_t to_server, to_client;
static double server_cpu;

static int wire_send(void *user, coap_endpoint_t *ep, const coap_address_t *to, const uint8_t *data,
                     size_t len) {
  node_t *n = user;
  if (n->out->n == MAX_OUT || len > sizeof n->out->q[0].data) return 0;
  datagram_t *d = &n->out->q[n->out->n++];
  d->from = n->addr;
  d->to = *to;
  d->len = len;
  memcpy(d->data, data, len);
  return 0;
}

static int wire_open(void *user, coap_context_t *ctx, coap_proto_t proto,
                     const coap_address_t *dest, coap_endpoint_t **out) {
  *out = ((node_t *)user)->ep;
  return 0;
}

static int node_init(node_t *n, const char *ip, uint16_t port, wire_t *out,
                     coap_dtls_context_t *dtls) {
  coap_context_config_t cfg;
  inproc_config(&cfg, 100000);
  n->out = out;
  coap_transport_t t = {.send = wire_send, .open_client_endpoint = wire_open};
  return inproc_node_new(&cfg, ip, port, &t, n, dtls, &n->ctx, &n->ep, &n->addr);
}

static void pump(node_t *server, node_t *client) {
  for (int round = 0; round < 64 && (to_server.n || to_client.n); round++) {
    datagram_t batch[MAX_OUT];
    size_t n = to_server.n;
    memcpy(batch, to_server.q, n * sizeof batch[0]);
    to_server.n = 0;
    double t0 = inproc_cpu_us();
    for (size_t i = 0; i < n; i++)
      coap_context_input(server->ctx, server->ep, &batch[i].from, batch[i].data, batch[i].len,
                         inproc_now);
    server_cpu += inproc_cpu_us() - t0;
    n = to_client.n;
    memcpy(batch, to_client.q, n * sizeof batch[0]);
    to_client.n = 0;
    for (size_t i = 0; i < n; i++)
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

static void handle_time(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                        coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "12:00:00", 8);
}

/* Server CPU µs per full handshake + GET, over |count| fresh clients;
 * negative when one fails. */
static double handshake_cost(coap_dtls_context_t *server_dtls, int count) {
  node_t server, client;
  if (node_init(&server, "10.0.0.1", 5684, &to_client, server_dtls) < 0) return -1;
  coap_resource_set_handler(coap_resource_add(server.ctx, "time"), COAP_GET, handle_time, NULL);
  coap_dtls_context_t *cd = inproc_client_dtls();
  server_cpu = 0;
  int failed = 0;
  for (int i = 0; i < count && !failed; i++) {
    char ip[32];
    snprintf(ip, sizeof ip, "10.1.%d.%d", (i >> 8) & 255, i & 255);
    if (node_init(&client, ip, 40000, &to_server, cd) < 0) {
      fprintf(stderr, "client %d (%s): cannot make its node\n", i, ip);
      return -1;
    }
    coap_request_opts_t o;
    coap_request_opts_init(&o, COAP_GET, "coaps://10.0.0.1/time");
    reply_t r = {0, 0};
    int sent = coap_send_request(client.ctx, &o, on_reply, &r, NULL);
    if (sent < 0) {
      fprintf(stderr, "client %d: %s\n", i, coap_strerror(sent));
      failed = 1;
    }
    pump(&server, &client);
    if (!r.done || r.status != 0) {
      failed = 1;
      fprintf(stderr, "server %s: handshake %d: done %d status %d (%s)\n",
              server_dtls ? "table" : "single", i, r.done, r.status, coap_strerror(r.status));
    }
    coap_context_free(client.ctx);
    to_server.n = to_client.n = 0;
  }
  coap_dtls_context_free(cd);
  coap_context_free(server.ctx);
  to_server.n = to_client.n = 0; /* the server's parting close_notify alerts */
  return failed ? -1 : server_cpu / count;
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

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A PSK file of |n| identities, plus "bench" (inproc_node.c's client). */
static int write_psk_file(const char *path, unsigned n) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fprintf(f, "# %u devices\nbench bench-secret\n", n);
  for (unsigned i = 1; i < n; i++)
    fprintf(f, "device-%07u hex:%08x%08x%08x%08x\n", i, i * 2654435761u, ~i, i ^ 0x5a5a5a5au,
            i * 40503u);
  if (fclose(f) != 0) return -1;
  return chmod(path, 0600);
}

int main(int argc, char **argv) {
  const char *sizes = "10000,100000,1000000";
  int count = 300, json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--sizes") && i + 1 < argc)
      sizes = argv[++i];
    else if (!strcmp(argv[i], "--handshakes") && i + 1 < argc)
      count = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else {
      fprintf(stderr, "usage: psk-table-cost [--sizes N,N,...] [--handshakes H] [--json]\n");
      return 64;
    }
  }
  char dir[] = "/tmp/psk-table-cost-XXXXXX", path[64];
  if (!mkdtemp(dir)) return 1;
  snprintf(path, sizeof path, "%s/psk.txt", dir);
  coap_psk_table_t *largest = NULL;
  unsigned largest_n = 0;
  if (json) printf("{\"load\":[");
  int first = 1;
  for (const char *p = sizes; *p;) {
    unsigned n = (unsigned)strtoul(p, (char **)&p, 10);
    if (*p == ',') p++;
    if (n == 0 || write_psk_file(path, n) < 0) return 1;
    long rss0 = rss_kb();
    double t0 = now_ms();
    coap_psk_table_t *t = NULL;
    char why[256];
    int loaded = coap_psk_table_load_file(path, 0, &t, why, sizeof why);
    double ms = now_ms() - t0;
    long rss = rss_kb() - rss0;
    if (loaded != (int)n) {
      fprintf(stderr, "psk-table-cost: loading %u identities: %s\n", n, why);
      return 1;
    }
    size_t mem = coap_psk_table_memory(t);
    if (json)
      printf(
          "%s{\"identities\":%u,\"load_ms\":%.1f,\"ns_per_identity\":%.0f,"
          "\"table_bytes\":%zu,\"bytes_per_identity\":%.1f,\"rss_kb\":%ld}",
          first ? "" : ",", n, ms, ms * 1e6 / n, mem, (double)mem / n, rss);
    else
      printf(
          "%8u identities: loaded in %7.1f ms (%4.0f ns each), table %6.1f MB "
          "(%5.1f bytes each), RSS +%ld KB\n",
          n, ms, ms * 1e6 / n, mem / 1e6, (double)mem / n, rss);
    first = 0;
    coap_psk_table_free(largest);
    largest = t;
    largest_n = n;
  }
  unlink(path);
  rmdir(dir);
  /* Handshakes against the largest table, then against one key. */
  inproc_now = 1000;
  coap_dtls_context_t *with_table = coap_dtls_context_new();
  coap_dtls_set_psk_table(with_table, largest);
  coap_psk_table_free(largest);
  double single_us = handshake_cost(NULL, count);
  double table_us = handshake_cost(with_table, count);
  coap_dtls_context_free(with_table);
  if (table_us < 0 || single_us < 0) {
    fprintf(stderr, "psk-table-cost: a handshake failed\n");
    return 1;
  }
  if (json)
    printf(
        "],\"handshakes\":%d,\"table_identities\":%u,\"server_us_per_handshake_table\":%.1f,"
        "\"server_us_per_handshake_single\":%.1f,\"ratio_table_to_single\":%.3f}\n",
        count, largest_n, table_us, single_us, table_us / single_us);
  else
    printf(
        "server CPU per full PSK handshake + GET (%d each): %.1f us with %u identities, "
        "%.1f us with one key: ratio %.3f\n",
        count, table_us, largest_n, single_us, table_us / single_us);
  return 0;
}
