/* The I/O shell: the only code with sockets, epoll and signals. It feeds
 * the sans-I/O context with datagrams and the time, and is the context's
 * transport. ICMP errors are read from each socket's error queue so that
 * "nothing listening" is reported at once instead of as a timeout. */
#define _GNU_SOURCE
#include <errno.h>
#include <time.h>
#include <limits.h>
#include <linux/errqueue.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "coaps/io.h"
#include "common/abi.h"
#include "io/io_stats.h"
#include "io/shell.h"
#include "io/tx_batch.h"
#include "security/security.h"

#define RX_BATCH 64
/* The largest UDP payload: anything a peer can send is taken (a request
 * too large for the server is then answered 4.13, not dropped unseen). */
#define RX_DATAGRAM_MAX 65535
/* A receive slot holds one datagram, or with UDP GRO a run of them from
 * one sender glued together: up to a 64 KB UDP payload. */
#define RX_SLOT_SIZE 65536

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

typedef struct io_socket {
  struct io_socket *next;
  int fd;
  coap_endpoint_t *ep;
  /* Bound to a wildcard address (a server's [::] or 0.0.0.0): each
   * datagram says where it was sent to (IP_PKTINFO/IPV6_PKTINFO) and the
   * answers leave from there. A socket bound to one address needs none. */
  int pktinfo;
  int closed; /* io_close_endpoint: fd closed, freed at the loop's top level */
} io_socket_t;

typedef struct io_state {
  coap_context_t *ctx;
  int epfd;
  int stop;
  io_socket_t *sockets;
  uint8_t *rx_area; /* RX_BATCH slots of RX_SLOT_SIZE; pages used on demand */
  coap_address_t rx_addr[RX_BATCH];
  union { /* UDP_GRO; IPV6_PKTINFO and (v4 on a v6 socket) IP_PKTINFO */
    char space[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct in6_pktinfo)) +
               CMSG_SPACE(sizeof(struct in_pktinfo))];
    struct cmsghdr align;
  } rx_control[RX_BATCH];
  struct mmsghdr rx_msgs[RX_BATCH];
  struct iovec rx_iov[RX_BATCH];
  /* While set, datagrams sent are queued in |tx| and go out together when
   * the batch of input that caused them has been handled. */
  int batching;
  coap_tx_batch_t tx;
} io_state_t;

uint64_t coap_clock_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void io_free(void *p) {
  io_state_t *io = p;
  coap_tx_batch_flush(&io->tx); /* before the sockets close */
  while (io->sockets) {
    io_socket_t *s = io->sockets;
    io->sockets = s->next;
    if (!s->closed) close(s->fd);
    free(s);
  }
  if (io->epfd >= 0) close(io->epfd);
  free(io->rx_area);
  free(io);
}

/* Inside the loop (a received batch, due timers) datagrams are queued and
 * flushed together; a send from the application's own code (a request, a
 * deferred response) goes out at once, as nothing would flush it later. */
static int io_send(void *user, coap_endpoint_t *ep, const coap_address_t *to, const uint8_t *data,
                   size_t len) {
  io_state_t *io = user;
  io_socket_t *s = coap_endpoint_transport_data(ep);
  if (!s) return COAP_E_STATE;
  if (io->batching) return coap_tx_batch_add(&io->tx, s->fd, to, data, len);
  return coap_tx_send_now(&io->tx, s->fd, to, data, len);
}

/* An answer to a peer that wrote to |local|: from there, on a wildcard
 * socket (the context only has a local address for peers of those). */
static int io_send_from(void *user, coap_endpoint_t *ep, const coap_address_t *local,
                        const coap_address_t *to, const uint8_t *data, size_t len) {
  io_state_t *io = user;
  io_socket_t *s = coap_endpoint_transport_data(ep);
  if (!s) return COAP_E_STATE;
  if (!s->pktinfo) local = NULL;
  if (io->batching) return coap_tx_batch_add_from(&io->tx, s->fd, local, to, data, len);
  return coap_tx_send_now_from(&io->tx, s->fd, local, to, data, len);
}

const coap_tx_stats_t *coap_io_tx_stats(const coap_context_t *ctx) {
  const io_state_t *io = coap_context_shell_state(ctx);
  return io ? &io->tx.stats : NULL;
}

