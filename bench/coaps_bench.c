/* coaps-bench — a CoAP / CoAP-over-DTLS load generator.
 *
 * One thread drives many client sessions. Each session is its own
 * coap_context_t with its own UDP socket (a distinct source port, so a
 * distinct session on the server), driven through the embedding API: our
 * transport queues datagrams and flushes them with sendmmsg, received
 * datagrams are read with recvmmsg and fed to coap_context_input(), and the
 * contexts' next deadlines sit in one min-heap so that the loop never walks
 * every session. Latencies go into a log-linear histogram (no allocation per
 * sample).
 *
 * Modes:
 *   steady      --sessions N --window W, for --duration S or --requests C:
 *               requests/s once every session is established.
 *   handshakes  --handshakes C --parallel P: C fresh sessions (a new
 *               context, socket and full handshake each) doing one GET,
 *               at most P at once: handshakes/s. --leave-open: they end
 *               without close_notify and pile up on the server, like
 *               devices that lose power; --duration S caps the run.
 *   hold        --hold S: establish --sessions N (P at once), print the
 *               report, then keep them idle S seconds (0: until SIGINT or
 *               SIGTERM) — idle load for memory and scaling figures.
 *
 * --source-addresses K (a server on 127.0.0.0/8): the sessions share K
 * sockets bound to 0.0.0.0 instead of one socket each, and differ by
 * source address: session i sends from
 * 127.(1 + i / 65536).(i / 256 % 256).(i % 256) on socket i % K
 * (IP_PKTINFO on sendmmsg), and the address a reply was sent to (the
 * IP_PKTINFO of recvmmsg) gives i back — an index, no search. So the
 * number of sessions is not bounded by RLIMIT_NOFILE, and a fresh
 * session (--handshakes) costs no socket of its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <coap.h>

#define MAX_WINDOW 64
#define RX_BATCH 16
#define DGRAM_MAX 2048
/* A receive slot with UDP_GRO: one buffer may hold a whole GSO message
 * (up to 64 segments, at most a UDP payload's 65507 bytes). */
#define GRO_SLOT 65536
#define TXQ_MAX 64
#define EVENTS_MAX 256
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

/* ---- options ---- */

typedef struct bench_opts {
  const char *uri;
  long sessions, window, parallel;
  double duration_s;
  int duration_set;  /* --duration given: also caps --handshakes */
  long long requests, handshakes;
  int leave_open;    /* --handshakes: no close_notify, the server keeps the session */
  double hold_s; /* < 0: no hold mode */
  const char *psk_identity, *psk, *psk_hex;
  const char *cacert, *cert, *key, *rpk, *trust_rpk;
  int json, verbose;
  int no_gro;
  long shared_sockets; /* --source-addresses K; 0: a socket per session */
} bench_opts_t;

/* ---- latency histogram: 64 linear sub-buckets per power of two, so any
 * value is known within 1/64 (1.6 %) with 3776 counters and no per-sample
 * allocation. ---- */

#define HIST_SUB_BITS 6
#define HIST_BUCKETS ((64 - HIST_SUB_BITS - 1) * 64 + 128)

typedef struct histogram {
  uint64_t count, max;
  uint64_t bucket[HIST_BUCKETS];
} histogram_t;

static unsigned hist_index(uint64_t v) {
  if (v < 128) return (unsigned)v;
  unsigned shift = (unsigned)(63 - __builtin_clzll(v)) - HIST_SUB_BITS;
  return shift * 64 + (unsigned)(v >> shift);
}

/* The largest value a bucket holds: percentiles are reported pessimistically. */
static uint64_t hist_bucket_high(unsigned idx) {
  if (idx < 128) return idx;
  unsigned shift = idx / 64 - 1;
  uint64_t mant = idx - shift * 64;
  return ((mant + 1) << shift) - 1;
}

static void hist_add(histogram_t *h, uint64_t v) {
  h->bucket[hist_index(v)]++;
  h->count++;
  if (v > h->max) h->max = v;
}

static uint64_t hist_percentile(const histogram_t *h, double p) {
  if (!h->count) return 0;
  uint64_t target = (uint64_t)ceil(p * (double)h->count), seen = 0;
  if (target == 0) target = 1;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    seen += h->bucket[i];
    if (seen >= target) return hist_bucket_high(i) < h->max ? hist_bucket_high(i) : h->max;
  }
  return h->max;
}

/* ---- state ---- */

typedef struct bench bench_t;
typedef struct session session_t;

typedef struct slot {
  session_t *s;
  uint64_t sent_us; /* 0: sent before the measurement started */
} slot_t;

enum session_state { S_CONNECTING, S_READY, S_DONE };

struct session {
  bench_t *b;
  coap_context_t *ctx;
  coap_endpoint_t *ep;
  int fd;           /* own connected socket, or -1 */
  uint32_t src;     /* --source-addresses: source address (network order), else 0 */
  long idx;         /* launch order: the source address and shared socket */
  enum session_state state;
  uint64_t busy;    /* bit i: slots[i] has a request in flight */
  uint64_t deadline;
  size_t heap_idx;
  int mute;         /* --leave-open: freed without a word to the server */
  slot_t slots[MAX_WINDOW];
};

/* Room for the control messages of one sent message: the source address
 * (IP_PKTINFO, --source-addresses) and the GSO segment size. */
#define TX_CONTROL (CMSG_SPACE(sizeof(struct in_pktinfo)) + CMSG_SPACE(sizeof(uint16_t)))

typedef struct tx_queue {
  unsigned n;
  int no_gso; /* the kernel refused UDP_SEGMENT: one datagram per message */
  int fd[TXQ_MAX];
  uint32_t src[TXQ_MAX]; /* source address on a shared socket, 0: connected socket */
  struct mmsghdr msgs[TXQ_MAX];
  struct iovec iov[TXQ_MAX];
  uint8_t buf[TXQ_MAX][DGRAM_MAX];
  /* Messages of one flush: each carries one datagram or, with UDP GSO,
   * several of the same length (the last may be shorter). */
  struct mmsghdr groups[TXQ_MAX];
  unsigned group_first[TXQ_MAX], group_count[TXQ_MAX];
  union {
    char space[TX_CONTROL];
    struct cmsghdr align;
  } control[TXQ_MAX], src_control[TXQ_MAX];
} tx_queue_t;

