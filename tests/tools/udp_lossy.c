/* A lossy, delaying UDP path on 127.0.0.1 for the end-to-end tests: clients
 * talk to its front port, and each client gets a back socket of its own
 * toward the target, so the target sees as many distinct peers as there are
 * clients. Each direction drops datagrams with its own probability and
 * delays the rest (with optional jitter, which reorders datagrams sent close
 * together). Prints its front port on stdout; on SIGTERM, SIGINT or at the
 * end of its lifetime prints what it forwarded and dropped on stderr.
 *
 * --max-burst N caps the drops in a row per client and direction: with
 * independent loss, a run of losses as long as a peer's whole retransmission
 * schedule happens now and then, and a test that must tell a library's
 * stall from bad luck needs a path where that cannot happen. --max-drops N
 * caps the drops per client over its whole life, for peers whose handshake
 * gives up after a few retransmissions in all.
 *
 * usage: udp_lossy [options] TARGET_PORT
 *   --loss P        drop probability both ways (0..1)
 *   --loss-up P     toward the target;  --loss-down P  toward the clients
 *   --delay MS      one-way delay (default 0)
 *   --jitter MS     delay varies uniformly by +-MS
 *   --max-burst N   at most N drops in a row per client and direction (0: no cap)
 *   --max-drops N   at most N drops per client, both directions (default: no cap)
 *   --seed N        random seed (default 1)
 *   --lifetime S    exit after S seconds (required)
 *   --port N        front port (default 0: any free one)
 *   --timing FILE   a line per datagram sent toward a client: the client's
 *                   number (from 0, in order of arrival), the ms since its
 *                   first datagram reached us, and the length; for tests
 *                   that count round trips without the client's start-up
 *   --trace FILE    a line per datagram, for the evidence when a run fails:
 *                   ms since start, the client's number, its port and its
 *                   back socket's port (the address the target sees), the
 *                   direction (> toward the target), what became of it
 *                   (fwd at +delay ms, or drop), its length and its DTLS
 *                   records (content type, epoch, sequence number, and a
 *                   handshake record's message type and message_seq) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* ppoll */
#endif
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { UP = 0, DOWN = 1, MAX_CLIENTS = 4000, BUCKETS = 1024 };

typedef struct client {
  struct sockaddr_in addr;
  int fd;
  unsigned burst[2];
  unsigned long drops;
  uint64_t first_ms; /* when its first datagram arrived */
  size_t number;
  uint16_t back_port; /* its back socket's, as the target sees it */
  struct client *next;
} client_t;