/* Workers' coaps:// sockets: the kernel runs this classic BPF program on
 * each datagram (the UDP payload at offset 0) and hands it to the socket
 * of the group whose index it returns. A tls12_cid record (content type
 * 25) goes to the worker its first CID byte (payload byte 11) names —
 * our CIDs begin with the worker index (coap_dtls_set_cid_worker) — so a
 * rebound client reaches its session with no hop between workers.
 * Anything else returns an index out of range, which leaves the kernel's
 * address hash in charge. A datagram too short for a load ends the
 * program with 0 (worker 0), which drops it as it would anywhere. */
static int attach_cid_steering(int fd) {
  struct sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 25, 0, 2),
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 11), BPF_STMT(BPF_RET | BPF_A, 0),
      BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
  };
  struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog);
}

/* A worker's DTLS socket (reuse_port on, a worker index given) steers
 * tls12_cid records; failing that, rebound clients whose new address
 * hashes elsewhere lose their session there: said once, not fatal. */
static void steer_cid_records(coap_context_t *ctx, int fd, coap_proto_t proto, int client) {
  if (client || proto != COAP_PROTO_DTLS || !coap_context_reuse_port(ctx) ||
      coap_dtls_cid_worker(coap_context_dtls(ctx)) < 0)
    return;
  if (attach_cid_steering(fd) < 0)
    coap_logf(coap_context_logger(ctx), COAP_LOG_WARNING, NULL,
              "cannot steer Connection ID records to their worker (%s): a client whose "
              "address changes may need a new handshake",
              strerror(errno));
}

static io_socket_t *open_socket(io_state_t *io, coap_proto_t proto, const coap_address_t *addr,
                                int client);

static int io_open_client(void *user, coap_context_t *ctx, coap_proto_t proto,
                          const coap_address_t *dest, coap_endpoint_t **out) {
  io_state_t *io = user;
  coap_address_t any;
  memset(&any, 0, sizeof any);
  if (dest->addr.sa.sa_family == AF_INET) {
    any.addr.sin.sin_family = AF_INET;
    any.size = sizeof(struct sockaddr_in);
  } else {
    coap_address_init(&any);
  }
  io_socket_t *s = open_socket(io, proto, &any, 1);
  if (!s) return COAP_E_SYSTEM;
  (void)ctx;
  *out = s->ep;
  return 0;
}

/* The context no longer uses a client endpoint (a session replaced from a
 * fresh one): its socket closes now, and the struct stays, marked, until
 * no event or receive loop up the stack can still hold it. */
static void io_close_endpoint(void *user, coap_context_t *ctx, coap_endpoint_t *ep) {
  io_state_t *io = user;
  io_socket_t *s = coap_endpoint_transport_data(ep);
  (void)ctx;
  if (!s || s->closed) return;
  coap_tx_batch_flush(&io->tx); /* datagrams queued on its fd go first */
  epoll_ctl(io->epfd, EPOLL_CTL_DEL, s->fd, NULL);
  close(s->fd);
  s->fd = -1;
  s->ep = NULL;
  s->closed = 1;
  coap_endpoint_set_transport_data(ep, NULL);
}

static void free_closed_sockets(io_state_t *io) {
  for (io_socket_t **link = &io->sockets; *link;) {
    io_socket_t *s = *link;
    if (!s->closed) {
      link = &s->next;
      continue;
    }
    *link = s->next;
    free(s);
  }
}

static io_state_t *io_attach(coap_context_t *ctx) {
  io_state_t *attached = coap_context_shell_state(ctx);
  if (attached) return attached;
  if (coap_context_has_transport(ctx)) return NULL; /* someone else's transport */
  io_state_t *io = calloc(1, sizeof(*io));
  if (!io) return NULL;
  io->ctx = ctx;
  io->rx_area = malloc((size_t)RX_BATCH * RX_SLOT_SIZE);
  io->epfd = io->rx_area ? epoll_create1(EPOLL_CLOEXEC) : -1;
  if (io->epfd < 0) {
    free(io->rx_area);
    free(io);
    return NULL;
  }
  for (int i = 0; i < RX_BATCH; i++) {
    io->rx_iov[i].iov_base = io->rx_area + (size_t)i * RX_SLOT_SIZE;
    io->rx_iov[i].iov_len = RX_SLOT_SIZE;
  }
  coap_tx_batch_init(&io->tx);
  coap_context_set_shell_state(ctx, io, io_free);
  coap_transport_t t = {.send = io_send,
                        .open_client_endpoint = io_open_client,
                        .send_from = io_send_from,
                        .close_endpoint = io_close_endpoint};
  coap_context_set_transport(ctx, &t, io);
  return io;
}

