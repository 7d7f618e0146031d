/* client_fleet: a fleet of coaps:// PSK clients in one process, for the
 * cluster tests (tests/interop/cluster_failover.sh). Each client is a real
 * library client — a coap_context_t and a coap_dtls_context_t of its own
 * (its own session cache: it resumes its own session, as a device does) —
 * driven through the embedding API: this program owns the sockets (a
 * coap_transport_t), one UDP socket a client, so each has a source port of
 * its own and "rebind" (a NAT giving the device a new port) is: open a new
 * socket, close the old one. One epoll loop, one heap of deadlines: no
 * thread a client, so 1,000 clients cost little beside six server workers
 * on two cores.
 *
 * Each client sends a CON GET every --interval ms (the first ones spread
 * over --ramp ms), one at a time: a request due while the last is still
 * unanswered goes when that one ends. What it records: requests sent,
 * answered (2.xx), failed (with the cause), DTLS handshakes full and
 * resumed (the context's counters), whether the server asked for a
 * cookie on the last one, the node that answered — byte 1 of the server's
 * Connection ID, which coaps serve --node-id puts there, so no server
 * change is needed —, rebinds, and latencies. ICMP errors are not read
 * unless --icmp-errors (then handed to the library with what they quote,
 * as coaps's own sockets do: coap_context_input_icmp says what it makes
 * of them).
 *
 * Commands on standard input, one a line (the test's phases):
 *   mark        counters restart from here ("since the mark"); each
 *               client notes the node it is on
 *   rebind K    from now on move each client to a new source port every
 *               K requests (0: never), only between requests, never in
 *               a handshake
 *   reconnect   each client, before its next request, ends its DTLS
 *               session (a close_notify) and moves to a new source port,
 *               as a device that restarts: that request makes a new
 *               handshake, which resumes the session (its ticket) when
 *               the server still can (counted as resumed, else full)
 *   report      print the report (below) and go on
 *   quit        (or end of input, SIGINT, SIGTERM) send nothing new, wait
 *               for the requests under way (at most --timeout ms), print
 *               the report, exit 0
 * SIGUSR1 prints the report too. Lines it prints by itself:
 *   ready CLIENTS T       every client has had an answer (T: ms since start)
 *   caught-up CLIENTS T   every client has had an answer since the mark
 *                         (T: ms since the mark)
 * The report: one line a client
 *   client I port P node N mark_node M sent S answered A failed F
 *     same_node X other_node Y full H resumed R cookie C flights G rebinds B
 *     first_answer_ms T moved_ms U max_latency_ms L
 * (since the mark, a request under way at the mark counted as sent since
 * it; node, mark_node: the CID's node byte, -1 for none — a client on no
 * node at the mark (or before any mark) takes its first answer's node;
 * other_node: answers from a node other than mark_node; cookie: the server
 * asked for one in the client's last handshake, flights: the flights the
 * client sent in it (a resumption without cookie: 2, one round trip;
 * with a cookie 3; resends add to it); first_answer_ms and
 * moved_ms: ms from the mark to its first answer, and to its first answer
 * from a node other than mark_node, -1 for none; max_latency_ms: the
 * longest request, from its first send to its answer), then one line
 *   summary {JSON: the same totals since the mark, reused_ports (rebinds
 *            onto a port some client of the fleet closed within 180 s),
 *            answers and clients by node, failures by cause, and "total"
 *            since the start; since the start too: send_errors (sends the
 *            socket refused), icmp_errors (ICMP errors read, with
 *            --icmp-errors) and icmp_vetted (those the library found
 *            quoting a datagram of the client's, and acted upon)}
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "coap.h"

#define NODES 256
#define MAX_CAUSES 24
#define EVENTS_MAX 256
#define STDIN_TAG ((void *)1)

typedef struct counts {
  uint64_t sent, answered, failed, full, resumed, rebinds, same_node, other_node;
  uint64_t reused_ports; /* rebinds onto a port the fleet closed < PORT_QUIET_MS ago */
} counts_t;

typedef struct fleet fleet_t;

typedef struct client {
  fleet_t *f;
  int idx;
  coap_context_t *ctx;
  coap_dtls_context_t *dtls;
  coap_endpoint_t *ep;
  int fd; /* its socket (-1 until the library asks for an endpoint) */
  int family;
  uint64_t next_send; /* when its next request is due */
  int in_flight;
  uint64_t sent_at; /* the request under way: its first send */
  uint64_t deadline;
  size_t heap_idx;
  int node;      /* the CID's node byte of its session, -1: none yet */
  int mark_node; /* |node| at the mark */
  counts_t now, base;
  uint64_t hs_seen, resumed_seen; /* the context's counters folded in */
  int last_cookie;                /* the server asked for a cookie in the last handshake */
  unsigned last_flights;          /* flights we sent in it (resends too) */
  long first_answer_ms, moved_ms; /* since the mark, -1: not yet */
  uint64_t max_latency_ms;
  unsigned since_rebind; /* requests since its socket was opened */
  int reconnect_due;     /* "reconnect": a fresh session for the next request */
} client_t;

