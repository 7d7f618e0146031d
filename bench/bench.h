/* coaps-bench: what its files share (see coaps_bench.c for what it does).
 *   coaps_bench.c     options, set-up, main
 *   bench_sessions.c  the client sessions: contexts, windows of requests,
 *                     the deadline heap
 *   bench_net.c       sockets: sending through the library's send batching
 *                     (src/io/tx_batch.c), receiving with recvmmsg and GRO,
 *                     --source-addresses
 *   bench_modes.c     what is measured: steady requests/s, handshakes/s,
 *                     held idle sessions; the loop and the report
 *   histogram.c       latency percentiles */
#ifndef COAPS_BENCH_H
#define COAPS_BENCH_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <coap.h>

#include "histogram.h"
#include "io/tx_batch.h"

#define MAX_WINDOW 64
#define RX_BATCH 16
#define DGRAM_MAX COAP_TX_DATAGRAM_MAX
/* A receive slot with UDP_GRO: one buffer may hold a whole GSO message
 * (up to 64 segments, at most a UDP payload's 65507 bytes). */
#define GRO_SLOT 65536
#define EVENTS_MAX 256
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

/* ---- options ---- */

typedef struct bench_opts {
  const char *uri;
  long sessions, window, parallel;
  double duration_s;
  int duration_set; /* --duration given: also caps --handshakes */
  long long requests, handshakes;
  int leave_open; /* --handshakes: no close_notify, the server keeps the session */
  double hold_s;  /* < 0: no hold mode */
  const char *psk_identity, *psk, *psk_hex;
  const char *cacert, *cert, *key, *rpk, *trust_rpk;
  int json, verbose;
  int no_gro;
  long shared_sockets; /* --source-addresses K; 0: a socket per session */
} bench_opts_t;

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
  int fd;       /* own connected socket, or -1 */
  uint32_t src; /* --source-addresses: source address (network order), else 0 */
  long idx;     /* launch order: the source address and shared socket */
  enum session_state state;
  uint64_t busy; /* bit i: slots[i] has a request in flight */
  uint64_t deadline;
  size_t heap_idx;
  int mute; /* --leave-open: freed without a word to the server */
  slot_t slots[MAX_WINDOW];
};

/* --source-addresses: one of the sockets the sessions share. */
typedef struct shared_socket {
  int fd;
  uint16_t port; /* host order */
  long index;
} shared_socket_t;

typedef struct counters {
  uint64_t completed;  /* 2.xx replies to measured requests */
  uint64_t handshakes; /* sessions whose first request succeeded */
  uint64_t timeouts, handshake_failures, non_2xx, other_errors;
  uint64_t retransmissions;
} counters_t;

struct bench {
  bench_opts_t o;
  uint64_t rand_state; /* tokens and retransmission jitter, see bench_rand */
  /* The time a socket's batch was read (0: none being handled): its
   * replies arrived then, and the requests that refill the window go out
   * right after, so one clock reading serves them all. */
  uint64_t batch_us;
  coap_address_t dest;
  coap_dtls_context_t *dtls; /* coaps://: shared by every session */
  int epfd;
  volatile sig_atomic_t *stop;
  int stopping;     /* freeing: cancelled replies are not errors */
  session_t **heap; /* min-heap on deadline */
  size_t heap_len, heap_cap;
  long started, connecting, finished; /* sessions launched / handshaking / over */
  long target_sessions;
  uint64_t t0_us, t_end_us, last_done_us;
  int measuring;
  long long issued; /* measured requests sent (--requests) */
  uint64_t in_flight_measured;
  counters_t c;
  histogram_t lat;
  /* Datagrams the contexts send while one socket's batch (or one round
   * of timers) is handled, sent together: sendmmsg, UDP GSO. */
  coap_tx_batch_t tx;
  /* UDP_GRO on the sockets (not --no-gro, and the kernel took it): a
   * server's GSO message arrives as one buffer, split here. */
  int gro;
  size_t rx_slot;  /* bytes per receive buffer */
  uint8_t *rx_buf; /* RX_BATCH slots */
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

extern volatile sig_atomic_t g_stop;

static inline uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* bench_sessions.c */
void heap_fix(bench_t *b, size_t i);
/* Start sessions while fewer than --parallel are handshaking. */
void launch_sessions(bench_t *b);
int session_after(bench_t *b, session_t *s);
void session_free(bench_t *b, session_t *s);

/* bench_net.c: the transport installed in every session's context */
int bench_send(void *user, coap_endpoint_t *ep, const coap_address_t *to, const uint8_t *data,
               size_t len);
int bench_open_endpoint(void *user, coap_context_t *ctx, coap_proto_t proto,
                        const coap_address_t *dest, coap_endpoint_t **out);
int cached_resolve(void *user, const char *host, uint16_t port, coap_address_t *out);
/* Send what the sessions queued. */
void bench_flush(bench_t *b);
/* Everything waiting on a session's own socket, or on a shared one. */
void receive_batch(bench_t *b, session_t *s);
void receive_shared(bench_t *b, shared_socket_t *sh);
int open_shared_sockets(bench_t *b);
/* How many sessions a run starts: --handshakes C fresh ones, or
 * --sessions N (each gets a source address with --source-addresses). */
long session_count(const bench_opts_t *o);

/* bench_modes.c */
void run_steady(bench_t *b);
void run_handshakes(bench_t *b);
void run_hold(bench_t *b);
/* --hold S: keep the sessions idle S seconds (0: until a signal). */
void hold_idle(bench_t *b);
uint64_t errors_total(const counters_t *c);
void report(const bench_t *b, FILE *out);

#endif
