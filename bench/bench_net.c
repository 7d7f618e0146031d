/* coaps-bench: the sockets. Each session has its own connected UDP socket,
 * or (--source-addresses) shares one of a few with its own source address.
 * Sending goes through the library's send batching (src/io/tx_batch.c, the
 * I/O shell's own: sendmmsg, UDP GSO, IP_PKTINFO for the source address),
 * so the generator batches exactly as coaps serve does. Receiving stays
 * here: the shell's receive path is its loop's (one context per socket),
 * while a shared socket here feeds many contexts, picked by the address
 * each datagram was sent to. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/epoll.h>

#include "bench.h"

void bench_flush(bench_t *b) {
  coap_tx_batch_flush(&b->tx);
}

/* The transport's send: the socket is connected to |to| (the only peer a
 * session talks to); a shared socket sends to it from the session's
 * address. */
int bench_send(void *user, coap_endpoint_t *ep, const coap_address_t *to, const uint8_t *data,
               size_t len) {
  (void)user;
  session_t *s = coap_endpoint_transport_data(ep);
  if (!s) return COAP_E_STATE;
  if (s->mute) return 0; /* its close_notify: the device is gone */
  bench_t *b = s->b;
  if (s->src) {
    coap_address_t local;
    memset(&local, 0, sizeof local);
    local.addr.sin.sin_family = AF_INET;
    local.addr.sin.sin_addr.s_addr = s->src;
    local.size = sizeof local.addr.sin;
    return coap_tx_batch_add_from(&b->tx, b->shared[s->idx % b->n_shared].fd, &local, to, data,
                                  len);
  }
  if (s->fd < 0) return COAP_E_STATE;
  return coap_tx_batch_add(&b->tx, s->fd, to, data, len);
}

/* --source-addresses: session i's source address, 127.(1 + i / 65536).
 * (i / 256 % 256).(i % 256) in network order (127.0.0.0/16, where servers
 * listen, is left out), and back: the session index of an address, or -1. */
static uint32_t index_address(long i) {
  return htonl(0x7f000000u | (uint32_t)(i + 65536));
}

static long address_index(uint32_t addr) {
  uint32_t a = ntohl(addr);
  if (a >> 24 != 127 || (a & 0xffffff) < 65536) return -1;
  return (long)(a & 0xffffff) - 65536;
}

/* A shared socket's session: its own coap_context_t with an endpoint that
 * stands for its source address on the socket (the address the server
 * sees); nothing to open. */
static int open_shared(session_t *s, coap_context_t *ctx, coap_proto_t proto,
                       const coap_address_t *dest, coap_endpoint_t **out) {
  bench_t *b = s->b;
  if (s->src || dest->addr.sa.sa_family != AF_INET || s->idx >= b->by_index_len)
    return COAP_E_STATE;
  const shared_socket_t *sh = &b->shared[s->idx % b->n_shared];
  coap_address_t local;
  memset(&local, 0, sizeof local);
  local.addr.sin.sin_family = AF_INET;
  local.addr.sin.sin_addr.s_addr = index_address(s->idx);
  local.addr.sin.sin_port = htons(sh->port);
  local.size = sizeof local.addr.sin;
  coap_endpoint_t *ep = coap_context_add_endpoint(ctx, proto, &local);
  if (!ep) return COAP_E_NOMEM;
  coap_endpoint_set_transport_data(ep, s);
  s->src = local.addr.sin.sin_addr.s_addr;
  s->ep = ep;
  b->by_index[s->idx] = s;
  *out = ep;
  return 0;
}

