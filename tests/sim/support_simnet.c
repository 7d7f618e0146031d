#include "support_simnet.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t simnet_clock(void *user) {
  return ((simnet_t *)user)->now;
}

void simnet_rand(void *user, uint8_t *buf, size_t len) {
  simnet_t *net = user;
  for (size_t i = 0; i < len; i++) {
    net->rand_state = net->rand_state * 1103515245u + 12345u;
    buf[i] = (uint8_t)(net->rand_state >> 16);
  }
}

/* GnuTLS times DTLS retransmissions with its own clock. Its test hook
 * (a private symbol of the library, the one its own DTLS tests use) lets
 * it run on the virtual clock, so lost flights are resent in virtual time
 * as they would be in real time. Certificate dates keep the real clock. */
static simnet_t *clock_net;

static void virtual_gettime(struct timespec *ts) {
  uint64_t ms = clock_net ? clock_net->now : 0;
  ts->tv_sec = (time_t)(ms / 1000);
  ts->tv_nsec = (long)(ms % 1000) * 1000000L;
}

static void use_virtual_clock_in_gnutls(simnet_t *net) {
  typedef void (*gettime_fn)(struct timespec *);
  void (*set)(gettime_fn) =
      (void (*)(gettime_fn))dlsym(RTLD_DEFAULT, "_gnutls_global_set_gettime_function");
  if (!set) {
    fprintf(stderr,
            "simnet: this GnuTLS has no gettime hook: DTLS flights will not be "
            "resent in virtual time\n");
    abort();
  }
  clock_net = net;
  set(virtual_gettime);
}

void simnet_init(simnet_t *net) {
  memset(net, 0, sizeof(*net));
  net->now = 1000000;
  net->latency_ms = 10;
  net->rand_state = 42;
  use_virtual_clock_in_gnutls(net);
}

static coap_endpoint_t *fresh_ep_at(const simnet_node_t *node, const coap_address_t *a) {
  for (size_t j = 0; j < node->n_fresh; j++)
    if (coap_address_equal(&node->fresh_addr[j], a)) return node->fresh_ep[j];
  return NULL;
}

static int node_has_addr(const simnet_node_t *node, const coap_address_t *a) {
  if (fresh_ep_at(node, a)) return 1;
  if (!node->ep) return 0; /* its own endpoint closed: only the fresh ones */
  if (coap_address_equal(&node->addr, a)) return 1;
  if (node->other_ep && coap_address_equal(&node->other_addr, a)) return 1;
  for (size_t j = 0; j < node->n_aliases; j++)
    if (coap_address_equal(&node->aliases[j], a)) return 1;
  return 0;
}

static simnet_node_t *node_by_addr(simnet_t *net, const coap_address_t *a) {
  for (size_t i = 0; i < net->n_nodes; i++)
    if (node_has_addr(&net->nodes[i], a)) return &net->nodes[i];
  return NULL;
}

static void enqueue(simnet_t *net, simnet_node_t *to, const coap_address_t *dst,
                    const coap_address_t *from, const uint8_t *data, size_t len) {
  if (net->queued == SIMNET_MAX_QUEUE || len > sizeof net->queue[0].data) {
    net->dropped++;
    return;
  }
  size_t i = net->queued++;
  net->queue[i].at = net->now + net->latency_ms;
  net->queue[i].to = to;
  net->queue[i].from = *from;
  net->queue[i].dst = *dst;
  net->queue[i].len = len;
  memcpy(net->queue[i].data, data, len);
}

/* One datagram from |from| (the node), leaving from its address |src|. */
static int sim_transmit(simnet_node_t *from, const coap_address_t *src, const coap_address_t *to,
                        const uint8_t *data, size_t len) {
  simnet_t *net = from->net;
  unsigned seq = net->seq++;
  int fate = net->filter ? net->filter(net->filter_user, from, to, data, len, seq) : 0;
  simnet_node_t *dest = node_by_addr(net, to);
  if (fate == 1 || !dest) {
    net->dropped++;
    return 0;
  }
  enqueue(net, dest, to, src, data, len);
  if (fate == 2) enqueue(net, dest, to, src, data, len);
  return 0;
}

static int sim_send(void *user, coap_endpoint_t *ep, const coap_address_t *to, const uint8_t *data,
                    size_t len) {
  simnet_node_t *from = user;
  from->sent_plain++;
  if (ep && ep == from->other_ep) return sim_transmit(from, &from->other_addr, to, data, len);
  for (size_t j = 0; j < from->n_fresh; j++)
    if (ep == from->fresh_ep[j]) return sim_transmit(from, &from->fresh_addr[j], to, data, len);
  return sim_transmit(from, &from->addr, to, data, len);
}

