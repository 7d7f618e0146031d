/* coaps-bench — a CoAP / CoAP-over-DTLS load generator.
 *
 * One thread drives many client sessions. Each session is its own
 * coap_context_t with its own UDP socket (a distinct source port, so a
 * distinct session on the server), driven through the embedding API: our
 * transport queues datagrams in the library's send batch (sendmmsg, UDP
 * GSO), received datagrams are read with recvmmsg and fed to
 * coap_context_input(), and the
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
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"

volatile sig_atomic_t g_stop;

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

enum {
  O_SESSIONS = 256,
  O_WINDOW,
  O_DURATION,
  O_REQUESTS,
  O_HANDSHAKES,
  O_PARALLEL,
  O_HOLD,
  O_PSK_ID,
  O_PSK,
  O_PSK_HEX,
  O_CACERT,
  O_CERT,
  O_KEY,
  O_RPK,
  O_TRUST_RPK,
  O_JSON,
  O_NO_GRO,
  O_SOURCE_ADDRESSES,
  O_LEAVE_OPEN
};

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
    case O_SESSIONS:
      if (parse_number("--sessions", arg, 1, 1e6, &v) < 0) return -1;
      o->sessions = (long)v;
      break;
    case O_WINDOW:
      if (parse_number("--window", arg, 1, MAX_WINDOW, &v) < 0) return -1;
      o->window = (long)v;
      break;
    case O_DURATION:
      if (parse_number("--duration", arg, 0.01, 1e6, &o->duration_s) < 0) return -1;
      o->duration_set = 1;
      break;
    case O_REQUESTS:
      if (parse_number("--requests", arg, 1, 1e15, &v) < 0) return -1;
      o->requests = (long long)v;
      break;
    case O_HANDSHAKES:
      if (parse_number("--handshakes", arg, 1, 1e12, &v) < 0) return -1;
      o->handshakes = (long long)v;
      break;
    case O_PARALLEL:
      if (parse_number("--parallel", arg, 1, 1e6, &v) < 0) return -1;
      o->parallel = (long)v;
      break;
    case O_HOLD:
      if (parse_number("--hold", arg, 0, 1e9, &o->hold_s) < 0) return -1;
      break;
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
    case O_SOURCE_ADDRESSES:
      if (parse_number("--source-addresses", arg, 1, 1024, &v) < 0) return -1;
      o->shared_sockets = (long)v;
      break;
    case 'v': o->verbose++; break;
    default: return -1;
  }
  return 0;
}

/* The options (getopt_long's table, and the names errors use). */
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

/* How the usage text writes option |id|'s value ("N", "FILE"). */
static const char *value_name(int id) {
  switch (id) {
    case O_SESSIONS: return "N";
    case O_WINDOW: return "W";
    case O_DURATION:
    case O_HOLD: return "S";
    case O_REQUESTS:
    case O_HANDSHAKES: return "C";
    case O_PARALLEL: return "P";
    case O_PSK_ID: return "ID";
    case O_PSK: return "KEY";
    case O_PSK_HEX: return "HEX";
    case O_RPK: return "KEYFILE";
    case O_TRUST_RPK: return "PUBFILE";
    case O_SOURCE_ADDRESSES: return "K";
    default: return "FILE";
  }
}

static int option_index(int id) {
  for (int i = 0; longopts[i].name; i++)
    if (longopts[i].val == id) return i;
  return -1;
}

/* One line naming the mistake (main adds the usage line); -1. */
__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("coaps-bench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return -1;
}

static int missing_value(int id, const char *got) {
  const char *name = longopts[option_index(id)].name;
  if (got)
    return usage_error("--%s needs a value: --%s %s (got %s%s%s)", name, name, value_name(id),
                       *got ? "the option '" : "''", got, *got ? "'" : "");
  return usage_error("--%s needs a value: --%s %s", name, name, value_name(id));
}

/* |text| is one of our options as typed ("--psk", "--psk=x", "-v"): when
 * it comes as a value, the value before it was forgotten. */
static int is_option(const char *text) {
  if (strcmp(text, "-v") == 0 || strcmp(text, "-h") == 0) return 1;
  if (strncmp(text, "--", 2) != 0) return 0;
  size_t len = strcspn(text + 2, "=");
  for (int i = 0; longopts[i].name; i++)
    if (strlen(longopts[i].name) == len && strncmp(longopts[i].name, text + 2, len) == 0) return 1;
  return 0;
}