int bench_open_endpoint(void *user, coap_context_t *ctx, coap_proto_t proto,
                        const coap_address_t *dest, coap_endpoint_t **out) {
  session_t *s = user;
  if (s->b->n_shared) return open_shared(s, ctx, proto, dest, out);
  if (s->fd >= 0) return COAP_E_STATE; /* one endpoint per session */
  int fd = socket(dest->addr.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return COAP_E_SYSTEM;
  /* connect(): the kernel filters other senders, skips a route lookup per
   * datagram and reports "nothing listening" as ECONNREFUSED. */
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
  coap_address_t local;
  local.size = sizeof local.addr.st;
  /* GRO: the answers a server sends to this socket as one GSO message
   * stay one buffer up to our recvmmsg, instead of being cut apart by the
   * kernel on the server's CPU (see bench/README.md). */
  int on = 1;
  if (s->b->gro && setsockopt(fd, IPPROTO_UDP, UDP_GRO, &on, sizeof on) < 0) s->b->gro = 0;
  if (connect(fd, &dest->addr.sa, dest->size) < 0 ||
      getsockname(fd, &local.addr.sa, &local.size) < 0 ||
      epoll_ctl(s->b->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    close(fd);
    return COAP_E_SYSTEM;
  }
  coap_endpoint_t *ep = coap_context_add_endpoint(ctx, proto, &local);
  if (!ep) {
    close(fd);
    return COAP_E_NOMEM;
  }
  coap_endpoint_set_transport_data(ep, s);
  s->fd = fd;
  s->ep = ep;
  *out = ep;
  return 0;
}

/* Host names are resolved once at start-up: a getaddrinfo per request
 * would make the load generator the bottleneck. */
int cached_resolve(void *user, const char *host, uint16_t port, coap_address_t *out) {
  const bench_t *b = user;
  *out = b->dest;
  coap_address_set_port(out, port);
  return 0;
}

/* ---- the loop ---- */

/* The segment size of a GRO buffer (every datagram in it that long but
 * the last, which may be shorter), or 0 when it holds one datagram. */
static size_t gro_segment(struct msghdr *h) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level != IPPROTO_UDP || c->cmsg_type != UDP_GRO) continue;
    int seg;
    memcpy(&seg, CMSG_DATA(c), sizeof seg);
    return seg > 0 ? (size_t)seg : 0;
  }
  return 0;
}

/* Ready the receive slots for one recvmmsg: buffer and control space,
 * and the sender's address when |with_sender| (shared sockets). */
static void reset_rx(bench_t *b, int with_sender) {
  for (int i = 0; i < RX_BATCH; i++) {
    struct msghdr *h = &b->rx_msgs[i].msg_hdr;
    memset(h, 0, sizeof *h);
    if (with_sender) {
      h->msg_name = &b->rx_from[i];
      h->msg_namelen = sizeof b->rx_from[i];
    }
    h->msg_iov = &b->rx_iov[i];
    h->msg_iovlen = 1;
    h->msg_control = b->rx_control[i].space;
    h->msg_controllen = sizeof b->rx_control[i].space;
  }
}

/* Hand receive slot |i| to |s|'s context: one datagram, or the datagrams
 * of a GRO buffer one by one. */
static void input_slot(bench_t *b, session_t *s, int i, uint64_t now) {
  const uint8_t *p = b->rx_iov[i].iov_base;
  size_t len = b->rx_msgs[i].msg_len;
  size_t seg = gro_segment(&b->rx_msgs[i].msg_hdr);
  if (!seg || seg > len) seg = len;
  for (size_t off = 0; off < len; off += seg)
    coap_context_input(s->ctx, s->ep, &b->dest, p + off, len - off < seg ? len - off : seg, now);
}

void receive_batch(bench_t *b, session_t *s) {
  for (;;) {
    reset_rx(b, 0);
    int n = recvmmsg(s->fd, b->rx_msgs, RX_BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ECONNREFUSED && s->ep)
        coap_context_input_unreachable(s->ctx, s->ep, &b->dest, coap_clock_now_ms());
      return;
    }
    b->batch_us = now_us();
    uint64_t now = b->batch_us / 1000; /* the clock coap_clock_now_ms reads */
    for (int i = 0; i < n; i++) {
      struct msghdr *h = &b->rx_msgs[i].msg_hdr;
      if (h->msg_flags & MSG_TRUNC) continue;
      input_slot(b, s, i, now);
    }
    if (n < RX_BATCH) return;
  }
}

/* The address a datagram was sent to (IP_PKTINFO), network order; 0 if
 * the kernel did not say. */
static uint32_t pktinfo_dst(struct msghdr *h) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level != IPPROTO_IP || c->cmsg_type != IP_PKTINFO) continue;
    struct in_pktinfo pi;
    memcpy(&pi, CMSG_DATA(c), sizeof pi);
    return pi.ipi_addr.s_addr;
  }
  return 0;
}