/* --source-addresses: one of the sockets the sessions share. */
typedef struct shared_socket {
  int fd;
  uint16_t port; /* host order */
  long index;
} shared_socket_t;

typedef struct counters {
  uint64_t completed;      /* 2.xx replies to measured requests */
  uint64_t handshakes;     /* sessions whose first request succeeded */
  uint64_t timeouts, handshake_failures, non_2xx, other_errors;
  uint64_t retransmissions, tx_dropped;
} counters_t;

struct bench {
  bench_opts_t o;
  uint64_t rand_state;     /* tokens and retransmission jitter, see bench_rand */
  /* The time a socket's batch was read (0: none being handled): its
   * replies arrived then, and the requests that refill the window go out
   * right after, so one clock reading serves them all. */
  uint64_t batch_us;
  coap_address_t dest;
  coap_dtls_context_t *dtls; /* coaps://: shared by every session */
  int epfd;
  volatile sig_atomic_t *stop;
  int stopping;            /* freeing: cancelled replies are not errors */
  session_t **heap;        /* min-heap on deadline */
  size_t heap_len, heap_cap;
  long started, connecting, finished; /* sessions launched / handshaking / over */
  long target_sessions;
  uint64_t t0_us, t_end_us, last_done_us;
  int measuring;
  long long issued;        /* measured requests sent (--requests) */
  uint64_t in_flight_measured;
  counters_t c;
  histogram_t lat;
  tx_queue_t txq;
  /* UDP_GRO on the sockets (not --no-gro, and the kernel took it): a
   * server's GSO message arrives as one buffer, split here. */
  int gro;
  size_t rx_slot;          /* bytes per receive buffer */
  uint8_t *rx_buf;         /* RX_BATCH slots */
  struct mmsghdr rx_msgs[RX_BATCH];
  struct iovec rx_iov[RX_BATCH];
  union {
    char space[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct in_pktinfo))];
    struct cmsghdr align;
  } rx_control[RX_BATCH];
  /* --source-addresses: the shared sockets, the session of each source
   * address by index (NULL: none yet or freed), the server's address as
   * a sendmmsg destination, and where a received message came from. */
  shared_socket_t *shared;
  long n_shared;
  session_t **by_index;
  long by_index_len;
  struct sockaddr_in dest_in;
  struct sockaddr_in rx_from[RX_BATCH];
  session_t *touched[RX_BATCH]; /* sessions fed by one shared socket's batch */
};

static volatile sig_atomic_t g_stop;

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- deadline heap: the loop sleeps until the earliest context timer
 * and wakes only the contexts that are due. ---- */

static void heap_swap(bench_t *b, size_t i, size_t j) {
  session_t *t = b->heap[i];
  b->heap[i] = b->heap[j];
  b->heap[j] = t;
  b->heap[i]->heap_idx = i;
  b->heap[j]->heap_idx = j;
}

static void heap_fix(bench_t *b, size_t i) {
  while (i > 0 && b->heap[(i - 1) / 2]->deadline > b->heap[i]->deadline) {
    heap_swap(b, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < b->heap_len && b->heap[l]->deadline < b->heap[m]->deadline) m = l;
    if (r < b->heap_len && b->heap[r]->deadline < b->heap[m]->deadline) m = r;
    if (m == i) return;
    heap_swap(b, i, m);
    i = m;
  }
}

static int heap_push(bench_t *b, session_t *s) {
  if (b->heap_len == b->heap_cap) {
    size_t cap = b->heap_cap ? b->heap_cap * 2 : 64;
    session_t **h = realloc(b->heap, cap * sizeof *h);
    if (!h) return -1;
    b->heap = h;
    b->heap_cap = cap;
  }
  s->heap_idx = b->heap_len;
  b->heap[b->heap_len++] = s;
  heap_fix(b, s->heap_idx);
  return 0;
}

static void heap_remove(bench_t *b, session_t *s) {
  size_t i = s->heap_idx, last = b->heap_len - 1;
  if (i != last) heap_swap(b, i, last);
  b->heap_len--;
  if (i < b->heap_len) heap_fix(b, i);
}

/* ---- transmit queue: datagrams a context sends while handling one
 * socket's batch go out in one sendmmsg; consecutive ones of the same
 * length (a session's window of requests) share one UDP GSO message, so
 * the kernel routes and queues them once and cuts them apart on delivery —
 * the server receives the same separate datagrams either way. ---- */

#define GSO_SEGMENTS_MAX 64

static int send_one(int fd, struct mmsghdr *m, unsigned n) {
  for (int attempt = 0; attempt < 2; attempt++) {
    int r = sendmmsg(fd, m, n, 0);
    if (r >= 0) return r;
    /* An earlier datagram's ICMP error surfaces once on a connected
     * socket; the datagram itself was not sent: try again. */
    if (errno != ECONNREFUSED && errno != EINTR) break;
  }
  return -1;
}

/* End (exclusive) of the datagrams from |first| that can share one GSO
 * message: same socket and source address, each as long as the first but a
 * shorter last one. */
static unsigned gso_group_end(const tx_queue_t *q, unsigned first, unsigned end) {
  size_t seg = q->iov[first].iov_len;
  unsigned j = first + 1;
  if (q->no_gso) return j;
  while (j < end && j - first < GSO_SEGMENTS_MAX && q->iov[j].iov_len <= seg &&
         q->src[j] == q->src[first])
    if (q->iov[j++].iov_len < seg) break;
  return j;
}

/* An IP_PKTINFO control message at |space| asking for source address
 * |src| (network order); returns the bytes it takes. */
