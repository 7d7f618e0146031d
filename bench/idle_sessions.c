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
 * A request counts as served only when answered 2.05 Content (inproc_get);
 * the runs report those that were not, and it then exits 1.
 * Public API only (coap.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coap.h"
#include "inproc_node.h"

#define ACTIVE 100
#define PEERS 1000000

static inproc_net_t net;
static inproc_node_t server;

static int get(inproc_node_t *client) {
  return inproc_get(&net, &server, client, "coaps://10.0.0.1/time") == 0 ? 0 : -1;
}

/* A client at a fresh address makes a session and goes away silently. */
static int add_idle(unsigned i) {
  char ip[32];
  snprintf(ip, sizeof ip, "10.%u.%u.%u", 1 + (i >> 16) % 200, (i >> 8) & 255, i & 255);
  inproc_node_t c;
  net.to_client.drop = 0;
  if (inproc_node_init(&c, PEERS, ip, (uint16_t)(20000 + i % 40000), &net.to_server, NULL) < 0)
    return -1;
  int rc = get(&c);
  net.to_server.drop = 1; /* its close_notify never arrives */
  coap_context_free(c.ctx);
  net.to_server.drop = 0;
  return rc;
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
  if (inproc_node_init(&server, PEERS, "10.0.0.1", 5684, &net.to_client, NULL) < 0) return 1;
  coap_dtls_context_t *sd = coap_context_dtls(server.ctx);
  if ((no_cid && coap_dtls_set_cid(sd, 0, 0) < 0) ||
      (cookie_always && coap_dtls_set_cookie_policy(sd, COAP_DTLS_COOKIE_ALWAYS, 0) < 0))
    return 1;
  inproc_serve_time(&server);
  static inproc_node_t active[ACTIVE];
  for (unsigned i = 0; i < ACTIVE; i++) {
    char ip[32];
    snprintf(ip, sizeof ip, "10.250.0.%u", i + 1);
    if (inproc_node_init(&active[i], PEERS, ip, 5000, &net.to_server, NULL) < 0 ||
        get(&active[i]) < 0) {
      fprintf(stderr, "idle-sessions: active client %u failed\n", i);
      return 1;
    }
  }
  if (json) printf("{\"requests\":%d,\"runs\":[", requests);
  unsigned made = 0;
  long rss_base = inproc_rss_kb();
  char *list = strdup(idle_list);
  int first = 1;
  double handshake_cpu = 0;
  unsigned handshakes = 0;
  long failed_total = 0;
  for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
    unsigned want = (unsigned)atoi(tok);
    net.server_cpu_us = 0;
    for (unsigned from = made; made < want; made++)
      if (add_idle(made) < 0) {
        fprintf(stderr, "idle-sessions: idle session %u failed (after %u)\n", made, from);
        return 1;
      }
    handshake_cpu += net.server_cpu_us;
    handshakes = made;
    long rss = inproc_rss_kb();
    net.server_cpu_us = 0;
    int failed = 0;
    for (int r = 0; r < requests; r++) failed += get(&active[r % ACTIVE]) < 0;
    failed_total += failed;
    double us = net.server_cpu_us / requests;
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
  /* A figure over requests that failed is no figure. */
  if (failed_total) {
    fprintf(stderr, "idle-sessions: %ld requests failed or were not answered 2.05 Content\n",
            failed_total);
    return 1;
  }
  return 0;
}