/* Like sendmsg with IP_PKTINFO: the source must be one of the node's own
 * addresses (the port is the node's), or the "kernel" refuses. */
static int sim_send_from(void *user, coap_endpoint_t *ep, const coap_address_t *local,
                         const coap_address_t *to, const uint8_t *data, size_t len) {
  simnet_node_t *from = user;
  if (!node_has_addr(from, local)) {
    from->net->dropped++;
    return COAP_E_SYSTEM;
  }
  from->sent_from_local++;
  from->last_local = *local;
  return sim_transmit(from, local, to, data, len);
}

static int open_other(simnet_node_t *node, coap_context_t *ctx, coap_proto_t proto,
                      coap_endpoint_t **out) {
  if (!node->other_ep) {
    node->other_addr = node->addr;
    coap_address_set_port(&node->other_addr, (uint16_t)(coap_address_get_port(&node->addr) + 1));
    node->other_ep = coap_context_add_endpoint(ctx, proto, &node->other_addr);
    if (!node->other_ep) return COAP_E_STATE;
  }
  if (coap_endpoint_proto(node->other_ep) != proto) return COAP_E_STATE;
  *out = node->other_ep;
  return 0;
}

static int sim_open_client(void *user, coap_context_t *ctx, coap_proto_t proto,
                           const coap_address_t *dest, coap_endpoint_t **out) {
  simnet_node_t *node = user;
  if (coap_endpoint_proto(node->ep) == proto) {
    *out = node->ep;
    return 0;
  }
  return open_other(node, ctx, proto, out);
}

static int sim_open_fresh(void *user, coap_context_t *ctx, coap_proto_t proto,
                          const coap_address_t *dest, coap_endpoint_t **out) {
  simnet_node_t *node = user;
  if (proto != node->own_proto) return open_other(node, ctx, proto, out);
  if (!node->gave_own && node->ep) {
    node->gave_own = 1;
    *out = node->ep;
    return 0;
  }
  if (node->n_fresh == SIMNET_MAX_FRESH) return COAP_E_LIMIT;
  coap_address_t a = node->addr;
  uint16_t port = (uint16_t)(coap_address_get_port(&node->addr) + 10 + node->next_fresh_port++);
  coap_address_set_port(&a, port);
  coap_endpoint_t *ep = coap_context_add_endpoint(ctx, proto, &a);
  if (!ep) return COAP_E_NOMEM;
  node->fresh_addr[node->n_fresh] = a;
  node->fresh_ep[node->n_fresh++] = ep;
  *out = ep;
  return 0;
}

static void sim_close_endpoint(void *user, coap_context_t *ctx, coap_endpoint_t *ep) {
  simnet_node_t *node = user;
  (void)ctx;
  node->endpoints_closed++;
  if (ep == node->ep) node->ep = NULL;
  for (size_t j = 0; j < node->n_fresh; j++) {
    if (node->fresh_ep[j] != ep) continue;
    node->fresh_ep[j] = node->fresh_ep[node->n_fresh - 1];
    node->fresh_addr[j] = node->fresh_addr[node->n_fresh - 1];
    node->n_fresh--;
    return;
  }
}

int simnet_inject(simnet_node_t *from, const coap_address_t *to, const uint8_t *data, size_t len) {
  int known = node_by_addr(from->net, to) != NULL;
  sim_transmit(from, &from->addr, to, data, len);
  return known;
}

void simnet_node_fresh_endpoints(simnet_node_t *node) {
  coap_transport_t t = {.send = sim_send,
                        .open_client_endpoint = sim_open_fresh,
                        .send_from = sim_send_from,
                        .close_endpoint = sim_close_endpoint};
  node->fresh_endpoints = 1;
  node->own_proto = coap_endpoint_proto(node->ep);
  coap_context_set_transport(node->ctx, &t, node);
}

static void attach(simnet_node_t *node, coap_proto_t proto) {
  node->ep = coap_context_add_endpoint(node->ctx, proto, &node->addr);
  coap_transport_t t = {
      .send = sim_send, .open_client_endpoint = sim_open_client, .send_from = sim_send_from};
  coap_context_set_transport(node->ctx, &t, node);
}