int coap_io_attach_default(coap_context_t *ctx) {
  return io_attach(ctx) ? 0 : COAP_E_STATE;
}

/* A server socket bound to a wildcard address is told each datagram's
 * destination: IPV6_PKTINFO on IPv6 (with the IPv4 address v4-mapped for
 * IPv4 clients of a dual-stack socket), IP_PKTINFO on IPv4 — and on a
 * dual-stack socket too, whose IPv4 datagrams then also carry the local
 * address the kernel would answer from (ipi_spec_dst: for a datagram to a
 * broadcast address, the interface's own, not the broadcast address).
 * Returns 1 when the socket reports destinations. */
static int want_pktinfo(int fd, int family) {
  int on = 1;
  if (family == AF_INET6) {
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on) < 0) return 0;
    setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on); /* older kernels: v6 only */
    return 1;
  }
  return setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on) == 0;
}

static int set_socket_options(int fd, int family, int bind_any_v6, int client, int reuse_port) {
  int on = 1, off = 0;
  /* Workers (coap_context_set_reuse_port) join a SO_REUSEPORT group: one
   * loop per thread, each with its own context and socket on the same
   * port; the kernel spreads remote addresses over them by hash, so a peer
   * (and its DTLS session) always lands on the same worker. Without it a
   * port in use is an error, not a silent share with another server. */
  if (!client && reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0)
    return -1;
  /* UDP GRO: a run of datagrams a client sent in one go (GSO, or merged
   * by the NIC) arrives as one buffer, split again in receive_batch —
   * one receive instead of one per datagram. Older kernels lack it:
   * harmless. */
  if (!client) setsockopt(fd, IPPROTO_UDP, UDP_GRO, &on, sizeof on);
  if (family == AF_INET6) {
    if (bind_any_v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) < 0) return -1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on);
  }
  /* Dual-stack sockets get IPv4 ICMP errors through IP_RECVERR. */
  setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
  return 0;
}