typedef struct cause_count {
  char name[48];
  uint64_t now, base;
} cause_count_t;

typedef struct opts {
  const char *uri, *identity, *psk;
  long clients;
  unsigned interval_ms, ramp_ms, timeout_ms, rebind_every;
  int verbose, icmp_errors;
} opts_t;

struct fleet {
  opts_t o;
  client_t *c;
  client_t **heap;
  size_t heap_len;
  int epfd;
  uint64_t start, mark;
  int draining, stdin_open;
  uint64_t drain_until;
  int ready_said, caught_up_said, marked;
  uint64_t progress_at;
  uint64_t answers_by_node[NODES + 1][2]; /* [node + 1][0: now, 1: at the mark] */
  cause_count_t causes[MAX_CAUSES];
  size_t n_causes;
  uint64_t send_errors, icmp_errors, icmp_vetted;
};

static volatile sig_atomic_t g_report, g_quit;

static void on_signal(int sig) {
  if (sig == SIGUSR1)
    g_report = 1;
  else
    g_quit = 1;
}

/* ---- the deadline heap: the loop sleeps until the earliest client is
 * due (a timer of its context or its next request) ---- */

static void heap_swap(fleet_t *f, size_t i, size_t j) {
  client_t *t = f->heap[i];
  f->heap[i] = f->heap[j];
  f->heap[j] = t;
  f->heap[i]->heap_idx = i;
  f->heap[j]->heap_idx = j;
}

static void heap_fix(fleet_t *f, size_t i) {
  while (i > 0 && f->heap[(i - 1) / 2]->deadline > f->heap[i]->deadline) {
    heap_swap(f, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < f->heap_len && f->heap[l]->deadline < f->heap[m]->deadline) m = l;
    if (r < f->heap_len && f->heap[r]->deadline < f->heap[m]->deadline) m = r;
    if (m == i) return;
    heap_swap(f, i, m);
    i = m;
  }
}

/* After anything happened to |c|: when it is due next. */
static void refresh(client_t *c) {
  uint64_t t = coap_context_next_timeout(c->ctx);
  if (!c->in_flight && !c->f->draining && c->next_send < t) t = c->next_send;
  c->deadline = t;
  heap_fix(c->f, c->heap_idx);
}

/* ---- sockets: the transport ---- */

/* A fresh non-blocking UDP socket of |family| on an ephemeral port,
 * watched by the loop; -1 (errno) on failure. */
static int open_socket(client_t *c, int family) {
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int on = 1;
  if (c->f->o.icmp_errors)
    setsockopt(fd, family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6,
               family == AF_INET ? IP_RECVERR : IPV6_RECVERR, &on, sizeof on);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  if (epoll_ctl(c->f->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    close(fd);
    return -1;
  }
  return fd; /* unbound: the first sendto picks the port */
}

static unsigned local_port(int fd) {
  struct sockaddr_storage a;
  socklen_t len = sizeof a;
  if (fd < 0 || getsockname(fd, (struct sockaddr *)&a, &len) < 0) return 0;
  if (a.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&a)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
}

static int fleet_send(void *user, coap_endpoint_t *ep, const coap_address_t *to,
                      const uint8_t *data, size_t len) {
  client_t *c = user;
  (void)ep;
  if (sendto(c->fd, data, len, 0, &to->addr.sa, to->size) >= 0) return 0;
  c->f->send_errors++;
  /* A full socket buffer is loss, which the library's retransmissions
   * cover; anything else is reported. */
  if (errno == EAGAIN || errno == ENOBUFS) return 0;
  return errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH ? COAP_E_UNREACHABLE
                                                                                : COAP_E_SYSTEM;
}

static int fleet_open_endpoint(void *user, coap_context_t *ctx, coap_proto_t proto,
                               const coap_address_t *dest, coap_endpoint_t **out) {
  client_t *c = user;
  if (c->fd >= 0) { /* one endpoint a client: it talks to one server */
    *out = c->ep;
    return 0;
  }
  c->family = dest->addr.sa.sa_family;
  c->fd = open_socket(c, c->family);
  if (c->fd < 0) return COAP_E_SYSTEM;
  c->ep = coap_context_add_endpoint(ctx, proto, NULL);
  if (!c->ep) return COAP_E_NOMEM;
  coap_endpoint_set_transport_data(c->ep, c);
  *out = c->ep;
  return 0;
}

/* Rebinding: by default the new port is the kernel's choice for port 0,
 * random, and may be one this or another client closed a second ago, as
 * a busy NAT hands a released port to the next device: a stateless
 * balancer routes it by its CID all the same. --fresh-ports picks the new
 * port as a NAT that holds a mapping 180 s does, and as a balancer that
 * keeps conntrack flows needs (a port given to another client while the
 * balancer still holds the old client's flow follows that flow to the
 * old client's node, whatever its CID): the next one of the ephemeral
 * range not closed by us within PORT_QUIET_MS. */
#define PORT_QUIET_MS 180000
static uint64_t g_port_closed_at[65536];
static unsigned g_port_lo, g_port_hi, g_port_next;
static int g_fresh_ports; /* --fresh-ports */

static void read_port_range(void) {
  FILE *fp = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
  if (!fp || fscanf(fp, "%u %u", &g_port_lo, &g_port_hi) != 2 || g_port_lo == 0 ||
      g_port_hi > 65535 || g_port_lo > g_port_hi)
    g_port_lo = 32768, g_port_hi = 60999;
  if (fp) fclose(fp);
  g_port_next = g_port_lo;
}

static int bind_port(int fd, int family, unsigned port) {
  struct sockaddr_storage a;
  memset(&a, 0, sizeof a);
  a.ss_family = (sa_family_t)family;
  if (family == AF_INET)
    ((struct sockaddr_in *)&a)->sin_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in6 *)&a)->sin6_port = htons((uint16_t)port);
  socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
  return bind(fd, (struct sockaddr *)&a, len);
}