static size_t put_pktinfo(void *space, uint32_t src) {
  struct cmsghdr *c = space;
  c->cmsg_level = IPPROTO_IP;
  c->cmsg_type = IP_PKTINFO;
  c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
  struct in_pktinfo pi = {.ipi_ifindex = 0};
  pi.ipi_spec_dst.s_addr = src;
  memcpy(CMSG_DATA(c), &pi, sizeof pi);
  return CMSG_SPACE(sizeof(struct in_pktinfo));
}

static void make_group(tx_queue_t *q, unsigned g, unsigned first, unsigned count) {
  struct msghdr *h = &q->groups[g].msg_hdr;
  *h = q->msgs[first].msg_hdr;
  h->msg_iovlen = count;
  q->group_first[g] = first;
  q->group_count[g] = count;
  if (count == 1) return;
  size_t at = q->src[first] ? put_pktinfo(q->control[g].space, q->src[first]) : 0;
  h->msg_control = q->control[g].space;
  h->msg_controllen = at + CMSG_SPACE(sizeof(uint16_t));
  struct cmsghdr *c = (struct cmsghdr *)(q->control[g].space + at);
  c->cmsg_level = SOL_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t seg = (uint16_t)q->iov[first].iov_len;
  memcpy(CMSG_DATA(c), &seg, sizeof seg);
}

/* Datagrams [start, end) of one socket. A GSO message the kernel refuses
 * goes out again one datagram at a time (and GSO stays off); any other
 * refusal (ENOBUFS) loses the datagrams like the wire would — CoAP and
 * DTLS retransmit them. */
static void flush_run(bench_t *b, unsigned start, unsigned end) {
  tx_queue_t *q = &b->txq;
  int fd = q->fd[start];
  unsigned n_groups = 0;
  for (unsigned i = start; i < end;) {
    unsigned j = gso_group_end(q, i, end);
    make_group(q, n_groups++, i, j - i);
    i = j;
  }
  unsigned g = 0;
  while (g < n_groups) {
    int r = send_one(fd, &q->groups[g], n_groups - g);
    if (r > 0) {
      g += (unsigned)r;
      continue;
    }
    unsigned first = q->group_first[g], count = q->group_count[g];
    if (count > 1 && errno != ENOBUFS && errno != EAGAIN) {
      q->no_gso = 1;
      for (unsigned k = 0; k < count;) {
        int one = send_one(fd, &q->msgs[first + k], count - k);
        if (one <= 0) b->c.tx_dropped++;
        k += one > 0 ? (unsigned)one : 1;
      }
    } else {
      b->c.tx_dropped += count;
    }
    g++;
  }
}

static void txq_flush(bench_t *b) {
  tx_queue_t *q = &b->txq;
  unsigned i = 0;
  while (i < q->n) {
    unsigned end = i + 1;
    while (end < q->n && q->fd[end] == q->fd[i]) end++;
    flush_run(b, i, end);
    i = end;
  }
  q->n = 0;
}

/* Queue a datagram for |fd|: a connected socket (|src| 0), or a shared
 * one, sending to the server from source address |src|. */
static int txq_push(bench_t *b, int fd, uint32_t src, const uint8_t *data, size_t len) {
  tx_queue_t *q = &b->txq;
  if (len > DGRAM_MAX) {
    txq_flush(b);
    if (!src) return send(fd, data, len, 0) < 0 ? COAP_E_LIMIT : 0;
    union {
      char space[TX_CONTROL];
      struct cmsghdr align;
    } control;
    struct iovec iov = {(void *)data, len};
    struct msghdr h = {.msg_name = &b->dest_in, .msg_namelen = sizeof b->dest_in,
                       .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space};
    h.msg_controllen = put_pktinfo(control.space, src);
    return sendmsg(fd, &h, 0) < 0 ? COAP_E_LIMIT : 0;
  }
  if (q->n == TXQ_MAX) txq_flush(b);
  unsigned i = q->n++;
  memcpy(q->buf[i], data, len);
  q->fd[i] = fd;
  q->src[i] = src;
  q->iov[i] = (struct iovec){q->buf[i], len};
  struct msghdr *h = &q->msgs[i].msg_hdr;
  memset(h, 0, sizeof *h);
  h->msg_iov = &q->iov[i];
  h->msg_iovlen = 1;
  if (src) {
    h->msg_name = &b->dest_in;
    h->msg_namelen = sizeof b->dest_in;
    h->msg_control = q->src_control[i].space;
    h->msg_controllen = put_pktinfo(q->src_control[i].space, src);
  }
  return 0;
}

/* ---- the transport installed in every session's context ---- */