static io_socket_t *open_socket(io_state_t *io, coap_proto_t proto, const coap_address_t *addr,
                                int client) {
  coap_context_t *ctx = io->ctx;
  int family = addr->addr.sa.sa_family;
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return NULL;
  int any6 = family == AF_INET6 &&
             memcmp(&addr->addr.sin6.sin6_addr, &in6addr_any, sizeof(in6addr_any)) == 0;
  int any4 = family == AF_INET && addr->addr.sin.sin_addr.s_addr == htonl(INADDR_ANY);
  coap_address_t local = *addr;
  local.size = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
  io_socket_t *s = calloc(1, sizeof(*s));
  struct epoll_event ev = {.events = EPOLLIN};
  if (!s || set_socket_options(fd, family, any6, client, coap_context_reuse_port(ctx)) < 0 ||
      bind(fd, &local.addr.sa, local.size) < 0 ||
      getsockname(fd, &local.addr.sa, &local.size) < 0) {
    int saved = errno;
    char text[64];
    coap_logf(coap_context_logger(ctx), COAP_LOG_ERROR, NULL, "cannot bind %s: %s",
              coap_address_format(addr, text, sizeof text), strerror(saved));
    free(s);
    close(fd);
    errno = saved;
    return NULL;
  }
  s->fd = fd;
  steer_cid_records(ctx, fd, proto, client);
  /* A client's socket (wildcard too) sends its requests with the source
   * the kernel picks, and that is where the server answers: nothing to do. */
  s->pktinfo = !client && (any4 || any6) && want_pktinfo(fd, family);
  s->ep = coap_context_add_endpoint(ctx, proto, &local);
  ev.data.ptr = s;
  if (!s->ep || epoll_ctl(io->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    /* The endpoint (if made) stays listed but has no socket: sends fail. */
    free(s);
    close(fd);
    return NULL;
  }
  coap_endpoint_set_transport_data(s->ep, s);
  s->next = io->sockets;
  io->sockets = s;
  return s;
}

coap_endpoint_t *coap_context_listen(coap_context_t *ctx, coap_proto_t proto,
                                     const coap_address_t *addr) {
  if (!ctx || !addr) return NULL;
  io_state_t *io = io_attach(ctx);
  if (!io || !addr) return NULL;
  io_socket_t *s = open_socket(io, proto, addr, 0);
  return s ? s->ep : NULL;
}

/* ICMP errors: each names the destination of a datagram that could not be
 * delivered and quotes its start (up to |scratch|); the context acts on
 * one only if that quote is a datagram of ours (coap_context_input_icmp). */
static void drain_errors(io_state_t *io, io_socket_t *s) {
  for (int i = 0; i < 16; i++) {
    coap_address_t dest;
    memset(&dest, 0, sizeof dest);
    char control[512];
    uint8_t scratch[64];
    struct iovec iov = {scratch, sizeof scratch};
    struct msghdr mh = {.msg_name = &dest.addr.st,
                        .msg_namelen = sizeof dest.addr.st,
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = control,
                        .msg_controllen = sizeof control};
    ssize_t quoted = recvmsg(s->fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT);
    if (quoted < 0) return;
    dest.size = mh.msg_namelen;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (!((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
            (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)))
        continue;
      const struct sock_extended_err *ee = (const void *)CMSG_DATA(c);
      if (ee->ee_origin == SO_EE_ORIGIN_ICMP || ee->ee_origin == SO_EE_ORIGIN_ICMP6)
        coap_context_input_icmp(io->ctx, s->ep, &dest, scratch, (size_t)quoted,
                                coap_context_now(io->ctx));
    }
  }
}

/* What the control messages of a received datagram say: the segment size
 * of a GRO buffer (0 when |h| holds one datagram) and, on a wildcard
 * socket, the local address it was sent to (*has_local). */
typedef struct rx_info {
  size_t seg;
  int has_local;
  coap_address_t local;
} rx_info_t;

static void parse_control(struct msghdr *h, int pktinfo, rx_info_t *info) {
  info->seg = 0;
  info->has_local = 0;
  int have_v4 = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO) {
      int seg;
      memcpy(&seg, CMSG_DATA(c), sizeof seg);
      info->seg = seg > 0 ? (size_t)seg : 0;
    } else if (!pktinfo) {
      continue;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO && !have_v4) {
      struct in6_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      /* Answers never leave from a multicast address: let the kernel pick. */
      if (IN6_IS_ADDR_MULTICAST(&pi.ipi6_addr)) continue;
      memset(&info->local.addr.sin6, 0, sizeof info->local.addr.sin6);
      info->local.addr.sin6.sin6_family = AF_INET6;
      info->local.addr.sin6.sin6_addr = pi.ipi6_addr;
      if (IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr))
        info->local.addr.sin6.sin6_scope_id = (uint32_t)pi.ipi6_ifindex;
      info->local.size = sizeof(struct sockaddr_in6);
      info->has_local = 1;
    } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      /* ipi_spec_dst: the local address to answer from (for a broadcast
       * datagram the interface's address, not the header's). */
      struct in_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      if (h->msg_namelen == sizeof(struct sockaddr_in)) { /* an IPv4 socket */
        memset(&info->local.addr.sin, 0, sizeof info->local.addr.sin);
        info->local.addr.sin.sin_family = AF_INET;
        info->local.addr.sin.sin_addr = pi.ipi_spec_dst;
        info->local.size = sizeof(struct sockaddr_in);
      } else { /* v4-mapped, as the sender's address is on this socket */
        memset(&info->local.addr.sin6, 0, sizeof info->local.addr.sin6);
        info->local.addr.sin6.sin6_family = AF_INET6;
        info->local.addr.sin6.sin6_addr.s6_addr[10] = 0xff;
        info->local.addr.sin6.sin6_addr.s6_addr[11] = 0xff;
        memcpy(&info->local.addr.sin6.sin6_addr.s6_addr[12], &pi.ipi_spec_dst, 4);
        info->local.size = sizeof(struct sockaddr_in6);
      }
      info->has_local = have_v4 = 1;
    }
  }
}

/* Hand slot |i| to the context: one datagram, or each datagram of a GRO
 * buffer in order (one sender, one destination: one local address).
 * Datagrams larger than any we accept (cut by the kernel) are dropped and
 * counted (coap_stats_t.rx_too_large). */