/* A port not in use and quiet long enough, or else any (the kernel's). */
static int bind_fresh_port(int fd, int family, uint64_t now) {
  unsigned span = g_port_hi - g_port_lo + 1;
  for (unsigned i = 0; i < span; i++) {
    unsigned p = g_port_next;
    g_port_next = p == g_port_hi ? g_port_lo : p + 1;
    if (g_port_closed_at[p] && now - g_port_closed_at[p] < PORT_QUIET_MS) continue;
    if (bind_port(fd, family, p) == 0) return 0;
  }
  return bind_port(fd, family, 0);
}

/* A NAT gave the device a new port: the new socket is bound before the
 * old one closes, so the port really changes. Between requests only. */
static void rebind(client_t *c) {
  uint64_t now = coap_clock_now_ms();
  int fd = open_socket(c, c->family);
  if (fd < 0 ||
      (g_fresh_ports ? bind_fresh_port(fd, c->family, now) : bind_port(fd, c->family, 0)) < 0) {
    fprintf(stderr, "client_fleet: client %d: no new socket: %s\n", c->idx, strerror(errno));
    if (fd >= 0) close(fd);
    return;
  }
  unsigned old = local_port(c->fd), got = local_port(fd);
  if (old) g_port_closed_at[old] = now ? now : 1;
  if (g_port_closed_at[got] && now - g_port_closed_at[got] < PORT_QUIET_MS) c->now.reused_ports++;
  close(c->fd);
  c->fd = fd;
  c->now.rebinds++;
  c->since_rebind = 0;
}

/* ---- accounting ---- */

static void count_cause(fleet_t *f, const char *name) {
  size_t i;
  for (i = 0; i < f->n_causes; i++)
    if (strcmp(f->causes[i].name, name) == 0) break;
  if (i == f->n_causes) {
    if (f->n_causes == MAX_CAUSES)
      i = MAX_CAUSES - 1, name = "other";
    else
      f->n_causes++;
    snprintf(f->causes[i].name, sizeof f->causes[i].name, "%s", name);
  }
  f->causes[i].now++;
}

/* Fold the context's handshake counters in, and the node of its session
 * (byte 1 of the server's Connection ID). */
static void sync_client(client_t *c) {
  coap_stats_t st;
  if (coap_context_get_stats(c->ctx, &st) == 0 && st.dtls_handshakes != c->hs_seen) {
    uint64_t resumed = st.dtls_resumed - c->resumed_seen;
    c->now.resumed += resumed;
    c->now.full += st.dtls_handshakes - c->hs_seen - resumed;
    c->hs_seen = st.dtls_handshakes;
    c->resumed_seen = st.dtls_resumed;
    coap_handshake_report_t r;
    if (coap_context_last_handshake(c->ctx, &r) == 0) {
      c->last_cookie = r.cookie;
      c->last_flights = r.flights;
    }
  }
  coap_dtls_cid_info_t ci;
  if (coap_dtls_last_cid(c->dtls, &ci) == 0 && ci.negotiated && ci.peer_len >= 2)
    c->node = ci.peer[1];
}

