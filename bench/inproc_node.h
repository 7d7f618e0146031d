/* What the in-process benchmarks (idle-sessions, observe-cost,
 * psk-table-cost) share: a node is a coap_context_t on a fake clock with
 * one coaps endpoint at an address of its own, whose datagrams go to the
 * benchmark's in-memory network (its send callback, or the queues below)
 * instead of a socket; all of them use the PSK identity "bench". The
 * server's CPU time is read per thread, so that only the calls a
 * benchmark brackets count. */
#ifndef COAPS_BENCH_INPROC_NODE_H
#define COAPS_BENCH_INPROC_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "coap.h"

/* The fake clock every node reads, in milliseconds. */
extern uint64_t inproc_now;

/* The thread's CPU time in microseconds. */
double inproc_cpu_us(void);

/* A node's configuration: the fake clock, errors only logged, room for
 * |peers| peers kept for a day of idleness (idle sessions stay). */
void inproc_config(coap_context_config_t *cfg, unsigned peers);

/* A context made with |cfg|, its DTLS endpoint at |ip|:|port| (*addr),
 * |send| taking what it sends (with |user|) and |open| giving it that
 * endpoint when it talks to a server, and DTLS: a reference to |shared|,
 * or a PSK configuration of its own when |shared| is NULL. 0, or -1 (the
 * context, if made, is in *ctx for the caller to free). */
int inproc_node_new(const coap_context_config_t *cfg, const char *ip, uint16_t port,
                    const coap_transport_t *t, void *user, coap_dtls_context_t *shared,
                    coap_context_t **ctx, coap_endpoint_t **ep, coap_address_t *addr);

/* A PSK configuration for many clients to share (credentials parsed
 * once), without resumption so that each makes a full handshake; NULL
 * when out of memory. */
coap_dtls_context_t *inproc_client_dtls(void);

/* The process's resident size in KB (VmRSS), -1 when unknown. */
long inproc_rss_kb(void);

/* ---- an in-memory network of one server and its clients (idle-sessions,
 * psk-table-cost): datagrams from one side wait in a queue for the
 * other, and inproc_pump delivers them, timing the server's share ---- */

#define INPROC_QUEUE_MAX 64

typedef struct inproc_datagram {
  coap_address_t from, to;
  size_t len;
  uint8_t data[1500];
} inproc_datagram_t;

typedef struct inproc_queue {
  inproc_datagram_t q[INPROC_QUEUE_MAX];
  size_t n;
  int drop; /* set: what is sent to it is lost (a client abandoned without a word) */
} inproc_queue_t;

typedef struct inproc_net {
  inproc_queue_t to_server, to_client;
  double server_cpu_us; /* the server's CPU time in inproc_pump, added up */
} inproc_net_t;

/* A node on |net|: its context, its endpoint and address, and the queue
 * its datagrams go to. */
typedef struct inproc_node {
  coap_context_t *ctx;
  coap_endpoint_t *ep;
  coap_address_t addr;
  inproc_queue_t *out;
} inproc_node_t;

/* inproc_node_new with inproc_config(|peers|), sending into |out|: the
 * server's node sends to net->to_client, a client's to net->to_server. */
int inproc_node_init(inproc_node_t *n, unsigned peers, const char *ip, uint16_t port,
                     inproc_queue_t *out, coap_dtls_context_t *shared);

/* Deliver until both directions are quiet (64 rounds at the most): what
 * waits for the server to |server|, timed into net->server_cpu_us, and
 * what waits for the client to |client| (NULL: dropped). */
void inproc_pump(inproc_net_t *net, inproc_node_t *server, inproc_node_t *client);

/* GET /time answers "12:00:00". */
void inproc_serve_time(inproc_node_t *server);

/* A GET of |uri| from |client|, the network pumped: 0 when answered
 * 2.05 Content; INPROC_WRONG_CODE when answered with another code (the
 * first few are named on stderr); the send's or the reply's error; or
 * COAP_E_TIMEOUT when no reply came by the time the network went quiet. */
#define INPROC_WRONG_CODE 1
int inproc_get(inproc_net_t *net, inproc_node_t *server, inproc_node_t *client, const char *uri);
/* What inproc_get's |rc| means. */
const char *inproc_strerror(int rc);

#endif