typedef struct {
  uint64_t due, seq;
  int dir;
  client_t *c;
  size_t len;
  unsigned char data[];
} packet_t;

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static uint64_t rng_state;
static uint64_t rng_next(void) { /* splitmix64: a seed gives one sequence */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static double rng_unit(void) {
  return (double)(rng_next() >> 11) * 0x1.0p-53;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The delay queue: a binary min-heap on (due, seq); seq keeps datagrams
 * with the same due time in arrival order. */
static packet_t **heap;
static size_t heap_len, heap_cap;
static int earlier(const packet_t *a, const packet_t *b) {
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}
static int heap_push(packet_t *p) {
  if (heap_len == heap_cap) {
    size_t cap = heap_cap ? heap_cap * 2 : 256;
    packet_t **h = realloc(heap, cap * sizeof *h);
    if (!h) return -1;
    heap = h;
    heap_cap = cap;
  }
  size_t i = heap_len++;
  while (i && earlier(p, heap[(i - 1) / 2])) {
    heap[i] = heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  heap[i] = p;
  return 0;
}
static packet_t *heap_pop(void) {
  packet_t *top = heap[0], *last = heap[--heap_len];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, m = i;
    if (l < heap_len && earlier(heap[l], last)) m = l;
    if (l + 1 < heap_len && earlier(heap[l + 1], m == i ? last : heap[m])) m = l + 1;
    if (m == i) break;
    heap[i] = heap[m];
    i = m;
  }
  if (heap_len) heap[i] = last;
  return top;
}

/* --trace: the DTLS records of a datagram, as "type/epoch/seq" each
 * (22:N/M for a handshake message N with message_seq M, epoch 0 only:
 * later ones are encrypted), "-" for what does not parse as DTLS. */
static void trace_records(FILE *f, const uint8_t *d, size_t n) {
  size_t at = 0;
  while (at + 13 <= n) {
    unsigned type = d[at], epoch = (unsigned)d[at + 3] << 8 | d[at + 4];
    unsigned long long seq = 0;
    for (int i = 5; i < 11; i++) seq = seq << 8 | d[at + i];
    size_t len = (size_t)d[at + 11] << 8 | d[at + 12];
    if (type < 20 || type > 25 || d[at + 1] != 0xfe) break;
    fprintf(f, " %u/%u/%llu", type, epoch, seq);
    if (type == 25) return; /* tls12_cid: a CID before the length, of a size not said here */
    if (type == 22 && epoch == 0 && len >= 12 && at + 13 + 12 <= n)
      fprintf(f, ":%u/%u", d[at + 13], (unsigned)d[at + 17] << 8 | d[at + 18]);
    at += 13 + len;
  }
  if (at < n) fprintf(f, " -");
}
static void trace(FILE *f, uint64_t t0, uint64_t now, const client_t *c, int up, const char *fate,
                  long delay, const uint8_t *d, size_t n) {
  if (!f) return;
  fprintf(f, "%llu c%zu:%u/%u %s %s", (unsigned long long)(now - t0), c->number,
          ntohs(c->addr.sin_port), c->back_port, up ? ">" : "<", fate);
  if (delay >= 0) fprintf(f, "+%ld", delay);
  fprintf(f, " %zu", n);
  trace_records(f, d, n);
  fputc('\n', f);
}

static client_t *buckets[BUCKETS];
static client_t *clients[MAX_CLIENTS];
static size_t n_clients;

static unsigned hash_addr(const struct sockaddr_in *a) {
  uint32_t h = a->sin_addr.s_addr * 2654435761u ^ (uint32_t)a->sin_port * 40503u;
  return (h ^ (h >> 16)) % BUCKETS;
}

/* A DTLS client's very first datagram: an epoch-0 ClientHello with record
 * sequence 0 and message_seq 0. */
static int first_client_hello(const uint8_t *d, size_t n) {
  if (n < 13 + 12 || d[0] != 22 || d[13] != 1) return 0;
  for (int i = 3; i <= 10; i++)
    if (d[i]) return 0;
  return d[17] == 0 && d[18] == 0;
}

static void forget_client(client_t *c) {
  for (client_t **link = &buckets[hash_addr(&c->addr)]; *link; link = &(*link)->next)
    if (*link == c) {
      *link = c->next;
      break;
    }
  c->next = NULL; /* its back socket stays open, so late answers drain */
}

/* The client's back socket, made on its first datagram; NULL when no more
 * sockets can be had (the datagram is then counted as refused). A new
 * process that happens to get an earlier one's port (likely over hundreds
 * of runs) starts with a fresh ClientHello: it gets a back socket of its
 * own, as it would get a new mapping from a NAT, instead of inheriting the
 * earlier client's address at the target. */
static client_t *client_for(const struct sockaddr_in *from, const uint8_t *d, size_t n) {
  unsigned b = hash_addr(from);
  for (client_t *c = buckets[b]; c; c = c->next)
    if (c->addr.sin_addr.s_addr == from->sin_addr.s_addr && c->addr.sin_port == from->sin_port) {
      if (!first_client_hello(d, n)) return c;
      forget_client(c);
      break;
    }
  if (n_clients == MAX_CLIENTS) return NULL;
  struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return NULL;
  if (bind(fd, (struct sockaddr *)&any, sizeof any) < 0) {
    close(fd);
    return NULL;
  }
  client_t *c = calloc(1, sizeof *c);
  if (!c) {
    close(fd);
    return NULL;
  }
  c->addr = *from;
  c->fd = fd;
  struct sockaddr_in back;
  socklen_t back_len = sizeof back;
  if (getsockname(fd, (struct sockaddr *)&back, &back_len) == 0)
    c->back_port = ntohs(back.sin_port);
  c->first_ms = now_ms();
  c->number = n_clients;
  c->next = buckets[b];
  buckets[b] = c;
  clients[n_clients++] = c;
  return c;
}

static double parse_prob(const char *s) {
  char *end;
  double p = strtod(s, &end);
  if (*end || p < 0 || p > 1) {
    fprintf(stderr, "udp_lossy: a probability is between 0 and 1, not '%s'\n", s);
    exit(64);
  }
  return p;
}
static long parse_num(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*end || v < 0) {
    fprintf(stderr, "udp_lossy: not a count: '%s'\n", s);
    exit(64);
  }
  return v;
}

int main(int argc, char **argv) {
  double loss[2] = {0, 0};
  long delay = 0, jitter = 0, max_burst = 0, max_drops = -1, lifetime = -1, front_port = 0;
  FILE *timing = NULL, *tracef = NULL;
  rng_state = 1;
  static const struct option opts[] = {{"loss", required_argument, 0, 'l'},
                                       {"loss-up", required_argument, 0, 'u'},
                                       {"loss-down", required_argument, 0, 'd'},
                                       {"delay", required_argument, 0, 'D'},
                                       {"jitter", required_argument, 0, 'j'},
                                       {"max-burst", required_argument, 0, 'b'},
                                       {"seed", required_argument, 0, 's'},
                                       {"lifetime", required_argument, 0, 't'},
                                       {"port", required_argument, 0, 'p'},
                                       {"max-drops", required_argument, 0, 'm'},
                                       {"timing", required_argument, 0, 'T'},
                                       {"trace", required_argument, 0, 'R'},
                                       {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
      case 'l': loss[UP] = loss[DOWN] = parse_prob(optarg); break;
      case 'u': loss[UP] = parse_prob(optarg); break;
      case 'd': loss[DOWN] = parse_prob(optarg); break;
      case 'D': delay = parse_num(optarg); break;
      case 'j': jitter = parse_num(optarg); break;
      case 'b': max_burst = parse_num(optarg); break;
      case 'm': max_drops = parse_num(optarg); break;
      case 's': rng_state = (uint64_t)strtoull(optarg, NULL, 0); break;
      case 't': lifetime = parse_num(optarg); break;
      case 'p': front_port = parse_num(optarg); break;
      case 'T':
        if (!(timing = fopen(optarg, "w"))) {
          perror("udp_lossy: --timing");
          return 64;
        }
        setvbuf(timing, NULL, _IOLBF, 0);
        break;
      case 'R':
        if (!(tracef = fopen(optarg, "w"))) {
          perror("udp_lossy: --trace");
          return 64;
        }
        break;
      default: return 64;
    }
  }
  if (optind != argc - 1 || lifetime < 0 || jitter > delay || front_port > 65535) {
    fprintf(stderr,
            "usage: udp_lossy [--loss P] [--loss-up P] [--loss-down P] [--delay MS]\n"
            "                 [--jitter MS (<= delay)] [--max-burst N] [--max-drops N]\n"
            "                 [--seed N] [--port N] [--timing FILE] [--trace FILE]\n"
            "                 --lifetime S TARGET_PORT\n");
    return 64;
  }
  struct sockaddr_in target = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)parse_num(argv[optind])),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct sockaddr_in front = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)front_port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof front;
  int fs = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (fs < 0 || bind(fs, (struct sockaddr *)&front, sizeof front) < 0 ||
      getsockname(fs, (struct sockaddr *)&front, &len) < 0) {
    perror("udp_lossy");
    return 1;
  }
  /* The signals stay blocked except inside ppoll(), so one that arrives
   * between the loop's check and the wait still ends the wait. */
  struct sigaction sa = {.sa_handler = on_signal};
  sigset_t block, waitmask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &waitmask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  printf("%u\n", ntohs(front.sin_port));
  fflush(stdout);

  unsigned long fwd[2] = {0, 0}, drop[2] = {0, 0}, refused = 0, send_err[2] = {0, 0};
  uint64_t seq = 0, t0 = now_ms(), end = t0 + (uint64_t)lifetime * 1000u;
  static unsigned char buf[65536];
  struct pollfd *pfd = calloc(MAX_CLIENTS + 1, sizeof *pfd);
  if (!pfd) return 1;
  while (!stop) {
    uint64_t now = now_ms();
    while (heap_len && heap[0]->due <= now) {
      packet_t *p = heap_pop();
      ssize_t n =
          p->dir == UP
              ? sendto(p->c->fd, p->data, p->len, 0, (struct sockaddr *)&target, sizeof target)
              : sendto(fs, p->data, p->len, 0, (struct sockaddr *)&p->c->addr, sizeof p->c->addr);
      if (n < 0)
        send_err[p->dir]++;
      else
        fwd[p->dir]++;
      if (timing && n >= 0 && p->dir == DOWN)
        fprintf(timing, "%zu %llu %zu\n", p->c->number, (unsigned long long)(now - p->c->first_ms),
                p->len);
      free(p);
    }
    if (now >= end) break;
    uint64_t wake = end;
    if (heap_len && heap[0]->due < wake) wake = heap[0]->due;

    pfd[0] = (struct pollfd){fs, POLLIN, 0};
    for (size_t i = 0; i < n_clients; i++) pfd[i + 1] = (struct pollfd){clients[i]->fd, POLLIN, 0};
    size_t polled = n_clients;
    struct timespec ts = {.tv_sec = (time_t)((wake - now) / 1000),
                          .tv_nsec = (long)((wake - now) % 1000) * 1000000};
    if (ppoll(pfd, polled + 1, &ts, &waitmask) < 0 && errno != EINTR) {
      perror("udp_lossy: poll");
      return 1;
    }
    now = now_ms();
    for (size_t i = 0; i <= polled; i++) {
      if (!(pfd[i].revents & POLLIN)) continue;
      /* Drain the socket: a burst must not wait for the next poll round. */
      for (;;) {
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(pfd[i].fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (n < 0) break;
        int dir = i == 0 ? UP : DOWN;
        client_t *c = i == 0 ? client_for(&from, buf, (size_t)n) : clients[i - 1];
        if (!c) {
          refused++;
          continue;
        }
        int capped = (max_burst && c->burst[dir] >= (unsigned long)max_burst) ||
                     (max_drops >= 0 && c->drops >= (unsigned long)max_drops);
        if (!capped && rng_unit() < loss[dir]) {
          c->burst[dir]++;
          c->drops++;
          drop[dir]++;
          trace(tracef, t0, now, c, dir == UP, "drop", -1, buf, (size_t)n);
          continue;
        }
        c->burst[dir] = 0;
        packet_t *p = malloc(sizeof *p + (size_t)n);
        if (!p) {
          drop[dir]++;
          continue;
        }
        long d = delay;
        if (jitter) d += (long)(rng_unit() * (double)(2 * jitter + 1)) - jitter;
        trace(tracef, t0, now, c, dir == UP, "fwd", d, buf, (size_t)n);
        *p = (packet_t){
            .due = now + (uint64_t)d, .seq = seq++, .dir = dir, .c = c, .len = (size_t)n};
        memcpy(p->data, buf, (size_t)n);
        if (heap_push(p) < 0) {
          free(p);
          drop[dir]++;
        }
      }
    }
  }
  fprintf(stderr,
          "udp_lossy: up forwarded=%lu dropped=%lu down forwarded=%lu dropped=%lu "
          "clients=%zu unsent=%zu refused=%lu send_errors=%lu\n",
          fwd[UP], drop[UP], fwd[DOWN], drop[DOWN], n_clients, heap_len, refused,
          send_err[UP] + send_err[DOWN]);
  if (tracef) fclose(tracef);
  while (heap_len) free(heap_pop());
  free(heap);
  for (size_t i = 0; i < n_clients; i++) {
    close(clients[i]->fd);
    free(clients[i]);
  }
  free(pfd);
  close(fs);
  return 0;
}