static void on_reply(coap_context_t *ctx, const coap_reply_t *reply, void *user) {
  client_t *c = user;
  fleet_t *f = c->f;
  uint64_t now = coap_clock_now_ms();
  (void)ctx;
  c->in_flight = 0;
  sync_client(c);
  if (reply->status == 0 && reply->code >> 5 == 2) {
    c->now.answered++;
    f->answers_by_node[c->node + 1][0]++;
    if (c->mark_node < 0) c->mark_node = c->node; /* no node at the mark: its first one */
    if (c->node == c->mark_node)
      c->now.same_node++;
    else
      c->now.other_node++;
    if (now - c->sent_at > c->max_latency_ms) c->max_latency_ms = now - c->sent_at;
    if (c->first_answer_ms < 0) c->first_answer_ms = (long)(now - f->mark);
    if (c->moved_ms < 0 && c->node != c->mark_node) c->moved_ms = (long)(now - f->mark);
    return;
  }
  c->now.failed++;
  char code[16];
  const char *why =
      reply->diag && reply->diag->cause != COAP_CAUSE_NONE ? coap_cause_name(reply->diag->cause)
      : reply->status                                      ? coap_strerror(reply->status)
                      : (snprintf(code, sizeof code, "code %s", coap_code_name(reply->code)), code);
  count_cause(f, why);
  if (f->o.verbose)
    fprintf(stderr, "client_fleet: client %d: request failed: %s%s%s\n", c->idx, why,
            reply->detail ? ": " : "", reply->detail ? reply->detail : "");
}

static void send_next(client_t *c, uint64_t now) {
  fleet_t *f = c->f;
  if (c->reconnect_due && c->fd >= 0) {
    c->reconnect_due = 0;
    coap_context_end_sessions(c->ctx, NULL, NULL); /* the session cache keeps its ticket */
    rebind(c);
  }
  if (f->o.rebind_every && c->fd >= 0 && c->since_rebind >= f->o.rebind_every &&
      c->now.answered > 0)
    rebind(c);
  while (c->next_send <= now) c->next_send += f->o.interval_ms;
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, f->o.uri);
  o.timeout_ms = f->o.timeout_ms;
  c->now.sent++;
  c->since_rebind++;
  c->sent_at = now;
  c->in_flight = 1;
  int rc = coap_send_request(c->ctx, &o, on_reply, c, NULL);
  if (rc < 0) { /* refused before anything was sent: the callback is not called */
    if (f->c[0].now.sent == 1 && c == &f->c[0]) { /* the URI or the key: no use going on */
      fprintf(stderr, "client_fleet: %s: %s\n", f->o.uri, coap_strerror(rc));
      exit(1);
    }
    c->in_flight = 0;
    c->now.failed++;
    count_cause(f, coap_strerror(rc));
  }
}

/* ---- the report ---- */

static uint64_t since(uint64_t now, uint64_t base) {
  return now - base;
}