/* getopt_long returned '?' on |typed|: an unknown or ambiguous option, or
 * a value given to a flag. */
static int bad_option(const char *typed) {
  if (strncmp(typed, "--", 2) != 0 || !typed[2])
    return optopt ? usage_error("unknown option '-%c'", optopt)
                  : usage_error("unknown option '%s'", typed);
  const char *name = typed + 2;
  size_t len = strcspn(name, "=");
  char matches[256] = "";
  size_t used = 0;
  int n = 0;
  for (int i = 0; len && longopts[i].name; i++) {
    if (strncmp(longopts[i].name, name, len) != 0) continue;
    if (strlen(longopts[i].name) == len && name[len] == '=')
      return usage_error("--%s takes no value, got '%s'", longopts[i].name, typed);
    int k =
        snprintf(matches + used, sizeof matches - used, "%s--%s", n ? ", " : "", longopts[i].name);
    if (k > 0 && (size_t)k < sizeof matches - used) used += (size_t)k;
    n++;
  }
  if (n > 1) return usage_error("option '%.*s' is ambiguous: %s", (int)len + 2, typed, matches);
  return usage_error("unknown option '%s'", typed);
}

/* 0, 1 for --help, -1 for bad usage (reported). */
static int parse_args(bench_opts_t *o, int argc, char **argv) {
  *o = (bench_opts_t){.sessions = 50, .window = 4, .parallel = 16, .duration_s = 10, .hold_s = -1};
  int c, index;
  char seen[sizeof longopts / sizeof longopts[0]] = {0};
  opterr = 0; /* the errors below name the option and what it wants */
  while (index = -1, (c = getopt_long(argc, argv, ":vh", longopts, &index)) != -1) {
    if (c == 'h') return 1;
    if (c == '?') return bad_option(argv[optind - 1]);
    if (c == ':') return missing_value(optopt, NULL);
    if (index >= 0 && longopts[index].has_arg == required_argument) {
      if (!*optarg || is_option(optarg)) return missing_value(c, optarg);
      if (seen[index]++)
        return usage_error("--%s given twice (the second time as '%s'): give it once",
                           longopts[index].name, optarg);
    }
    if (take_option(o, c, optarg) < 0) return -1;
  }
  if (optind == argc)
    return usage_error("no URI: give the server's URI, coap://HOST[:PORT]/PATH or coaps://...");
  if (optind + 1 != argc)
    return usage_error("one URI only: '%s' comes after '%s'", argv[optind + 1], argv[optind]);
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
    fprintf(stderr,
            "coaps-bench: coaps:// needs credentials: --psk-identity ID --psk KEY, "
            "--cacert FILE or --trust-rpk FILE\n");
    return -1;
  }
  return 0;
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
    fprintf(stderr,
            "coaps-bench: warning: only %lu file descriptors for %ld sessions "
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
  coap_tx_batch_init(&b->tx);
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
  if (rc > 0) {
    usage(stdout);
    return 0;
  }
  if (rc < 0) {
    fprintf(stderr, "usage: coaps-bench URI [options] (coaps-bench --help lists them)\n");
    return 64;
  }
  bench_t *b = bench_new(&o);
  if (!b) return 1;
  if (resolve_uri(b) < 0 || load_credentials(b) < 0 || open_shared_sockets(b) < 0) {
    bench_free(b);
    return 64;
  }
  install_signals();
  raise_nofile(o.handshakes > 0 ? o.parallel : o.shared_sockets ? 0 : o.sessions);
  if (o.handshakes > 0)
    run_handshakes(b);
  else if (o.hold_s >= 0)
    run_hold(b);
  else
    run_steady(b);
  if (o.hold_s >= 0 && !g_stop) {
    report(b, stdout);
    hold_idle(b);
  }
  free_all(b);
  if (o.hold_s < 0) report(b, stdout);
  int failed =
      errors_total(&b->c) > 0 || (o.hold_s < 0 && b->c.completed == 0 && b->c.handshakes == 0);
  bench_free(b);
  return failed ? 1 : 0;
}
