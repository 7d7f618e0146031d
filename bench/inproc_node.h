/* What the in-process benchmarks (idle-sessions, observe-cost) share: a
 * node is a coap_context_t on a fake clock with one coaps endpoint at an
 * address of its own, whose datagrams go to the benchmark's in-memory
 * network (its send callback) instead of a socket; all of them use the
 * PSK identity "bench". The server's CPU time is read per thread, so
 * that only the calls a benchmark brackets count. */
#ifndef COAPS_BENCH_INPROC_NODE_H
#define COAPS_BENCH_INPROC_NODE_H

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

#endif