static void print_report(fleet_t *f) {
  uint64_t now = coap_clock_now_ms();
  counts_t sum = {0}, total = {0};
  uint64_t in_flight = 0, cookies = 0, clients_by_node[NODES + 1] = {0};
  for (long i = 0; i < f->o.clients; i++) {
    client_t *c = &f->c[i];
    sync_client(c);
    const counts_t *n = &c->now, *b = &c->base;
    counts_t d = {since(n->sent, b->sent),
                  since(n->answered, b->answered),
                  since(n->failed, b->failed),
                  since(n->full, b->full),
                  since(n->resumed, b->resumed),
                  since(n->rebinds, b->rebinds),
                  since(n->same_node, b->same_node),
                  since(n->other_node, b->other_node),
                  since(n->reused_ports, b->reused_ports)};
    printf(
        "client %ld port %u node %d mark_node %d sent %llu answered %llu failed %llu "
        "same_node %llu other_node %llu full %llu resumed %llu cookie %d flights %u rebinds %llu "
        "first_answer_ms %ld moved_ms %ld max_latency_ms %llu\n",
        i, local_port(c->fd), c->node, c->mark_node, (unsigned long long)d.sent,
        (unsigned long long)d.answered, (unsigned long long)d.failed,
        (unsigned long long)d.same_node, (unsigned long long)d.other_node,
        (unsigned long long)d.full, (unsigned long long)d.resumed, c->last_cookie, c->last_flights,
        (unsigned long long)d.rebinds, c->first_answer_ms, c->moved_ms,
        (unsigned long long)c->max_latency_ms);
    sum.sent += d.sent, sum.answered += d.answered, sum.failed += d.failed;
    sum.full += d.full, sum.resumed += d.resumed, sum.rebinds += d.rebinds;
    sum.same_node += d.same_node, sum.other_node += d.other_node;
    sum.reused_ports += d.reused_ports;
    total.sent += n->sent, total.answered += n->answered, total.failed += n->failed;
    total.full += n->full, total.resumed += n->resumed, total.rebinds += n->rebinds;
    in_flight += (uint64_t)c->in_flight;
    cookies += (uint64_t)(d.full + d.resumed > 0 && c->last_cookie);
    clients_by_node[c->node + 1]++;
  }
  printf(
      "summary {\"clients\":%ld,\"since_mark_ms\":%llu,\"sent\":%llu,\"answered\":%llu,"
      "\"failed\":%llu,\"in_flight\":%llu,\"same_node\":%llu,\"other_node\":%llu,"
      "\"full_handshakes\":%llu,\"resumed_handshakes\":%llu,"
      "\"clients_with_a_cookie_in_their_last_handshake\":%llu,\"rebinds\":%llu,"
      "\"reused_ports\":%llu,\"send_errors\":%llu,\"icmp_errors\":%llu,\"icmp_vetted\":%llu",
      f->o.clients, (unsigned long long)(now - f->mark), (unsigned long long)sum.sent,
      (unsigned long long)sum.answered, (unsigned long long)sum.failed,
      (unsigned long long)in_flight, (unsigned long long)sum.same_node,
      (unsigned long long)sum.other_node, (unsigned long long)sum.full,
      (unsigned long long)sum.resumed, (unsigned long long)cookies, (unsigned long long)sum.rebinds,
      (unsigned long long)sum.reused_ports, (unsigned long long)f->send_errors,
      (unsigned long long)f->icmp_errors, (unsigned long long)f->icmp_vetted);
  const char *sep = "";
  printf(",\"answers_by_node\":{");
  for (int n = 0; n <= NODES; n++) {
    uint64_t a = f->answers_by_node[n][0] - f->answers_by_node[n][1];
    if (a) printf("%s\"%d\":%llu", sep, n - 1, (unsigned long long)a), sep = ",";
  }
  sep = "";
  printf("},\"clients_by_node\":{");
  for (int n = 0; n <= NODES; n++)
    if (clients_by_node[n])
      printf("%s\"%d\":%llu", sep, n - 1, (unsigned long long)clients_by_node[n]), sep = ",";
  sep = "";
  printf("},\"failures\":{");
  for (size_t i = 0; i < f->n_causes; i++)
    if (f->causes[i].now != f->causes[i].base)
      printf("%s\"%s\":%llu", sep, f->causes[i].name,
             (unsigned long long)(f->causes[i].now - f->causes[i].base)),
          sep = ",";
  printf(
      "},\"total\":{\"ms\":%llu,\"sent\":%llu,\"answered\":%llu,\"failed\":%llu,"
      "\"full_handshakes\":%llu,\"resumed_handshakes\":%llu,\"rebinds\":%llu}}\n",
      (unsigned long long)(now - f->start), (unsigned long long)total.sent,
      (unsigned long long)total.answered, (unsigned long long)total.failed,
      (unsigned long long)total.full, (unsigned long long)total.resumed,
      (unsigned long long)total.rebinds);
  fflush(stdout);
}

static void take_mark(fleet_t *f) {
  f->mark = coap_clock_now_ms();
  for (long i = 0; i < f->o.clients; i++) {
    client_t *c = &f->c[i];
    sync_client(c);
    c->base = c->now;
    c->base.sent -= (uint64_t)c->in_flight; /* its answer comes after the mark */
    c->mark_node = c->node;
    c->first_answer_ms = c->moved_ms = -1;
    c->max_latency_ms = 0;
  }
  for (int n = 0; n <= NODES; n++) f->answers_by_node[n][1] = f->answers_by_node[n][0];
  for (size_t i = 0; i < f->n_causes; i++) f->causes[i].base = f->causes[i].now;
  f->caught_up_said = 0;
  f->marked = 1;
  printf("marked\n");
  fflush(stdout);
}

/* "ready" once every client has had an answer; "caught-up" once every
 * client has had one since the mark. */
static void say_progress(fleet_t *f) {
  uint64_t now = coap_clock_now_ms();
  if ((f->ready_said && (f->caught_up_said || !f->marked)) || now < f->progress_at) return;
  f->progress_at = now + 50; /* a look at every client 20 times a second at most */
  long ready = 0, caught_up = 0;
  for (long i = 0; i < f->o.clients; i++) {
    ready += f->c[i].now.answered > 0;
    caught_up += f->c[i].first_answer_ms >= 0;
  }
  if (!f->ready_said && ready == f->o.clients) {
    printf("ready %ld %llu\n", ready, (unsigned long long)(now - f->start));
    f->ready_said = 1;
  }
  if (f->marked && !f->caught_up_said && caught_up == f->o.clients) {
    printf("caught-up %ld %llu\n", caught_up, (unsigned long long)(now - f->mark));
    f->caught_up_said = 1;
  }
  fflush(stdout);
}