static void deliver_slot(io_state_t *io, io_socket_t *s, int i, uint64_t now) {
  struct msghdr *h = &io->rx_msgs[i].msg_hdr;
  const uint8_t *data = io->rx_iov[i].iov_base;
  size_t len = io->rx_msgs[i].msg_len;
  if (h->msg_flags & MSG_TRUNC) {
    coap_context_count_rx_too_large(io->ctx);
    return;
  }
  rx_info_t info;
  parse_control(h, s->pktinfo, &info);
  size_t seg = info.seg ? info.seg : len;
  if (seg > RX_DATAGRAM_MAX) {
    coap_context_count_rx_too_large(io->ctx);
    return;
  }
  io->rx_addr[i].size = h->msg_namelen;
  const coap_address_t *local = info.has_local ? &info.local : NULL;
  size_t off = 0;
  do { /* at least once: an empty datagram is input too (and counted) */
    size_t n = len - off < seg ? len - off : seg;
    coap_context_input_to(io->ctx, s->ep, &io->rx_addr[i], local, data + off, n, now);
    off += n;
  } while (off < len && !s->closed);
}

static void receive_batch(io_state_t *io, io_socket_t *s) {
  for (;;) {
    for (int i = 0; i < RX_BATCH; i++) {
      struct msghdr *h = &io->rx_msgs[i].msg_hdr;
      memset(h, 0, sizeof(*h));
      h->msg_name = &io->rx_addr[i].addr.st;
      h->msg_namelen = sizeof io->rx_addr[i].addr.st;
      h->msg_iov = &io->rx_iov[i];
      h->msg_iovlen = 1;
      h->msg_control = io->rx_control[i].space;
      h->msg_controllen = sizeof io->rx_control[i].space;
    }
    int n = recvmmsg(s->fd, io->rx_msgs, RX_BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ECONNREFUSED || errno == EHOSTUNREACH) {
        drain_errors(io, s);
        continue;
      }
      return; /* EAGAIN: drained */
    }
    /* One clock reading for the whole batch: the datagrams arrived together. */
    uint64_t now = coap_context_now(io->ctx);
    for (int i = 0; i < n && !s->closed; i++) deliver_slot(io, s, i, now);
    coap_tx_batch_flush(&io->tx); /* the answers to this batch, together */
    if (n < RX_BATCH || s->closed) return;
  }
}

int coap_context_fd(coap_context_t *ctx) {
  if (!ctx) return COAP_E_INVALID_ARG;
  io_state_t *io = io_attach(ctx);
  return io ? io->epfd : COAP_E_STATE;
}

int coap_context_timeout_ms(coap_context_t *ctx) {
  if (!ctx) return COAP_E_INVALID_ARG;
  uint64_t next = coap_context_next_timeout(ctx);
  if (next == UINT64_MAX) return -1;
  uint64_t now = coap_context_now(ctx);
  if (next <= now) return 0;
  return next - now > INT_MAX ? INT_MAX : (int)(next - now);
}

static int wait_and_handle(io_state_t *io, int timeout_ms, int sigfd) {
  struct epoll_event events[16];
  int n = epoll_wait(io->epfd, events, 16, timeout_ms);
  if (n < 0 && errno != EINTR) return COAP_E_SYSTEM;
  int outer_batching = io->batching;            /* a blocking call inside a handler nests */
  if (!outer_batching) free_closed_sockets(io); /* none up the stack */
  io->batching = 1;
  for (int i = 0; i < n; i++) {
    if (sigfd >= 0 && events[i].data.ptr == NULL) {
      struct signalfd_siginfo si;
      if (read(sigfd, &si, sizeof si) > 0) io->stop = 1;
      continue;
    }
    io_socket_t *s = events[i].data.ptr;
    if (s->closed) continue; /* by a datagram handled before, in this batch */
    if (events[i].events & EPOLLERR) drain_errors(io, s);
    if ((events[i].events & EPOLLIN) && !s->closed) receive_batch(io, s);
  }
  coap_context_handle_timeouts(io->ctx, coap_context_now(io->ctx));
  coap_tx_batch_flush(&io->tx);
  io->batching = outer_batching;
  return 0;
}

int coap_context_process(coap_context_t *ctx, int timeout_ms) {
  if (!ctx) return COAP_E_INVALID_ARG;
  io_state_t *io = io_attach(ctx);
  if (!io) return COAP_E_STATE;
  int next = coap_context_timeout_ms(ctx);
  if (next >= 0 && (timeout_ms < 0 || next < timeout_ms)) timeout_ms = next;
  return wait_and_handle(io, timeout_ms, -1);
}