/* --source-addresses: a shared socket's datagrams go to the session their
 * destination address names (address_index); what the sessions send in
 * answer leaves in one sendmmsg per batch. Datagrams from anyone but the
 * server, or to an address no session of this socket has, are dropped. */
void receive_shared(bench_t *b, shared_socket_t *sh) {
  for (;;) {
    reset_rx(b, 1);
    int n = recvmmsg(sh->fd, b->rx_msgs, RX_BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    b->batch_us = now_us();
    uint64_t now = b->batch_us / 1000;
    int n_touched = 0;
    for (int i = 0; i < n; i++) {
      struct msghdr *h = &b->rx_msgs[i].msg_hdr;
      if (h->msg_flags & MSG_TRUNC || h->msg_namelen != sizeof b->dest_in ||
          b->rx_from[i].sin_addr.s_addr != b->dest_in.sin_addr.s_addr ||
          b->rx_from[i].sin_port != b->dest_in.sin_port)
        continue;
      long idx = address_index(pktinfo_dst(h));
      if (idx < 0 || idx >= b->by_index_len || idx % b->n_shared != sh->index) continue;
      session_t *s = b->by_index[idx];
      if (!s) continue;
      input_slot(b, s, i, now);
      int seen = 0;
      for (int k = 0; k < n_touched && !seen; k++) seen = b->touched[k] == s;
      if (!seen) b->touched[n_touched++] = s;
    }
    for (int k = 0; k < n_touched; k++) session_after(b, b->touched[k]);
    bench_flush(b);
    b->batch_us = 0;
    if (n < RX_BATCH) return;
  }
}

long session_count(const bench_opts_t *o) {
  return o->handshakes > 0 ? o->handshakes : o->sessions;
}

/* --source-addresses K: K sockets bound to 0.0.0.0 (any 127.x.y.z is
 * theirs to send from and to receive at) on loopback only
 * (SO_BINDTODEVICE, where allowed), each with IP_PKTINFO so that a reply
 * tells which session's address it went to, a larger receive buffer (K
 * sockets queue what N would), and UDP_GRO like the others. */
int open_shared_sockets(bench_t *b) {
  long n = session_count(&b->o);
  long k = b->o.shared_sockets;
  if (!k) return 0;
  uint32_t dest = b->dest.addr.sin.sin_addr.s_addr;
  if (b->dest.addr.sa.sa_family != AF_INET || ntohl(dest) >> 24 != 127) {
    fprintf(stderr, "coaps-bench: --source-addresses needs a server on 127.0.0.0/8\n");
    return -1;
  }
  long di = address_index(dest);
  if (di >= 0 && di < n) {
    fprintf(stderr,
            "coaps-bench: --source-addresses: the server's address is one of the "
            "sessions' (127.1.0.0 on); use one in 127.0.0.0/16\n");
    return -1;
  }
  b->dest_in = b->dest.addr.sin;
  b->shared = calloc((size_t)k, sizeof *b->shared);
  b->by_index = calloc((size_t)n, sizeof *b->by_index);
  if (!b->shared || !b->by_index) return -1;
  b->by_index_len = n;
  for (long i = 0; i < k; i++) {
    shared_socket_t *sh = &b->shared[b->n_shared];
    sh->index = i;
    sh->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (sh->fd < 0) goto fail;
    b->n_shared++;
    int on = 1, size = 4 << 20;
    struct sockaddr_in any = {.sin_family = AF_INET};
    socklen_t len = sizeof any;
    if (setsockopt(sh->fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on) < 0) goto fail;
    if (b->gro && setsockopt(sh->fd, IPPROTO_UDP, UDP_GRO, &on, sizeof on) < 0) b->gro = 0;
    if (setsockopt(sh->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
      setsockopt(sh->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(sh->fd, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = sh};
    if (bind(sh->fd, (struct sockaddr *)&any, sizeof any) < 0 ||
        getsockname(sh->fd, (struct sockaddr *)&any, &len) < 0 ||
        epoll_ctl(b->epfd, EPOLL_CTL_ADD, sh->fd, &ev) < 0)
      goto fail;
    sh->port = ntohs(any.sin_port);
  }
  return 0;
fail:
  fprintf(stderr, "coaps-bench: --source-addresses: socket set-up: %s\n", strerror(errno));
  return -1;
}