static void start_draining(fleet_t *f) {
  if (f->draining) return;
  f->draining = 1;
  f->drain_until = coap_clock_now_ms() + f->o.timeout_ms + 1000;
  for (long i = 0; i < f->o.clients; i++) refresh(&f->c[i]);
}

static void handle_command(fleet_t *f, char *line) {
  line[strcspn(line, "\r\n")] = 0;
  unsigned k;
  if (strcmp(line, "mark") == 0)
    take_mark(f);
  else if (sscanf(line, "rebind %u", &k) == 1)
    f->o.rebind_every = k;
  else if (strcmp(line, "reconnect") == 0)
    for (long i = 0; i < f->o.clients; i++) f->c[i].reconnect_due = 1;
  else if (strcmp(line, "report") == 0)
    print_report(f);
  else if (strcmp(line, "quit") == 0)
    start_draining(f);
  else if (line[0])
    fprintf(stderr,
            "client_fleet: unknown command '%s' (mark, rebind K, reconnect, report, quit)\n", line);
}

/* Standard input is read whole lines at a time (the test writes lines). */
static void read_commands(fleet_t *f) {
  static char buf[512];
  static size_t len;
  ssize_t n = read(0, buf + len, sizeof buf - 1 - len);
  if (n <= 0) {
    if (n < 0 && errno == EINTR) return;
    epoll_ctl(f->epfd, EPOLL_CTL_DEL, 0, NULL);
    f->stdin_open = 0;
    start_draining(f);
    return;
  }
  len += (size_t)n;
  buf[len] = 0;
  char *nl;
  while ((nl = strchr(buf, '\n'))) {
    *nl = 0;
    handle_command(f, buf);
    len -= (size_t)(nl + 1 - buf);
    memmove(buf, nl + 1, len + 1);
  }
  if (len == sizeof buf - 1) len = 0; /* a line too long: dropped */
}

/* ---- set-up ---- */

static void fleet_log(void *user, coap_log_level_t level, const char *line) {
  client_t *c = user;
  (void)level;
  fprintf(stderr, "client %d: %s\n", c->idx, line);
}

static int client_init(fleet_t *f, client_t *c, int idx) {
  c->f = f;
  c->idx = idx;
  c->fd = -1;
  c->node = c->mark_node = -1;
  c->first_answer_ms = c->moved_ms = -1;
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.log = fleet_log;
  cfg.log_user = c;
  cfg.log_level = f->o.verbose ? COAP_LOG_INFO : COAP_LOG_WARNING;
  c->ctx = coap_context_new(&cfg);
  c->dtls = coap_dtls_context_new();
  if (!c->ctx || !c->dtls) return -1;
  coap_transport_t t = {.send = fleet_send, .open_client_endpoint = fleet_open_endpoint};
  if (coap_context_set_transport(c->ctx, &t, c) < 0 ||
      coap_dtls_set_psk(c->dtls, (const uint8_t *)f->o.identity, (const uint8_t *)f->o.psk,
                        strlen(f->o.psk)) < 0 ||
      coap_context_set_dtls_context(c->ctx, coap_dtls_context_ref(c->dtls)) < 0)
    return -1;
  c->next_send = f->start + (uint64_t)idx * f->o.ramp_ms / (uint64_t)f->o.clients;
  c->deadline = c->next_send;
  c->heap_idx = f->heap_len;
  f->heap[f->heap_len++] = c;
  heap_fix(f, c->heap_idx);
  return 0;
}

/* Room for a socket a client (and a few more). */
static int raise_fd_limit(long clients) {
  struct rlimit rl;
  rlim_t need = (rlim_t)clients * 2 + 64;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return -1;
  if (rl.rlim_cur >= need) return 0;
  if (rl.rlim_max < need) {
    fprintf(stderr, "client_fleet: %ld clients need %lu file descriptors; the limit is %lu\n",
            clients, (unsigned long)need, (unsigned long)rl.rlim_max);
    return -1;
  }
  rl.rlim_cur = need;
  return setrlimit(RLIMIT_NOFILE, &rl);
}