int simnet_node_restart(simnet_node_t *node) {
  coap_proto_t proto = coap_endpoint_proto(node->ep);
  coap_context_free(node->ctx);
  node->other_ep = NULL;
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.clock = simnet_clock;
  cfg.clock_user = node->net;
  cfg.rand = simnet_rand;
  cfg.rand_user = node->net;
  node->ctx = coap_context_new(&cfg);
  if (!node->ctx) return -1;
  attach(node, proto);
  return 0;
}

simnet_node_t *simnet_add_node(simnet_t *net, uint16_t port, coap_proto_t proto,
                               coap_context_config_t *cfg) {
  if (net->n_nodes == SIMNET_MAX_NODES) return NULL;
  simnet_node_t *node = &net->nodes[net->n_nodes];
  coap_context_config_t dflt;
  if (!cfg) {
    coap_context_config_default(&dflt);
    cfg = &dflt;
  }
  cfg->clock = simnet_clock;
  cfg->clock_user = net;
  cfg->rand = simnet_rand;
  cfg->rand_user = net;
  node->net = net;
  node->ctx = coap_context_new(cfg);
  if (!node->ctx) return NULL;
  char host[32];
  snprintf(host, sizeof host, "10.0.0.%zu", net->n_nodes + 1);
  coap_address_from_string(&node->addr, host, port);
  attach(node, proto);
  net->n_nodes++;
  return node;
}

int simnet_node_add_alias(simnet_node_t *node, const char *host) {
  if (node->n_aliases == SIMNET_MAX_ALIASES) return -1;
  coap_address_t *a = &node->aliases[node->n_aliases];
  if (coap_address_from_string(a, host, coap_address_get_port(&node->addr)) < 0) return -1;
  node->n_aliases++;
  return 0;
}

/* The earliest event: a queued datagram or a node's timer. */
static uint64_t next_event(simnet_t *net) {
  uint64_t next = UINT64_MAX;
  for (size_t i = 0; i < net->queued; i++)
    if (net->queue[i].at < next) next = net->queue[i].at;
  for (size_t i = 0; i < net->n_nodes; i++) {
    uint64_t t = coap_context_next_timeout(net->nodes[i].ctx);
    if (t < next) next = t;
  }
  return next;
}

static void step(simnet_t *net) {
  /* Deliver in send order everything due now. */
  for (size_t i = 0; i < net->queued;) {
    if (net->queue[i].at > net->now) {
      i++;
      continue;
    }
    simnet_node_t *to = net->queue[i].to;
    coap_address_t from = net->queue[i].from, dst = net->queue[i].dst;
    size_t len = net->queue[i].len;
    uint8_t data[1500];
    memcpy(data, net->queue[i].data, len);
    memmove(&net->queue[i], &net->queue[i + 1], (net->queued - i - 1) * sizeof net->queue[0]);
    net->queued--;
    coap_endpoint_t *fresh = fresh_ep_at(to, &dst);
    if (!node_has_addr(to, &dst)) {
      net->dropped++; /* the endpoint closed after the datagram left */
      continue;
    }
    net->delivered++;
    if (fresh)
      coap_context_input(to->ctx, fresh, &from, data, len, net->now);
    else if (to->other_ep && coap_address_equal(&dst, &to->other_addr))
      coap_context_input(to->ctx, to->other_ep, &from, data, len, net->now);
    else if (to->n_aliases) /* a wildcard socket: it knows where the datagram went */
      coap_context_input_to(to->ctx, to->ep, &from, &dst, data, len, net->now);
    else
      coap_context_input(to->ctx, to->ep, &from, data, len, net->now);
  }
  for (size_t i = 0; i < net->n_nodes; i++)
    coap_context_handle_timeouts(net->nodes[i].ctx, net->now);
}

void simnet_run_until(simnet_t *net, uint64_t until) {
  for (;;) {
    uint64_t next = next_event(net);
    if (next > until) break;
    if (next > net->now) net->now = next;
    step(net);
  }
  if (until > net->now) net->now = until;
}

int simnet_run_until_flag(simnet_t *net, const int *flag, uint64_t limit) {
  uint64_t end = net->now + limit;
  while (!*flag) {
    uint64_t next = next_event(net);
    if (next > end) break;
    if (next > net->now) net->now = next;
    step(net);
  }
  return *flag != 0;
}

void simnet_free(simnet_t *net) {
  for (size_t i = 0; i < net->n_nodes; i++) coap_context_free(net->nodes[i].ctx);
  net->n_nodes = 0;
}