int coap_run(coap_context_t *ctx) {
  if (!ctx) return COAP_E_INVALID_ARG;
  io_state_t *io = io_attach(ctx);
  if (!io) return COAP_E_STATE;
  sigset_t mask, old;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &mask, &old);
  int sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  if (sigfd < 0 || epoll_ctl(io->epfd, EPOLL_CTL_ADD, sigfd, &ev) < 0) {
    if (sigfd >= 0) close(sigfd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return COAP_E_SYSTEM;
  }
  io->stop = 0;
  int rc = 0;
  while (!io->stop && rc == 0) rc = wait_and_handle(io, coap_context_timeout_ms(ctx), sigfd);
  epoll_ctl(io->epfd, EPOLL_CTL_DEL, sigfd, NULL);
  close(sigfd);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

void coap_context_stop(coap_context_t *ctx) {
  if (!ctx) return;
  io_state_t *io = coap_context_shell_state(ctx);
  if (io) io->stop = 1;
}

/* ---- the blocking convenience call ---- */

typedef struct blocking_wait {
  int done;
  coap_response_copy_t *out;
  int status;
} blocking_wait_t;

static void blocking_reply(coap_context_t *ctx, const coap_reply_t *reply, void *user) {
  (void)ctx;
  blocking_wait_t *w = user;
  w->done = 1;
  w->status = reply->status;
  if (reply->status < 0) return;
  coap_response_copy_t *out = w->out;
  out->code = reply->code;
  out->content_format = reply->content_format;
  out->payload = malloc(reply->payload_len + 1);
  size_t raw_cap = coap_msg_encoded_size(reply->msg);
  out->raw = malloc(raw_cap ? raw_cap : 1);
  if (!out->payload || !out->raw) {
    w->status = COAP_E_NOMEM;
    return;
  }
  if (reply->payload_len) memcpy(out->payload, reply->payload, reply->payload_len);
  out->payload[reply->payload_len] = '\0';
  out->payload_len = reply->payload_len;
  int n = coap_msg_encode(reply->msg, out->raw, raw_cap);
  out->raw_len = n > 0 ? (size_t)n : 0;
}

/* The response into the latest coap_response_copy_t |out|. */
static int request_blocking(coap_context_t *ctx, const coap_request_opts_t *o,
                            coap_response_copy_t *out) {
  memset(out, 0, sizeof(*out));
  out->content_format = COAP_FORMAT_NONE;
  io_state_t *io = io_attach(ctx);
  if (!io) return COAP_E_STATE;
  blocking_wait_t w = {.out = out};
  int rc = coap_send_request(ctx, o, blocking_reply, &w, NULL);
  if (rc < 0) return rc;
  while (!w.done) {
    rc = coap_context_process(ctx, -1);
    if (rc < 0) return rc;
  }
  if (w.status < 0) coap_response_copy_clear(out);
  return w.status;
}

int coap_request_blocking_versioned(coap_context_t *ctx, int opts_version,
                                    const coap_request_opts_t *o, int copy_version,
                                    coap_response_copy_t *out) {
  const char *fn = "coap_request_blocking";
  coap_request_opts_t opts;
  coap_request_opts_init(&opts, COAP_GET, NULL);
  const coap_abi_struct_t *copy_abi = coap_abi_struct(COAP_ABI_RESPONSE_COPY);
  if (!ctx || !o || !out ||
      coap_abi_read(coap_abi_struct(COAP_ABI_REQUEST_OPTS), opts_version, o, &opts,
                    coap_context_logger(ctx), fn) < 0 ||
      !coap_abi_len(copy_abi, copy_version, coap_context_logger(ctx), fn))
    return COAP_E_INVALID_ARG;
  /* An observation calls back again after the reply: not for a wait on the stack. */
  if (opts.observe) return COAP_E_INVALID_ARG;
  coap_response_copy_t latest;
  int rc = request_blocking(ctx, &opts, &latest);
  coap_abi_write(copy_abi, copy_version, &latest, out, coap_context_logger(ctx), fn);
  return rc;
}

int coap_response_copy_clear_versioned(int version, coap_response_copy_t *r) {
  if (!r) return 0;
  coap_response_copy_t latest = {.content_format = COAP_FORMAT_NONE};
  if (coap_abi_read(coap_abi_struct(COAP_ABI_RESPONSE_COPY), version, r, &latest, NULL,
                    "coap_response_copy_clear") < 0)
    return COAP_E_INVALID_ARG;
  free(latest.payload);
  free(latest.raw);
  memset(&latest, 0, sizeof latest);
  latest.content_format = COAP_FORMAT_NONE;
  return coap_abi_write(coap_abi_struct(COAP_ABI_RESPONSE_COPY), version, &latest, r, NULL,
                        "coap_response_copy_clear");
}