static void usage(FILE *to) {
  fprintf(to,
          "usage: client_fleet [OPTIONS] --psk-identity ID --psk KEY coaps://HOST[:PORT]/PATH\n"
          "N coaps:// PSK clients in one process, each with its own UDP socket and DTLS\n"
          "session, each sending a CON GET every --interval ms (one at a time).\n"
          "  -n, --clients N        clients (default 100; 1..100000)\n"
          "  -i, --interval MS      between one client's requests (default 1000)\n"
          "      --ramp MS          spread the clients' first requests over MS (default\n"
          "                         the interval)\n"
          "      --rebind-every K   a new source port every K requests (default 0: never)\n"
          "      --fresh-ports      rebind only to ports not closed by the fleet within\n"
          "                         180 s (default: the kernel's random choice, which may\n"
          "                         reuse a port another client just closed)\n"
          "      --timeout MS       a request's deadline (default 60000)\n"
          "      --icmp-errors      hand ICMP errors to the library as coaps's own sockets\n"
          "                         do (IP_RECVERR); by default they are not read, as a\n"
          "                         device's unconnected socket does not see them\n"
          "  -v, --verbose          the library's info log on stderr, failures named\n"
          "  -h, --help\n"
          "Standard input takes commands, one a line: mark (counters restart), rebind K,\n"
          "reconnect (each client a new session, resuming, and a new source port),\n"
          "report, quit (also end of input, SIGINT, SIGTERM: the requests under way are\n"
          "waited for, then the report); an input that is no pipe or terminal (a file,\n"
          "/dev/null) takes no commands: it runs until a signal. SIGUSR1: the report.\n"
          "The report is a line a\n"
          "client ('client I port P node N mark_node M sent ...') and a 'summary {JSON}'\n"
          "line; 'ready N T' once every client was answered, 'caught-up N T' once every\n"
          "client was answered since the mark. The node is byte 1 of the server's\n"
          "Connection ID (coaps serve --node-id).\n");
}

static int parse_number(const char *what, const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) {
    fprintf(stderr, "client_fleet: %s must be a number from %ld to %ld, not '%s'\n", what, lo, hi,
            s);
    return -1;
  }
  *out = v;
  return 0;
}

static int parse_opts(int argc, char **argv, opts_t *o) {
  static const struct option longopts[] = {
      {"clients", required_argument, 0, 'n'}, {"interval", required_argument, 0, 'i'},
      {"ramp", required_argument, 0, 'r'},    {"rebind-every", required_argument, 0, 'k'},
      {"timeout", required_argument, 0, 't'}, {"psk-identity", required_argument, 0, 'I'},
      {"psk", required_argument, 0, 'P'},     {"verbose", no_argument, 0, 'v'},
      {"help", no_argument, 0, 'h'},          {"icmp-errors", no_argument, 0, 'E'},
      {"fresh-ports", no_argument, 0, 'F'},   {0, 0, 0, 0}};
  long v, ramp = -1;
  int ch;
  *o = (opts_t){.clients = 100, .interval_ms = 1000, .timeout_ms = 60000};
  while ((ch = getopt_long(argc, argv, "n:i:vh", longopts, NULL)) != -1) {
    switch (ch) {
      case 'n':
        if (parse_number("--clients", optarg, 1, 100000, &o->clients) < 0) return -1;
        break;
      case 'i':
        if (parse_number("--interval", optarg, 1, 3600000, &v) < 0) return -1;
        o->interval_ms = (unsigned)v;
        break;
      case 'r':
        if (parse_number("--ramp", optarg, 0, 3600000, &ramp) < 0) return -1;
        break;
      case 'k':
        if (parse_number("--rebind-every", optarg, 0, 1000000, &v) < 0) return -1;
        o->rebind_every = (unsigned)v;
        break;
      case 't':
        if (parse_number("--timeout", optarg, 100, 3600000, &v) < 0) return -1;
        o->timeout_ms = (unsigned)v;
        break;
      case 'I': o->identity = optarg; break;
      case 'P': o->psk = optarg; break;
      case 'v': o->verbose = 1; break;
      case 'E': o->icmp_errors = 1; break;
      case 'F': g_fresh_ports = 1; break;
      case 'h': usage(stdout); exit(0);
      default: usage(stderr); return -1;
    }
  }
  o->ramp_ms = ramp < 0 ? o->interval_ms : (unsigned)ramp;
  if (optind != argc - 1) {
    fprintf(stderr, "client_fleet: %s\n",
            optind == argc ? "give the URI to ask (coaps://HOST/PATH)" : "one URI only");
    usage(stderr);
    return -1;
  }
  o->uri = argv[optind];
  if (strncmp(o->uri, "coaps://", 8) != 0) {
    fprintf(stderr, "client_fleet: '%s': the fleet speaks coaps:// only\n", o->uri);
    return -1;
  }
  if (!o->identity || !o->psk || !o->psk[0]) {
    fprintf(stderr, "client_fleet: --psk-identity and --psk are required\n");
    return -1;
  }
  return 0;
}

/* ---- the loop ---- */

