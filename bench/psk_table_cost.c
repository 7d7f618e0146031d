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

static inproc_net_t net;

/* Server CPU µs per full handshake + GET, over |count| fresh clients;
 * negative when one fails. */
static double handshake_cost(coap_dtls_context_t *server_dtls, int count) {
  inproc_node_t server, client;
  if (inproc_node_init(&server, 100000, "10.0.0.1", 5684, &net.to_client, server_dtls) < 0)
    return -1;
  inproc_serve_time(&server);
  coap_dtls_context_t *cd = inproc_client_dtls();
  net.server_cpu_us = 0;
  int failed = 0;
  for (int i = 0; i < count && !failed; i++) {
    char ip[32];
    snprintf(ip, sizeof ip, "10.1.%d.%d", (i >> 8) & 255, i & 255);
    if (inproc_node_init(&client, 100000, ip, 40000, &net.to_server, cd) < 0) {
      fprintf(stderr, "client %d (%s): cannot make its node\n", i, ip);
      return -1;
    }
    int rc = inproc_get(&net, &server, &client, "coaps://10.0.0.1/time");
    if (rc != 0) {
      failed = 1;
      fprintf(stderr, "server %s: handshake %d: %s\n", server_dtls ? "table" : "single", i,
              inproc_strerror(rc));
    }
    coap_context_free(client.ctx);
    net.to_server.n = net.to_client.n = 0;
  }
  coap_dtls_context_free(cd);
  coap_context_free(server.ctx);
  net.to_server.n = net.to_client.n = 0; /* the server's parting close_notify alerts */
  return failed ? -1 : net.server_cpu_us / count;
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
    long rss0 = inproc_rss_kb();
    double t0 = now_ms();
    coap_psk_table_t *t = NULL;
    char why[256];
    int loaded = coap_psk_table_load_file(path, 0, &t, why, sizeof why);
    double ms = now_ms() - t0;
    long rss = inproc_rss_kb() - rss0;
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