static int tr_send(void *user, coap_endpoint_t *ep, const coap_address_t *to,
                   const uint8_t *data, size_t len) {
  session_t *s = coap_endpoint_transport_data(ep);
  if (!s) return COAP_E_STATE;
  if (s->mute) return 0; /* its close_notify: the device is gone */
  /* The socket is connected to |to| (the only peer a session talks to);
   * a shared socket sends to it from the session's address. */
  if (s->src) return txq_push(s->b, s->b->shared[s->idx % s->b->n_shared].fd, s->src, data, len);
  if (s->fd < 0) return COAP_E_STATE;
  return txq_push(s->b, s->fd, 0, data, len);
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

static int tr_open(void *user, coap_context_t *ctx, coap_proto_t proto,
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
static int cached_resolve(void *user, const char *host, uint16_t port, coap_address_t *out) {
  const bench_t *b = user;
  *out = b->dest;
  coap_address_set_port(out, port);
  return 0;
}

/* ---- credentials ---- */

/* The DTLS configuration, made once (credentials read and checked once,
 * one GnuTLS priority cache) and shared by every session's context, each
 * holding a reference. Resumption is off: a session shares the
 * configuration with the earlier ones, not their session cache, so every
 * handshake is a full one. */
static int make_dtls(const bench_opts_t *o, coap_dtls_context_t **out, char *err, size_t cap) {
  coap_dtls_context_t *d = coap_dtls_context_new();
  if (!d) {
    snprintf(err, cap, "out of memory");
    return COAP_E_NOMEM;
  }
  int rc = 0;
  if (o->psk_identity && o->psk)
    rc = coap_dtls_set_psk(d, (const uint8_t *)o->psk_identity, (const uint8_t *)o->psk,
                           strlen(o->psk));
  else if (o->psk_identity && o->psk_hex)
    rc = coap_dtls_set_psk_hex(d, o->psk_identity, o->psk_hex);
  if (rc == 0 && o->cert) rc = coap_dtls_set_cert(d, o->cert, o->key, NULL);
  if (rc == 0 && o->rpk) rc = coap_dtls_set_rpk(d, o->rpk);
  if (rc == 0 && o->trust_rpk) rc = coap_dtls_add_trusted_rpk(d, o->trust_rpk);
  if (rc == 0 && o->cacert) rc = coap_dtls_set_ca(d, o->cacert);
  if (rc == 0) rc = coap_dtls_set_resumption(d, 0);
  /* A fresh session is freed right after its one GET: moving it to
   * exported keys first would be work for nothing. */
  if (rc == 0 && o->handshakes > 0) rc = coap_dtls_set_compact_sessions(d, 0);
  if (rc < 0) {
    snprintf(err, cap, "%s", coap_dtls_context_last_error(d));
    coap_dtls_context_free(d);
    return rc;
  }
  *out = d;
  return 0;
}

/* ---- sessions ---- */

static void on_reply(coap_context_t *ctx, const coap_reply_t *r, void *user);

static int send_get(session_t *s) {
  bench_t *b = s->b;
  unsigned i = (unsigned)__builtin_ctzll(~s->busy);
  slot_t *sl = &s->slots[i];
  sl->s = s;
  sl->sent_us = 0;
  if (b->measuring) {
    sl->sent_us = b->batch_us ? b->batch_us : now_us();
    b->issued++;
    b->in_flight_measured++;
  }
  coap_request_opts_t ro;
  coap_request_opts_init(&ro, COAP_GET, b->o.uri);
  s->busy |= 1ull << i;
  int rc = coap_send_request(s->ctx, &ro, on_reply, sl, NULL);
  if (rc < 0) {
    /* Refused before anything was sent (no callback will come). */
    s->busy &= ~(1ull << i);
    if (sl->sent_us) b->in_flight_measured--;
    b->c.other_errors++;
    if (b->o.verbose) fprintf(stderr, "coaps-bench: request refused: %s\n", coap_strerror(rc));
  }
  return rc;
}

/* Keep the window full while the measurement wants more requests. */
static void session_refill(session_t *s) {
  bench_t *b = s->b;
  if (s->state != S_READY || b->o.handshakes > 0 || b->o.hold_s >= 0) return;
  long w = b->o.window;
  while (__builtin_popcountll(s->busy) < w && !b->stopping) {
    if (b->measuring && b->o.requests > 0 && b->issued >= b->o.requests) return;
    if (send_get(s) < 0) return;
  }
}

static void session_free(bench_t *b, session_t *s) {
  coap_stats_t st;
  coap_context_get_stats(s->ctx, &st);
  b->c.retransmissions += st.retransmissions;
  int was_stopping = b->stopping;
  b->stopping = 1; /* outstanding requests come back as cancelled */
  s->mute = b->o.leave_open;
  coap_context_free(s->ctx); /* may send a close_notify through the queue */
  b->stopping = was_stopping;
  txq_flush(b);
  if (s->fd >= 0) close(s->fd);
  if (s->src) b->by_index[s->idx] = NULL;
  heap_remove(b, s);
  free(s);
}

/* After anything that ran a session's context: send what it queued,
 * top up its window, re-key its deadline. A finished --handshakes session
 * is freed here, outside the library's call stack. Returns 1 if freed.
 * What a session on a shared socket queued waits for the caller's
 * txq_flush, so that one sendmmsg carries many sessions' datagrams. */
static int session_after(bench_t *b, session_t *s) {
  if (s->state == S_DONE && b->o.handshakes > 0) {
    session_free(b, s);
    return 1;
  }
  session_refill(s);
  if (!s->src) txq_flush(b);
  uint64_t d = coap_context_next_timeout(s->ctx);
  if (d != s->deadline) {
    s->deadline = d;
    heap_fix(b, s->heap_idx);
  }
  return 0;
}

/* Tokens and back-off jitter for the generator's own requests. A load
 * generator needs tokens that are distinct, not unpredictable, so a
 * splitmix64 stream seeded once from the kernel does: a few ns a draw,
 * against about 40 ns for the library's default (kernel randomness through
 * a per-thread pool; when it made one getrandom call per draw, that was a
 * sixth of the generator's CPU). */
static void bench_rand(void *user, uint8_t *buf, size_t len) {
  bench_t *b = user;
  while (len) {
    uint64_t z = (b->rand_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    size_t n = len < sizeof z ? len : sizeof z;
    memcpy(buf, &z, n);
    buf += n;
    len -= n;
  }
}

static session_t *session_new(bench_t *b, long idx) {
  session_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->b = b;
  s->fd = -1;
  s->idx = idx;
  s->deadline = UINT64_MAX;
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.log_level = b->o.verbose ? COAP_LOG_INFO : COAP_LOG_ERROR;
  cfg.max_peers = 4;
  cfg.resolve = cached_resolve;
  cfg.resolve_user = b;
  cfg.rand = bench_rand;
  cfg.rand_user = b;
  /* The window is the session's concurrency: NSTART must allow it. */
  cfg.tx.nstart = (uint8_t)b->o.window;
  s->ctx = coap_context_new(&cfg);
  if (!s->ctx || heap_push(b, s) < 0) {
    coap_context_free(s->ctx);
    free(s);
    return NULL;
  }
  if (b->dtls) coap_context_set_dtls_context(s->ctx, coap_dtls_context_ref(b->dtls));
  coap_transport_t t = {.send = tr_send, .open_client_endpoint = tr_open};
  coap_context_set_transport(s->ctx, &t, s);
  return s;
}

/* Start sessions while fewer than --parallel are handshaking. */
static void launch_sessions(bench_t *b) {
  while (!b->stopping && b->started < b->target_sessions && b->connecting < b->o.parallel) {
    session_t *s = session_new(b, b->started);
    b->started++;
    if (!s) {
      b->c.other_errors++;
      b->finished++;
      continue;
    }
    b->connecting++;
    if (send_get(s) < 0) {
      b->connecting--;
      b->finished++;
      s->state = S_DONE;
      session_free(b, s);
      continue;
    }
    session_after(b, s);
  }
  txq_flush(b);
}

static void count_failure(bench_t *b, const coap_reply_t *r) {
  if (r->status == COAP_E_TIMEOUT)
    b->c.timeouts++;
  else if (r->status <= COAP_E_DTLS_NO_CREDENTIALS && r->status >= COAP_E_DTLS_RECORD)
    b->c.handshake_failures++; /* failed, timed out or lost DTLS session */
  else
    b->c.other_errors++;
  if (b->o.verbose)
    fprintf(stderr, "coaps-bench: request failed: %s%s%s\n", coap_strerror(r->status),
            r->detail ? ": " : "", r->detail ? r->detail : "");
}

/* The first reply of a session ends its handshake (or its first round
 * trip, for coap://). */
static void session_established(bench_t *b, session_t *s, int ok) {
  b->connecting--;
  if (ok) {
    b->c.handshakes++;
    s->state = b->o.handshakes > 0 ? S_DONE : S_READY;
  } else {
    s->state = S_DONE;
  }
  if (b->o.handshakes > 0 || !ok) b->finished++;
}

static void on_reply(coap_context_t *ctx, const coap_reply_t *r, void *user) {
  slot_t *sl = user;
  session_t *s = sl->s;
  bench_t *b = s->b;
  s->busy &= ~(1ull << (sl - s->slots));
  if (b->stopping && r->status == COAP_E_CANCELLED) return;
  uint64_t t = b->batch_us ? b->batch_us : now_us();
  int ok = r->status == 0 && r->code >> 5 == 2;
  if (r->status < 0) count_failure(b, r);
  else if (!ok) b->c.non_2xx++;
  if (sl->sent_us) {
    b->in_flight_measured--;
    if (ok && (!b->t_end_us || t <= b->t_end_us)) {
      b->c.completed++;
      hist_add(&b->lat, t - sl->sent_us);
      b->last_done_us = t;
    }
  }
  if (s->state == S_CONNECTING) session_established(b, s, r->status == 0);
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

static void receive_batch(bench_t *b, session_t *s) {
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
static void receive_shared(bench_t *b, shared_socket_t *sh) {
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
    txq_flush(b);
    b->batch_us = 0;
    if (n < RX_BATCH) return;
  }
}

static void run_timers(bench_t *b) {
  uint64_t now = coap_clock_now_ms();
  /* Bounded: a context whose timer stays due cannot spin the loop. */
  for (size_t n = b->heap_len; n > 0 && b->heap_len && b->heap[0]->deadline <= now; n--) {
    session_t *s = b->heap[0];
    coap_context_handle_timeouts(s->ctx, now);
    if (session_after(b, s)) continue;
    if (s->deadline <= now) { /* nothing ran: look again next tick */
      s->deadline = now + 1;
      heap_fix(b, s->heap_idx);
    }
  }
  txq_flush(b); /* what sessions on shared sockets sent */
}

static int poll_timeout_ms(const bench_t *b, uint64_t wake_us) {
  uint64_t now = coap_clock_now_ms();
  uint64_t next = b->heap_len ? b->heap[0]->deadline : UINT64_MAX;
  if (wake_us) {
    uint64_t w = wake_us / 1000 + 1;
    if (w < next) next = w;
  }
  if (next == UINT64_MAX) return 100;
  if (next <= now) return 0;
  return next - now > 100 ? 100 : (int)(next - now);
}

static void poll_once(bench_t *b, uint64_t wake_us) {
  struct epoll_event ev[EVENTS_MAX];
  int n = epoll_wait(b->epfd, ev, EVENTS_MAX, poll_timeout_ms(b, wake_us));
  for (int i = 0; i < n; i++) {
    if (b->n_shared) {
      receive_shared(b, ev[i].data.ptr);
      continue;
    }
    session_t *s = ev[i].data.ptr;
    receive_batch(b, s);
    session_after(b, s);
    b->batch_us = 0;
  }
  run_timers(b);
}

/* Steady mode: the measurement starts when every session has finished
 * its handshake, so handshakes do not dilute requests/s. */
static void maybe_start_measuring(bench_t *b) {
  if (b->measuring || b->connecting || b->started < b->target_sessions) return;
  if (b->finished >= b->target_sessions) return; /* every session failed */
  b->measuring = 1;
  b->t0_us = now_us();
  if (b->o.requests <= 0) b->t_end_us = b->t0_us + (uint64_t)(b->o.duration_s * 1e6);
  /* Windows are already full (sessions start sending once established);
   * requests sent from now on are the measured ones. */
}

static int steady_done(const bench_t *b) {
  if (!b->measuring) return b->finished >= b->target_sessions; /* all failed */
  if (b->o.requests > 0) return b->issued >= b->o.requests && !b->in_flight_measured;
  return now_us() >= b->t_end_us;
}

static void run_steady(bench_t *b) {
  b->target_sessions = b->o.sessions;
  while (!*b->stop) {
    launch_sessions(b);
    maybe_start_measuring(b);
    if (steady_done(b)) break;
    poll_once(b, b->t_end_us);
  }
  if (!b->t_end_us || (b->o.requests > 0 && b->last_done_us)) b->t_end_us = b->last_done_us;
  if (*b->stop && b->measuring) b->t_end_us = now_us();
}

/* Ends after C sessions, or at --duration if given: a server that slows
 * down as sessions pile up (--leave-open) may never get through C.
 * Sessions still handshaking at the cap are not counted. */
static void run_handshakes(bench_t *b) {
  b->target_sessions = b->o.handshakes;
  b->measuring = 1;
  b->t0_us = now_us();
  uint64_t cap = b->o.duration_set ? b->t0_us + (uint64_t)(b->o.duration_s * 1e6) : 0;
  while (!*b->stop && b->finished < b->target_sessions) {
    launch_sessions(b);
    poll_once(b, cap);
    if (cap && now_us() >= cap) break;
  }
  b->t_end_us = now_us();
}

static void run_hold(bench_t *b) {
  b->target_sessions = b->o.sessions;
  b->t0_us = now_us();
  while (!*b->stop && b->started < b->target_sessions) {
    launch_sessions(b);
    poll_once(b, 0);
  }
  while (!*b->stop && b->connecting) poll_once(b, 0);
  b->t_end_us = now_us();
}

/* ---- report ---- */

static double elapsed_s(const bench_t *b) {
  return b->t_end_us > b->t0_us ? (double)(b->t_end_us - b->t0_us) / 1e6 : 0;
}

static uint64_t errors_total(const counters_t *c) {
  return c->timeouts + c->handshake_failures + c->non_2xx + c->other_errors;
}

static const char *mode_name(const bench_opts_t *o) {
  return o->handshakes > 0 ? "handshakes" : o->hold_s >= 0 ? "hold" : "steady";
}

static void report(const bench_t *b, FILE *out) {
  const counters_t *c = &b->c;
  double t = elapsed_s(b);
  double rps = t > 0 ? (double)c->completed / t : 0;
  double hps = t > 0 && b->o.handshakes > 0 ? (double)c->handshakes / t : 0;
  if (b->o.hold_s >= 0 && t > 0) hps = (double)c->handshakes / t;
  uint64_t p50 = hist_percentile(&b->lat, 0.50), p90 = hist_percentile(&b->lat, 0.90);
  uint64_t p99 = hist_percentile(&b->lat, 0.99);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
               ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
  if (b->o.json) {
    fprintf(out,
            "{\"mode\":\"%s\",\"uri\":\"%s\",\"sessions\":%ld,\"window\":%ld,"
            "\"parallel\":%ld,\"seconds\":%.3f,\"requests\":%" PRIu64 ","
            "\"requests_per_s\":%.1f,\"handshakes\":%" PRIu64 ",\"handshakes_per_s\":%.1f,"
            "\"latency_us\":{\"p50\":%" PRIu64 ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64
            ",\"max\":%" PRIu64 "},\"retransmissions\":%" PRIu64 ",\"errors\":%" PRIu64 ","
            "\"timeouts\":%" PRIu64 ",\"handshake_failures\":%" PRIu64 ",\"non_2xx\":%" PRIu64
            ",\"other_errors\":%" PRIu64 ",\"tx_dropped\":%" PRIu64 ",\"generator_cpu_s\":%.3f,"
            "\"gro\":%d,\"shared_sockets\":%ld,\"source_addresses\":%ld,"
            "\"close_notify\":%d,\"generator_rss_kb\":%ld}\n",
            mode_name(&b->o), b->o.uri, b->o.sessions, b->o.window, b->o.parallel, t, c->completed,
            rps, c->handshakes, hps, p50, p90, p99, b->lat.max, c->retransmissions,
            errors_total(c), c->timeouts, c->handshake_failures, c->non_2xx, c->other_errors,
            c->tx_dropped, cpu, b->gro, b->n_shared, b->n_shared ? b->started : 0,
            !b->o.leave_open, ru.ru_maxrss);
  } else {
    fprintf(out, "%s %s: %.3f s\n", mode_name(&b->o), b->o.uri, t);
    fprintf(out, "  requests      %" PRIu64 " (%.1f/s)\n", c->completed, rps);
    if (b->o.handshakes > 0 || b->o.hold_s >= 0)
      fprintf(out, "  handshakes    %" PRIu64 " (%.1f/s)%s\n", c->handshakes, hps,
              b->o.leave_open ? ", sessions left open (no close_notify)" : "");
    fprintf(out, "  latency (us)  p50 %" PRIu64 "  p90 %" PRIu64 "  p99 %" PRIu64 "  max %" PRIu64 "\n",
            p50, p90, p99, b->lat.max);
    fprintf(out, "  retransmissions %" PRIu64 "\n", c->retransmissions);
    fprintf(out, "  errors        %" PRIu64 " (timeouts %" PRIu64 ", failed handshakes %" PRIu64
                 ", non-2.xx %" PRIu64 ", other %" PRIu64 ")\n",
            errors_total(c), c->timeouts, c->handshake_failures, c->non_2xx, c->other_errors);
    if (b->n_shared)
      fprintf(out, "  sockets       %ld shared by %ld source addresses (127.1.0.0 on)\n",
              b->n_shared, b->started);
    fprintf(out, "  generator CPU %.2f s, peak RSS %ld kB\n", cpu, ru.ru_maxrss);
  }
  fflush(out);
}

/* ---- set-up ---- */

static void usage(FILE *out) {
  fprintf(out,
          "usage: coaps-bench URI [options]\n"
          "\n"
          "Sends GET requests (CON) to URI (coap:// or coaps://) from many client\n"
          "sessions, each its own UDP socket (or sharing a few: --source-addresses),\n"
          "and reports requests/s, latency percentiles, retransmissions and errors.\n"
          "\n"
          "  --sessions N        client sessions (default 50)\n"
          "  --window W          requests in flight per session (default 4, max 64)\n"
          "  --duration S        measure for S seconds (default 10); with\n"
          "                      --handshakes: stop after S seconds at the latest\n"
          "  --requests C        measure C requests instead\n"
          "  --handshakes C      C fresh sessions (full handshake + one GET each):\n"
          "                      measure handshakes/s\n"
          "  --parallel P        sessions handshaking at once (default 16)\n"
          "  --leave-open        with --handshakes: sessions end without close_notify\n"
          "                      (devices that lose power), so they pile up on the\n"
          "                      server until its idle timeout\n"
          "  --hold S            establish --sessions N, report, keep them idle S\n"
          "                      seconds (0: until SIGINT/SIGTERM)\n"
          "  --psk-identity ID --psk KEY | --psk-hex HEX\n"
          "  --cacert FILE       CA that verifies the server\n"
          "  --cert FILE --key FILE   client certificate\n"
          "  --rpk KEYFILE       own raw public key;  --trust-rpk PUBFILE  server's key\n"
          "  --no-gro            no UDP_GRO on the sockets: the kernel cuts a server's\n"
          "                      GSO answers apart before they are queued\n"
          "  --source-addresses K  server on 127.0.0.0/8: the sessions share K sockets\n"
          "                      (bound to 0.0.0.0) and each sends from its own\n"
          "                      address, 127.1.0.0, 127.1.0.1, ... (IP_PKTINFO): more\n"
          "                      sessions than file descriptors, and no socket to\n"
          "                      open and close per fresh session (--handshakes)\n"
          "  --json              one JSON object on standard output\n"
          "  -v, --verbose       log failures\n");
}

enum { O_SESSIONS = 256, O_WINDOW, O_DURATION, O_REQUESTS, O_HANDSHAKES, O_PARALLEL, O_HOLD,
       O_PSK_ID, O_PSK, O_PSK_HEX, O_CACERT, O_CERT, O_KEY, O_RPK, O_TRUST_RPK, O_JSON,
       O_NO_GRO, O_SOURCE_ADDRESSES, O_LEAVE_OPEN };

static int parse_number(const char *flag, const char *text, double min, double max, double *out) {
  char *end;
  errno = 0;
  double v = strtod(text, &end);
  if (errno || end == text || *end || v < min || v > max) {
    fprintf(stderr, "coaps-bench: %s wants a number from %g to %g, got '%s'\n", flag, min, max,
            text);
    return -1;
  }
  *out = v;
  return 0;
}

static int take_option(bench_opts_t *o, int c, const char *arg) {
  double v;
  switch (c) {
    case O_SESSIONS: if (parse_number("--sessions", arg, 1, 1e6, &v) < 0) return -1; o->sessions = (long)v; break;
    case O_WINDOW: if (parse_number("--window", arg, 1, MAX_WINDOW, &v) < 0) return -1; o->window = (long)v; break;
    case O_DURATION: if (parse_number("--duration", arg, 0.01, 1e6, &o->duration_s) < 0) return -1; o->duration_set = 1; break;
    case O_REQUESTS: if (parse_number("--requests", arg, 1, 1e15, &v) < 0) return -1; o->requests = (long long)v; break;
    case O_HANDSHAKES: if (parse_number("--handshakes", arg, 1, 1e12, &v) < 0) return -1; o->handshakes = (long long)v; break;
    case O_PARALLEL: if (parse_number("--parallel", arg, 1, 1e6, &v) < 0) return -1; o->parallel = (long)v; break;
    case O_HOLD: if (parse_number("--hold", arg, 0, 1e9, &o->hold_s) < 0) return -1; break;
    case O_PSK_ID: o->psk_identity = arg; break;
    case O_PSK: o->psk = arg; break;
    case O_PSK_HEX: o->psk_hex = arg; break;
    case O_CACERT: o->cacert = arg; break;
    case O_CERT: o->cert = arg; break;
    case O_KEY: o->key = arg; break;
    case O_RPK: o->rpk = arg; break;
    case O_TRUST_RPK: o->trust_rpk = arg; break;
    case O_JSON: o->json = 1; break;
    case O_NO_GRO: o->no_gro = 1; break;
    case O_LEAVE_OPEN: o->leave_open = 1; break;
    case O_SOURCE_ADDRESSES: if (parse_number("--source-addresses", arg, 1, 1024, &v) < 0) return -1; o->shared_sockets = (long)v; break;
    case 'v': o->verbose++; break;
    default: return -1;
  }
  return 0;
}

/* 0, 1 for --help, -1 for bad usage (reported). */
/* How many sessions a run starts: --handshakes C fresh ones, or
 * --sessions N (each gets a source address with --source-addresses). */
static long session_count(const bench_opts_t *o) {
  return o->handshakes > 0 ? o->handshakes : o->sessions;
}

static int parse_args(bench_opts_t *o, int argc, char **argv) {
  static const struct option longopts[] = {
      {"sessions", required_argument, NULL, O_SESSIONS},
      {"window", required_argument, NULL, O_WINDOW},
      {"duration", required_argument, NULL, O_DURATION},
      {"requests", required_argument, NULL, O_REQUESTS},
      {"handshakes", required_argument, NULL, O_HANDSHAKES},
      {"parallel", required_argument, NULL, O_PARALLEL},
      {"hold", required_argument, NULL, O_HOLD},
      {"psk-identity", required_argument, NULL, O_PSK_ID},
      {"psk", required_argument, NULL, O_PSK},
      {"psk-hex", required_argument, NULL, O_PSK_HEX},
      {"cacert", required_argument, NULL, O_CACERT},
      {"cert", required_argument, NULL, O_CERT},
      {"key", required_argument, NULL, O_KEY},
      {"rpk", required_argument, NULL, O_RPK},
      {"trust-rpk", required_argument, NULL, O_TRUST_RPK},
      {"json", no_argument, NULL, O_JSON},
      {"no-gro", no_argument, NULL, O_NO_GRO},
      {"leave-open", no_argument, NULL, O_LEAVE_OPEN},
      {"source-addresses", required_argument, NULL, O_SOURCE_ADDRESSES},
      {"verbose", no_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  *o = (bench_opts_t){.sessions = 50, .window = 4, .parallel = 16, .duration_s = 10,
                      .hold_s = -1};
  int c;
  while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
    if (c == 'h') return 1;
    if (c == '?' || take_option(o, c, optarg) < 0) return -1;
  }
  if (optind + 1 != argc) {
    fprintf(stderr, "coaps-bench: give exactly one URI\n");
    return -1;
  }
  o->uri = argv[optind];
  if ((o->psk || o->psk_hex) != !!o->psk_identity) {
    fprintf(stderr, "coaps-bench: --psk-identity goes with --psk or --psk-hex\n");
    return -1;
  }
  if (!!o->cert != !!o->key) {
    fprintf(stderr, "coaps-bench: --cert goes with --key\n");
    return -1;
  }
  if (o->handshakes > 0 && o->hold_s >= 0) {
    fprintf(stderr, "coaps-bench: --handshakes and --hold are separate modes\n");
    return -1;
  }
  if (o->leave_open && o->handshakes <= 0) {
    fprintf(stderr, "coaps-bench: --leave-open goes with --handshakes\n");
    return -1;
  }
  if (o->shared_sockets > session_count(o)) o->shared_sockets = session_count(o);
  return 0;
}

/* Find the server's address once (see cached_resolve) and check the URI. */
static int resolve_uri(bench_t *b) {
  coap_uri_t uri;
  int rc = coap_uri_parse(&uri, b->o.uri);
  if (rc < 0) {
    fprintf(stderr, "coaps-bench: %s: %s\n", b->o.uri, coap_strerror(rc));
    return -1;
  }
  if (coap_address_from_string(&b->dest, uri.host, uri.port) == 0) return 0;
  struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL;
  if (getaddrinfo(uri.host, NULL, &hints, &res) != 0 || !res) {
    fprintf(stderr, "coaps-bench: cannot resolve '%s'\n", uri.host);
    return -1;
  }
  memset(&b->dest, 0, sizeof b->dest);
  memcpy(&b->dest.addr.st, res->ai_addr, res->ai_addrlen);
  b->dest.size = (socklen_t)res->ai_addrlen;
  freeaddrinfo(res);
  coap_address_set_port(&b->dest, uri.port);
  return 0;
}

/* Read and check the credentials once (a bad file is reported at
 * start-up); every session shares the configuration. */
static int load_credentials(bench_t *b) {
  if (strncmp(b->o.uri, "coaps:", 6) != 0) return 0;
  char err[256];
  if (make_dtls(&b->o, &b->dtls, err, sizeof err) < 0) {
    fprintf(stderr, "coaps-bench: %s\n", err);
    return -1;
  }
  if (!coap_dtls_can_connect(b->dtls)) {
    fprintf(stderr, "coaps-bench: coaps:// needs credentials: --psk-identity ID --psk KEY, "
                    "--cacert FILE or --trust-rpk FILE\n");
    return -1;
  }
  return 0;
}

/* --source-addresses K: K sockets bound to 0.0.0.0 (any 127.x.y.z is
 * theirs to send from and to receive at) on loopback only
 * (SO_BINDTODEVICE, where allowed), each with IP_PKTINFO so that a reply
 * tells which session's address it went to, a larger receive buffer (K
 * sockets queue what N would), and UDP_GRO like the others. */
static int open_shared_sockets(bench_t *b) {
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
    fprintf(stderr, "coaps-bench: --source-addresses: the server's address is one of the "
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

/* One descriptor per session, plus a few. */
static void raise_nofile(long need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return;
  rlim_t want = (rlim_t)need + 64;
  if (rl.rlim_cur >= want) return;
  if (rl.rlim_max < want) {
    struct rlimit more = {want, want};
    if (setrlimit(RLIMIT_NOFILE, &more) == 0) return; /* root may raise it */
  }
  rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < want)
    fprintf(stderr, "coaps-bench: warning: only %lu file descriptors for %ld sessions "
                    "(--source-addresses K: K sockets for all of them)\n",
            (unsigned long)rl.rlim_cur, need);
}

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static void install_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}

static void hold_idle(bench_t *b) {
  uint64_t until = b->o.hold_s > 0 ? now_us() + (uint64_t)(b->o.hold_s * 1e6) : UINT64_MAX;
  while (!g_stop && now_us() < until) poll_once(b, 0);
}

static void free_all(bench_t *b) {
  b->stopping = 1;
  while (b->heap_len) session_free(b, b->heap[b->heap_len - 1]);
  free(b->heap);
}

static void bench_free(bench_t *b) {
  coap_dtls_context_free(b->dtls); /* the last reference */
  for (long i = 0; i < b->n_shared; i++) close(b->shared[i].fd);
  free(b->shared);
  free(b->by_index);
  if (b->epfd >= 0) close(b->epfd);
  free(b->rx_buf);
  free(b);
}

static bench_t *bench_new(const bench_opts_t *o) {
  bench_t *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  b->o = *o;
  b->stop = &g_stop;
  if (getrandom(&b->rand_state, sizeof b->rand_state, 0) != sizeof b->rand_state)
    b->rand_state = now_us(); /* distinct is all the generator needs */
  b->gro = !o->no_gro;
  /* Address space only: the pages of a slot are touched as far as the
   * kernel writes into them. */
  b->rx_slot = b->gro ? GRO_SLOT : DGRAM_MAX;
  b->rx_buf = malloc(RX_BATCH * b->rx_slot);
  b->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (!b->rx_buf || b->epfd < 0) {
    bench_free(b);
    return NULL;
  }
  for (int i = 0; i < RX_BATCH; i++)
    b->rx_iov[i] = (struct iovec){b->rx_buf + (size_t)i * b->rx_slot, b->rx_slot};
  return b;
}

int main(int argc, char **argv) {
  bench_opts_t o;
  int rc = parse_args(&o, argc, argv);
  if (rc != 0) {
    usage(rc > 0 ? stdout : stderr);
    return rc > 0 ? 0 : 64;
  }
  bench_t *b = bench_new(&o);
  if (!b) return 1;
  if (resolve_uri(b) < 0 || load_credentials(b) < 0 || open_shared_sockets(b) < 0) {
    bench_free(b);
    return 64;
  }
  install_signals();
  raise_nofile(o.handshakes > 0 ? o.parallel : o.shared_sockets ? 0 : o.sessions);
  if (o.handshakes > 0) run_handshakes(b);
  else if (o.hold_s >= 0) run_hold(b);
  else run_steady(b);
  if (o.hold_s >= 0 && !g_stop) {
    report(b, stdout);
    hold_idle(b);
  }
  free_all(b);
  if (o.hold_s < 0) report(b, stdout);
  int failed = errors_total(&b->c) > 0 || (o.hold_s < 0 && b->c.completed == 0 &&
                                          b->c.handshakes == 0);
  bench_free(b);
  return failed ? 1 : 0;
}