static void run_due(fleet_t *f, uint64_t now) {
  while (f->heap_len && f->heap[0]->deadline <= now) {
    client_t *c = f->heap[0];
    if (coap_context_next_timeout(c->ctx) <= now) coap_context_handle_timeouts(c->ctx, now);
    if (!c->in_flight && !f->draining && c->next_send <= now) send_next(c, now);
    refresh(c);
  }
}

/* --icmp-errors: what the I/O shell does with them (src/io/io.c): each
 * names the destination of a datagram that was not delivered and quotes
 * its start. */
static void drain_errors(client_t *c, uint64_t now) {
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
    ssize_t quoted = recvmsg(c->fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT);
    if (quoted < 0) return;
    dest.size = mh.msg_namelen;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
      const struct sock_extended_err *ee = (const void *)CMSG_DATA(cm);
      if (((cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_RECVERR) ||
           (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_RECVERR)) &&
          (ee->ee_origin == SO_EE_ORIGIN_ICMP || ee->ee_origin == SO_EE_ORIGIN_ICMP6)) {
        c->f->icmp_errors++;
        if (coap_context_input_icmp(c->ctx, c->ep, &dest, scratch, (size_t)quoted, now) == 1)
          c->f->icmp_vetted++;
      }
    }
  }
}

static void receive(client_t *c, uint64_t now) {
  static uint8_t buf[65536];
  for (int i = 0; i < 64; i++) {
    coap_address_t from;
    memset(&from, 0, sizeof from);
    from.size = sizeof from.addr.st;
    ssize_t n = recvfrom(c->fd, buf, sizeof buf, 0, &from.addr.sa, &from.size);
    if (n < 0) break;
    coap_context_input(c->ctx, c->ep, &from, buf, (size_t)n, now);
  }
  refresh(c);
}

static int all_done(const fleet_t *f) {
  for (long i = 0; i < f->o.clients; i++)
    if (f->c[i].in_flight) return 0;
  return 1;
}

int main(int argc, char **argv) {
  static fleet_t fleet;
  fleet_t *f = &fleet;
  if (parse_opts(argc, argv, &f->o) < 0) return 64;
  if (raise_fd_limit(f->o.clients) < 0) return 1;
  read_port_range();
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  f->epfd = epoll_create1(EPOLL_CLOEXEC);
  f->c = calloc((size_t)f->o.clients, sizeof *f->c);
  f->heap = calloc((size_t)f->o.clients, sizeof *f->heap);
  if (f->epfd < 0 || !f->c || !f->heap) {
    fprintf(stderr, "client_fleet: out of memory or no epoll\n");
    return 1;
  }
  f->start = f->mark = coap_clock_now_ms();
  for (long i = 0; i < f->o.clients; i++) {
    if (client_init(f, &f->c[i], (int)i) < 0) {
      fprintf(stderr, "client_fleet: client %ld: set-up failed: %s\n", i,
              f->c[i].dtls ? coap_dtls_context_last_error(f->c[i].dtls) : "out of memory");
      return 1;
    }
  }
  struct epoll_event in = {.events = EPOLLIN, .data.ptr = STDIN_TAG};
  f->stdin_open = epoll_ctl(f->epfd, EPOLL_CTL_ADD, 0, &in) == 0;
  if (!f->stdin_open) /* not pollable (a file, /dev/null): no commands, run until a signal */
    fprintf(stderr, "client_fleet: standard input takes no commands (not a pipe or terminal)\n");
  struct epoll_event ev[EVENTS_MAX];
  for (;;) {
    uint64_t now = coap_clock_now_ms();
    if (g_quit) g_quit = 0, start_draining(f);
    if (g_report) g_report = 0, print_report(f);
    if (f->draining && (all_done(f) || now >= f->drain_until)) break;
    int wait = -1;
    if (f->heap_len && f->heap[0]->deadline != UINT64_MAX)
      wait = f->heap[0]->deadline <= now ? 0 : (int)(f->heap[0]->deadline - now);
    if (wait < 0 || wait > 1000) wait = 1000;
    int n = epoll_wait(f->epfd, ev, EVENTS_MAX, wait);
    now = coap_clock_now_ms();
    for (int i = 0; i < n; i++) {
      if (ev[i].data.ptr == STDIN_TAG)
        read_commands(f);
      else {
        client_t *c = ev[i].data.ptr;
        if (ev[i].events & EPOLLERR) drain_errors(c, now);
        receive(c, now);
      }
    }
    run_due(f, coap_clock_now_ms());
    say_progress(f);
  }
  print_report(f);
  for (long i = 0; i < f->o.clients; i++) {
    coap_context_free(f->c[i].ctx);
    coap_dtls_context_free(f->c[i].dtls);
    if (f->c[i].fd >= 0) close(f->c[i].fd);
  }
  free(f->c);
  free(f->heap);
  close(f->epfd);
  return 0;
}
