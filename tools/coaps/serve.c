/* coaps serve: a CoAP server with the demo resources, on one thread or on
 * several workers (one context and one socket per port each, the sockets
 * sharing the port through SO_REUSEPORT). */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "log_json.h"
#include "metrics.h"
#include "options.h"
#include "security_flags.h"
#include "serve_reload.h"
#include "serve_state.h"

#define MAX_WORKERS 64

typedef struct serve_args {
  const char *address;
  long port, dtls_port;
  long workers;
  long max_peers;
  long evict_after_ms; /* -1: the library's default */
  size_t max_body;     /* 0: the library's default */
  int verbose;
  security_flags_t sec;
  const char *metrics; /* --metrics as given, or NULL */
  coap_address_t metrics_addr;
  int log_json;        /* --log-format json */
  serve_state_t state; /* --state-file, --state-key-file, --state-max-age */
} serve_args_t;

static void serve_usage(FILE *out) {
  fprintf(out,
          "usage: coaps serve [options]\n"
          "\n"
          "Serve the demo resources /temp, /time, /store, /echo and\n"
          "/.well-known/core until SIGINT or SIGTERM (then every DTLS session gets\n"
          "a close_notify, and the server exits within 5 s). /temp (a simulated sensor)\n"
          "and /time change every second and are observable (RFC 7641): their\n"
          "observers get a notification every second.\n"
          "\n"
          "  -p, --port N       coap:// port (default 5683; 0 picks a free one)\n"
          "      --dtls-port N  coaps:// port (default 5684; 0 picks a free one),\n"
          "                     served when credentials are given\n"
          "  -a, --address ADDR address to bind (default :: — IPv6 and IPv4)\n"
          "  -w, --workers N    serve from N threads (default: one per core, at\n"
          "                     most 64), each with its own sockets on the same\n"
          "                     ports; the kernel spreads clients over them by\n"
          "                     address, so a client always meets the same worker\n"
          "                     (a client whose address changed finds its worker\n"
          "                     by its Connection ID).\n"
          "                     The workers share the resources and the DTLS cookie\n"
          "                     and ticket keys\n"
          "      --max-peers N  clients each worker keeps state for at once\n"
          "                     (default 100000, about 2 KB each for a DTLS\n"
          "                     session); beyond that a new client replaces the\n"
          "                     one silent longest, if silent long enough (see\n"
          "                     --evict-after), or is refused and counted\n"
          "      --evict-after S  with --max-peers reached, a client silent for\n"
          "                     S seconds (default 30) may be forgotten to make\n"
          "                     room (its DTLS session gets a close_notify);\n"
          "                     0: never, new clients wait until one expires\n"
          "                     (5 minutes idle)\n"
          "      --max-body N   largest body /store takes and any resource answers\n"
          "                     with, in bytes (K and M suffixes for KiB, MiB;\n"
          "                     default 1M). Bodies larger than a block (1024\n"
          "                     bytes, less when the client or the DTLS MTU asks)\n"
          "                     go block-wise (RFC 7959): a request body in Block1\n"
          "                     blocks is gathered (2.31 Continue) and handled once\n"
          "                     it is whole, 4.08 for a missing block, 4.13 with\n"
          "                     Size1 over N; an answer goes in Block2 blocks,\n"
          "                     any of them on request, with an ETag and Size2\n"
          "  -v, --verbose      log handshakes and failures, the number of\n"
          "                     observers of /temp and /time when it changes, and\n"
          "                     at exit the notifications sent (-vv: debug)\n"
          "      --log-format FORMAT  text (default) or json: every line on standard\n"
          "                     error (the library's and the server's own) as one\n"
          "                     JSON object (time, level, message, and peer,\n"
          "                     identity, cause, fix, file or counts where there\n"
          "                     are some), for journald and log pipelines\n"
          "      --metrics ADDR:PORT  serve HTTP there: /metrics (Prometheus text\n"
          "                     format, summed over the workers), / (a status page:\n"
          "                     sessions, failure causes, the last failed handshakes\n"
          "                     with peer, identity, cause and fix) and /status.json.\n"
          "                     A bare PORT is 127.0.0.1:PORT (0 picks a free one);\n"
          "                     give an address to listen elsewhere. Needs\n"
          "                     libmicrohttpd at build time; a port in use exits 7\n"
          "      --state-file FILE  at SIGINT or SIGTERM, write the established DTLS\n"
          "                     sessions to FILE (0600, sealed with the state key;\n"
          "                     those not written get a close_notify), and at start\n"
          "                     read FILE, delete it and take its sessions over:\n"
          "                     clients carry on without a handshake across a\n"
          "                     restart or an upgrade. A file that is forged, sealed\n"
          "                     with another key or by another --node-id, older than\n"
          "                     --state-max-age, or readable by others is refused\n"
          "                     with the reason (the server starts without it); a\n"
          "                     copy read again is refused as replayed (FILE.seen).\n"
          "                     One file for all workers: a session goes back to\n"
          "                     the worker its client reaches (by Connection ID,\n"
          "                     else the same worker if -w is unchanged; with -w 1\n"
          "                     all), with its Observe relations (notifications go\n"
          "                     on, no new registration; a relation to a resource\n"
          "                     gone ends with 4.04); the rest, handshakes under\n"
          "                     way and block transfers are not carried (counted\n"
          "                     in the log; those clients start again)\n"
          "      --state-key-file FILE  the key that seals --state-file: 32 (or 16)\n"
          "                     random bytes as hex, readable by its owner only\n"
          "                     (coaps keygen --state-key FILE makes one)\n"
          "      --state-max-age S  refuse a --state-file written more than S\n"
          "                     seconds ago (default 60)\n"
          "  -h, --help         this help\n"
          "\n");
  security_flags_usage(out, 1);
  fprintf(out,
          "\n"
          "For each endpoint a line 'coaps: listening on coap://ADDR:PORT' (or\n"
          "coaps://) is printed on standard output with the port actually bound.\n"
          "Each failed handshake is logged on standard error (at most ten lines\n"
          "per ten seconds) with its cause; on SIGINT or SIGTERM the server prints\n"
          "how many connections failed, by cause, and what the peer limit did.\n"
          "A --cert outside its validity period (expired, or not valid yet) is\n"
          "named at start on standard error, with its dates and the clock's.\n"
          "\n"
          "SIGHUP reloads the credentials (--psk-file, --cert/--key, --cacert,\n"
          "--trust-rpk files and directories) in every worker without dropping\n"
          "established sessions; a reload that fails keeps the credentials in use\n"
          "and says why (FILE:LINE for the PSK file). Sessions of an identity or\n"
          "raw key no longer there end with a close_notify and cannot resume.\n"
          "Under systemd, readiness and reloads go to $NOTIFY_SOCKET.\n"
          "\n"
          "Requests are answered as RFC 7252 says for what the server does not\n"
          "do: 4.02 for a critical option it does not act on (OSCORE, unknown\n"
          "ones), repeated though not repeatable, or with a value length\n"
          "out of range (elective ones are ignored); 5.05 for Proxy-Uri and\n"
          "Proxy-Scheme; 4.12 when If-Match or If-None-Match fails (/store has\n"
          "an ETag); 4.06 for an Accept /time or /temp cannot give; 4.04 for a\n"
          "path with an empty segment (//time is not /time). A request with\n"
          "No-Response (RFC 7967) gets no answer of the classes it names.\n"
          "\n"
          "Example: coaps serve --psk-identity me --psk secret \\\n"
          "           --cert server-cert.pem --key server-key.pem\n");
}

static int parse_port(const char *flag, const char *text, long *out) {
  char *end;
  long v = strtol(text, &end, 10);
  if (*text == '\0' || *end || v < 0 || v > 65535) {
    cli_error("%s wants a number from 0 to 65535, got '%s'", flag, text);
    return -1;
  }
  *out = v;
  return 0;
}

static int parse_workers(const char *text, long *out) {
  char *end;
  long v = strtol(text, &end, 10);
  if (*text == '\0' || *end || v < 1 || v > MAX_WORKERS) {
    cli_error("--workers wants a number from 1 to %d, got '%s'", MAX_WORKERS, text);
    return -1;
  }
  *out = v;
  return 0;
}

static int parse_max_peers(const char *text, long *out) {
  char *end;
  long v = strtol(text, &end, 10);
  if (*text == '\0' || *end || v < 1 || v > 100000000) {
    cli_error("--max-peers wants a number from 1 to 100000000, got '%s'", text);
    return -1;
  }
  *out = v;
  return 0;
}

static int parse_evict_after(const char *text, long *out_ms) {
  char *end;
  errno = 0;
  double v = strtod(text, &end);
  if (*text == '\0' || *end || errno || !(v >= 0 && v <= 86400)) {
    cli_error("--evict-after wants seconds from 0 to 86400, got '%s'", text);
    return -1;
  }
  *out_ms = (long)(v * 1000 + 0.5);
  if (v > 0 && *out_ms == 0) *out_ms = 1; /* not "never" */
  return 0;
}

/* Bytes, with an optional K or M suffix (KiB, MiB). */
static int parse_max_body(const char *text, size_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  unsigned long long unit = 1;
  if (*end == 'k' || *end == 'K')
    unit = 1024, end++;
  else if (*end == 'm' || *end == 'M')
    unit = 1024 * 1024, end++;
  if (*text == '\0' || *text == '-' || *end || errno || v == 0 || v > (1ull << 30) / unit) {
    cli_error(
        "--max-body wants a number of bytes from 1 to 1G (K and M suffixes "
        "allowed), got '%s'",
        text);
    return -1;
  }
  *out = (size_t)(v * unit);
  return 0;
}

static int parse_state_max_age(const char *text, long *out) {
  char *end;
  long v = strtol(text, &end, 10);
  if (*text == '\0' || *end || v < 1 || v > 86400) {
    cli_error("--state-max-age wants seconds from 1 to 86400, got '%s'", text);
    return -1;
  }
  *out = v;
  return 0;
}

/* 0, 1 for --help, or -1 on bad usage (already reported). */
static int parse_serve_args(serve_args_t *a, int argc, char **argv, cli_options_t *p) {
  static const struct option longopts[] = {
      {"port", required_argument, NULL, 'p'},
      {"dtls-port", required_argument, NULL, 'D'},
      {"address", required_argument, NULL, 'a'},
      {"workers", required_argument, NULL, 'w'},
      {"max-peers", required_argument, NULL, 'M'},
      {"evict-after", required_argument, NULL, 'E'},
      {"max-body", required_argument, NULL, 'B'},
      {"verbose", no_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},
      {"metrics", required_argument, NULL, 'X'},
      {"log-format", required_argument, NULL, 'L'},
      {"state-file", required_argument, NULL, 'S'},
      {"state-key-file", required_argument, NULL, 'K'},
      {"state-max-age", required_argument, NULL, 'G'},
  };
  cli_options_init(p, "serve", "[options]", argc, argv, "p:a:w:vh", longopts,
                   sizeof longopts / sizeof longopts[0], CLI_SERVER_SECURITY, " trust-rpk ");
  memset(a, 0, sizeof(*a));
  a->address = "::";
  a->port = COAP_DEFAULT_PORT;
  a->dtls_port = COAPS_DEFAULT_PORT;
  a->evict_after_ms = -1;
  a->state.max_age_s = SERVE_STATE_MAX_AGE_S;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  a->workers = cores < 1 ? 1 : cores > MAX_WORKERS ? MAX_WORKERS : cores;
  int c;
  while ((c = cli_options_next(p)) != CLI_OPTIONS_END) {
    switch (c) {
      case CLI_OPTIONS_BAD: return -1;
      case 'p':
        if (parse_port("--port", optarg, &a->port) < 0) return -1;
        break;
      case 'D':
        if (parse_port("--dtls-port", optarg, &a->dtls_port) < 0) return -1;
        break;
      case 'a': a->address = optarg; break;
      case 'w':
        if (parse_workers(optarg, &a->workers) < 0) return -1;
        break;
      case 'M':
        if (parse_max_peers(optarg, &a->max_peers) < 0) return -1;
        break;
      case 'E':
        if (parse_evict_after(optarg, &a->evict_after_ms) < 0) return -1;
        break;
      case 'B':
        if (parse_max_body(optarg, &a->max_body) < 0) return -1;
        break;
      case 'v': a->verbose++; break;
      case 'h': return 1;
      case 'X':
        if (metrics_parse_address(optarg, &a->metrics_addr) < 0) return -1;
        a->metrics = optarg;
        break;
      case 'L':
        if (strcmp(optarg, "text") != 0 && strcmp(optarg, "json") != 0) {
          cli_error("--log-format wants text or json, got '%s'", optarg);
          return -1;
        }
        a->log_json = strcmp(optarg, "json") == 0;
        break;
      case 'S': a->state.file = optarg; break;
      case 'K': a->state.key_file = optarg; break;
      case 'G':
        if (parse_state_max_age(optarg, &a->state.max_age_s) < 0) return -1;
        break;
      default:
        if (security_flags_take(&a->sec, c, optarg) < 0) return -1;
        break;
    }
  }
  coap_address_t probe;
  if (coap_address_from_string(&probe, a->address, 0) < 0) {
    cli_error("--address wants a numeric IPv4 or IPv6 address, got '%s'", a->address);
    return -1;
  }
  if (security_flags_check(&a->sec, 1) < 0) return -1;
  return cli_options_no_operand(p);
}

static void print_endpoint(const char *scheme, coap_endpoint_t *ep) {
  char addr[80];
  coap_address_format(coap_endpoint_address(ep), addr, sizeof addr);
  printf("coaps: listening on %s://%s\n", scheme, addr);
}

static void port_suffix(char *buf, size_t cap, uint16_t port, uint16_t dflt) {
  buf[0] = '\0';
  if (port != dflt) snprintf(buf, cap, ":%u", port);
}

/* |name| next to |path| (the layout coaps keygen writes), if it can be
 * read: then a hint is a command that works, not a placeholder. */
static int sibling(char *out, size_t cap, const char *path, const char *name) {
  const char *slash = strrchr(path, '/');
  int dir = slash ? (int)(slash - path + 1) : 0;
  int n = snprintf(out, cap, "%.*s%s", dir, path, name);
  return n > 0 && (size_t)n < cap && access(out, R_OK) == 0;
}

static void print_cert_hints(const serve_args_t *a, const char *dp) {
  char ca[4096], cert[4096], key[4096];
  if (!sibling(ca, sizeof ca, a->sec.cert, "ca-cert.pem")) {
    printf("  coaps get coaps://localhost%s/temp --cacert <the CA that signed %s>\n", dp,
           a->sec.cert);
    return;
  }
  printf("  coaps get coaps://localhost%s/temp --cacert %s\n", dp, ca);
  if (a->sec.cacert && sibling(cert, sizeof cert, a->sec.cert, "client-cert.pem") &&
      sibling(key, sizeof key, a->sec.cert, "client-key.pem"))
    printf("  coaps get coaps://localhost%s/temp --cacert %s --cert %s --key %s\n", dp, ca, cert,
           key);
  printf("  coaps doctor coaps://localhost%s/temp --cacert %s\n", dp, ca);
}

/* The server's public key is its key file's "-pub.pem" twin. */
static void print_rpk_hints(const serve_args_t *a, const char *dp) {
  char pub[4096], ckey[4096];
  const char *key = a->sec.key;
  size_t n = strlen(key), tail = strlen("-key.pem");
  int found = n > tail && strcmp(key + n - tail, "-key.pem") == 0 &&
              snprintf(pub, sizeof pub, "%.*s-pub.pem", (int)(n - tail), key) < (int)sizeof pub &&
              access(pub, R_OK) == 0;
  if (!found) {
    printf("  coaps get coaps://127.0.0.1%s/temp --trust-rpk <the public key of %s>\n", dp, key);
    return;
  }
  if (sibling(ckey, sizeof ckey, key, "rpk-client-key.pem"))
    printf("  coaps get coaps://127.0.0.1%s/temp --rpk --key %s --trust-rpk %s\n", dp, ckey, pub);
  else
    printf("  coaps get coaps://127.0.0.1%s/temp --trust-rpk %s\n", dp, pub);
}

static void print_hints(const serve_args_t *a, uint16_t port, uint16_t dtls_port) {
  char p[8], dp[8];
  port_suffix(p, sizeof p, port, COAP_DEFAULT_PORT);
  printf(
      "try:\n"
      "  coaps get coap://127.0.0.1%s/temp\n"
      "  coaps get --observe coap://127.0.0.1%s/temp --count 5\n"
      "  coaps get coap://127.0.0.1%s/.well-known/core\n"
      "  coaps put coap://127.0.0.1%s/store -d hello\n",
      p, p, p, p);
  if (!dtls_port) return;
  port_suffix(dp, sizeof dp, dtls_port, COAPS_DEFAULT_PORT);
  if (a->sec.psk_identity)
    printf("  coaps get --observe coaps://127.0.0.1%s/time --psk-identity '%s' %s '%s'\n", dp,
           a->sec.psk_identity, a->sec.psk ? "--psk" : "--psk-hex",
           a->sec.psk ? a->sec.psk : a->sec.psk_hex);
  if (a->sec.psk_file)
    printf(
        "  coaps get coaps://127.0.0.1%s/temp --psk-identity <an identity of %s> "
        "--psk <its key>\n",
        dp, a->sec.psk_file);
  if (a->sec.cert) print_cert_hints(a, dp);
  if (a->sec.rpk) print_rpk_hints(a, dp);
  if (a->sec.psk_identity)
    printf(
        "  coaps get coaps://127.0.0.1%s/temp --psk-identity '%s' --psk wrong"
        "   # a failure, named\n",
        dp, a->sec.psk_identity);
}

static void utc_text(time_t t, char *buf, size_t cap) {
  struct tm tm;
  if (t == (time_t)-1 || !gmtime_r(&t, &tm) || !strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm))
    snprintf(buf, cap, "(unknown)");
}

/* The library takes a certificate out of its validity period (the dates
 * are the client's to check), so the server would start and every client
 * would refuse it, each with its own words: say it here, once, with what
 * the certificate and this host's clock say, since either may be wrong.
 * Only dates: a file that does not load at all is the library's to
 * report. */
static void warn_cert_dates(const char *file) {
  gnutls_datum_t raw = {NULL, 0};
  if (gnutls_load_file(file, &raw) < 0) return;
  gnutls_x509_crt_t *crts = NULL;
  unsigned n = 0;
  if (gnutls_x509_crt_list_import2(&crts, &n, &raw, GNUTLS_X509_FMT_PEM, 0) < 0 &&
      gnutls_x509_crt_list_import2(&crts, &n, &raw, GNUTLS_X509_FMT_DER, 0) < 0) {
    crts = NULL;
    n = 0;
  }
  gnutls_free(raw.data);
  time_t now = time(NULL);
  for (unsigned i = 0; i < n; i++) {
    time_t from = gnutls_x509_crt_get_activation_time(crts[i]);
    time_t until = gnutls_x509_crt_get_expiration_time(crts[i]);
    int early = from != (time_t)-1 && now < from;
    int late = until != (time_t)-1 && now > until;
    if (early || late) {
      char a[40], b[40], c[40];
      gnutls_datum_t dn = {NULL, 0};
      utc_text(from, a, sizeof a);
      utc_text(until, b, sizeof b);
      utc_text(now, c, sizeof c);
      if (gnutls_x509_crt_get_dn3(crts[i], &dn, 0) < 0) dn.data = NULL;
      const char *subject = dn.data ? (const char *)dn.data : "unknown";
      const char *fix = late ? "renew it, or check the clock" : "check the clock";
      log_field_t fields[] = {LOG_TEXT("file", file), LOG_TEXT("subject", subject),
                              LOG_TEXT("cause", late ? "cert-expired" : "cert-not-yet-valid"),
                              LOG_TEXT("fix", fix)};
      tool_log("warning", fields, 4,
               "%s in %s (subject %s) %s: valid from %s to %s, and this host's clock says "
               "%s; clients checking dates will refuse it (%s)",
               i == 0 ? "the certificate" : "a CA certificate of the chain", file, subject,
               late ? "has expired" : "is not valid yet", a, b, c, fix);
      gnutls_free(dn.data);
    }
    gnutls_x509_crt_deinit(crts[i]);
  }
  gnutls_free(crts);
}

/* One worker: a context of its own with the demo resources, the
 * credentials and its sockets. */
typedef struct worker {
  coap_context_t *ctx;
  coap_endpoint_t *ep, *sep; /* coap:// and coaps:// (NULL without credentials) */
  pthread_t thread;
  int rc;
  long index, of; /* worker index, and how many there are */
  int verbose;
  long tick;                               /* the second of the last notification (tick_now) */
  size_t observers[DEMO_OBSERVABLE_COUNT]; /* as last logged */
  reload_slot_t reload;                    /* credentials handed over on SIGHUP */
  size_t closed;                           /* sessions given a close_notify at the stop */
  metrics_board_t *board;                  /* --metrics: where it publishes its numbers, or NULL */
  serve_state_t *state;                    /* --state-file: sessions saved at the stop, or NULL */
} worker_t;

/* Set once SIGINT or SIGTERM arrives: every worker's loop ends. */
static atomic_int g_workers_stop;

/* Make |w|'s context and bind its ports (0 picks a free one; the workers
 * after the first bind the ports the first one got). Returns 0 or an exit
 * code, with the reason printed. */
static int worker_open(worker_t *w, const worker_t *first, const serve_args_t *a,
                       coap_address_t addr, uint16_t port, uint16_t dtls_port) {
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.log = cli_log;
  cfg.log_level = a->verbose > 1 ? COAP_LOG_DEBUG : a->verbose ? COAP_LOG_INFO : COAP_LOG_WARNING;
  if (a->max_peers) cfg.max_peers = (size_t)a->max_peers;
  if (a->evict_after_ms >= 0) cfg.peer_evict_ms = (uint32_t)a->evict_after_ms;
  if (a->max_body) {
    cfg.max_body = a->max_body;
    /* Room for a few such bodies under way at once. */
    if (cfg.max_reassembly < 4 * a->max_body) cfg.max_reassembly = 4 * a->max_body;
  }
  w->verbose = a->verbose;
  w->of = a->workers;
  w->ctx = coap_context_new(&cfg);
  if (!w->ctx) {
    cli_error("out of memory");
    return EXIT_NETWORK;
  }
  if (a->log_json) log_json_install(w->ctx);
  demo_resources_register(w->ctx);
  if (a->workers > 1) coap_context_set_reuse_port(w->ctx, 1);
  int rc = security_flags_apply(&a->sec, w->ctx, 1);
  if (rc != 0) return rc;
  /* Its CIDs begin with its index, which the kernel reads to hand a
   * rebound client's records to it (the index is the bind order). */
  if (a->workers > 1 && coap_context_dtls(w->ctx))
    coap_dtls_set_cid_worker(coap_context_dtls(w->ctx), (unsigned)w->index);
  /* One set of cookie and ticket keys for all workers: a client that
   * comes back from another port (another worker) still resumes. */
  if (first && coap_context_dtls(w->ctx) &&
      coap_dtls_share_keys(coap_context_dtls(w->ctx), coap_context_dtls(first->ctx)) < 0) {
    cli_error("cannot share the DTLS keys between workers");
    return EXIT_SECURITY;
  }
  coap_address_set_port(&addr, port);
  w->ep = coap_context_listen(w->ctx, COAP_PROTO_UDP, &addr);
  if (!w->ep) {
    cli_error(
        "cannot listen on %s port %u (see the message above; is another "
        "server using it? try --port)",
        a->address, port);
    return EXIT_NETWORK;
  }
  if (!a->sec.any) return 0;
  coap_address_set_port(&addr, dtls_port);
  w->sep = coap_context_listen(w->ctx, COAP_PROTO_DTLS, &addr);
  if (!w->sep) {
    cli_error(
        "cannot listen on %s port %u for coaps:// (is another server "
        "using it? try --dtls-port)",
        a->address, dtls_port);
    return EXIT_NETWORK;
  }
  return 0;
}

static uint16_t bound_port(coap_endpoint_t *ep) {
  return ep ? coap_address_get_port(coap_endpoint_address(ep)) : 0;
}

/* Workers share their ports through SO_REUSEPORT, which would also let
 * them join another server already on the port, and for port 0 let the
 * kernel hand out a port that another SO_REUSEPORT server of the same user
 * holds. So a socket without SO_REUSEPORT claims the port first: its bind
 * fails on a port in use and, for port 0, picks one nobody holds. It is
 * closed before the workers bind: kept (with SO_REUSEPORT set after its
 * bind) it would sit in their group and, once closed, reorder it under
 * the Connection ID steering program (io.c), which picks workers by
 * their place in it. Only a process binding that very port in between
 * can still come in. Sets |*got| to the port; returns the claim's socket,
 * or -1 with the reason printed. */
static int port_claim(const coap_address_t *addr, const char *text, long port, uint16_t *got) {
  coap_address_t a = *addr;
  coap_address_set_port(&a, (uint16_t)port);
  int fd = socket(a.addr.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    cli_error("cannot open a UDP socket: %s", strerror(errno));
    return -1;
  }
  int off = 0;
  if (a.addr.sa.sa_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off); /* as the workers bind */
  socklen_t len = a.size;
  if (bind(fd, &a.addr.sa, a.size) < 0 || getsockname(fd, &a.addr.sa, &len) < 0) {
    int err = errno;
    close(fd);
    cli_error("cannot listen on %s port %ld: %s%s", text, port, strerror(err),
              err == EADDRINUSE ? " (is another server using it? try --port/--dtls-port)" : "");
    return -1;
  }
  *got = coap_address_get_port(&a);
  return fd;
}

static void claim_release(int fd) {
  if (fd >= 0) close(fd);
}

/* Open every worker; the first one decides the ports (claimed first when
 * there are several: port_claim). */
static int workers_open(worker_t *w, const serve_args_t *a, const coap_address_t *addr) {
  uint16_t port = (uint16_t)a->port, dtls_port = (uint16_t)a->dtls_port;
  int claim = -1, dtls_claim = -1, rc = EXIT_NETWORK;
  if (a->workers > 1 &&
      ((claim = port_claim(addr, a->address, a->port, &port)) < 0 ||
       (a->sec.any && (dtls_claim = port_claim(addr, a->address, a->dtls_port, &dtls_port)) < 0)))
    goto out;
  /* Both claimed (coap:// and coaps:// apart), then released: see port_claim. */
  claim_release(claim);
  claim_release(dtls_claim);
  claim = dtls_claim = -1;
  rc = worker_open(&w[0], NULL, a, *addr, port, dtls_port);
  for (long i = 1; rc == 0 && i < a->workers; i++) {
    w[i].index = i;
    rc = worker_open(&w[i], &w[0], a, *addr, bound_port(w[0].ep), bound_port(w[0].sep));
  }
out:
  claim_release(claim);
  claim_release(dtls_claim);
  return rc;
}

static void workers_free(worker_t *w, long n) {
  for (long i = 0; i < n; i++) {
    coap_dtls_context_free(atomic_exchange(&w[i].reload.next, NULL)); /* never taken */
    coap_context_free(w[i].ctx);
  }
  free(w);
}

/* The demo's observable resources change with the wall clock's second
 * (/time shows it): the tick comes TICK_LAG_MS after each second begins,
 * late enough that time(), which may read a coarse clock, has moved on. */
#define TICK_LAG_MS 20

/* The current tick (seconds), and the milliseconds until the next one. */
static long tick_now(int *wait_ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  long long ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - TICK_LAG_MS;
  *wait_ms = (int)(1000 - ms % 1000);
  return (long)(ms / 1000);
}

/* -v: a line when the number of observers of a resource changes, so
 * that registrations and deregistrations can be seen from outside. */
static void log_observers(worker_t *w) {
  for (size_t i = 0; i < DEMO_OBSERVABLE_COUNT; i++) {
    coap_resource_t *r = coap_resource_find(w->ctx, demo_observable[i]);
    size_t n = r ? coap_resource_observer_count(r) : 0;
    if (n == w->observers[i]) continue;
    w->observers[i] = n;
    log_field_t fields[] = {LOG_TEXT("resource", demo_observable[i]), LOG_COUNT("observers", n),
                            LOG_COUNT("worker", w->index)};
    if (w->of > 1)
      tool_log("info", fields, 3, "worker %ld: /%s: %zu observer%s", w->index, demo_observable[i],
               n, n == 1 ? "" : "s");
    else
      tool_log("info", fields, 2, "/%s: %zu observer%s", demo_observable[i], n, n == 1 ? "" : "s");
  }
}

static void worker_finish(worker_t *w);

/* A worker's loop. The wait is bounded so that it notices the stop flag
 * when idle (under load it never waits that long), and ends at the next
 * tick, when the observers of /temp and /time are notified. */
static void *worker_main(void *arg) {
  worker_t *w = arg;
  int wait_ms;
  w->tick = tick_now(&wait_ms);
  /* The demo's clock starts on this thread: answers show this second
   * until the next tick, which does not announce it again. */
  demo_resources_tick(w->ctx);
  while (!atomic_load(&g_workers_stop)) {
    reload_slot_take(&w->reload, w->ctx, w->of > 1 ? (int)w->index : -1);
    w->rc = coap_context_process(w->ctx, wait_ms < 200 ? wait_ms : 200);
    if (w->rc < 0) {
      kill(getpid(), SIGTERM); /* wake the main thread: the server stops */
      break;
    }
    long tick = tick_now(&wait_ms);
    if (tick != w->tick) {
      w->tick = tick;
      demo_resources_tick(w->ctx);
    }
    if (w->verbose) log_observers(w);
    metrics_publish(w->board, w->index, w->ctx, 0);
  }
  /* With a state file the main thread saves every worker's sessions
   * first, then finishes them (workers_save_state). */
  if (!w->state) worker_finish(w);
  return NULL;
}

/* At the stop, once its sessions are saved or not to be: a close_notify
 * for each left, and the last numbers. */
static void worker_finish(worker_t *w) {
  w->closed = serve_close_sessions(w->ctx);
  metrics_publish(w->board, w->index, w->ctx, 1);
}

/* --state-file: every worker's sessions in one file, after all their
 * loops ended (the contexts are then this thread's alone). */
static void workers_save_state(worker_t *w, long n) {
  coap_context_t *ctxs[MAX_WORKERS];
  for (long i = 0; i < n; i++) ctxs[i] = w[i].ctx;
  serve_state_save(w[0].state, ctxs, (size_t)n);
  for (long i = 0; i < n; i++) worker_finish(&w[i]);
}

/* SIGHUP: the workers' reload slots are in their structs. */
static void serve_reload_workers(worker_t *w, long n, security_flags_t *sec) {
  reload_slot_t *slots[MAX_WORKERS];
  for (long i = 0; i < n; i++) slots[i] = &w[i].reload;
  int rc = serve_reload(sec, slots, n);
  metrics_note_reload(w[0].board, rc == 0); /* --metrics: reload count and time */
}

/* The workers (one is a thread too: its loop has the tick that
 * coap_run() does not): the signals are blocked in every thread and taken
 * by the main one, which then stops and joins the workers. */
static int workers_run(worker_t *w, long n, security_flags_t *sec) {
  sigset_t mask, old;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &mask, &old);
  long started = 0;
  while (started < n && pthread_create(&w[started].thread, NULL, worker_main, &w[started]) == 0)
    started++;
  int sig = 0;
  if (started == n) serve_notify("READY=1");
  while (started == n && (sigwait(&mask, &sig) != 0 || sig == SIGHUP))
    if (sig == SIGHUP) serve_reload_workers(w, n, sec);
  serve_notify("STOPPING=1");
  /* The stop is bounded: SIGALRM's default action ends the process. */
  alarm(SERVE_STOP_BOUND_S);
  atomic_store(&g_workers_stop, 1);
  int rc = started == n ? 0 : COAP_E_SYSTEM;
  for (long i = 0; i < started; i++) {
    pthread_join(w[i].thread, NULL);
    if (w[i].rc < 0) rc = w[i].rc;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

static coap_context_t *worker_context(const void *workers, long i) {
  return ((const worker_t *)workers)[i].ctx;
}

/* On the way out: how many connections failed, and why, and what the
 * peer limit did (all workers). */
static void print_failures(const worker_t *w, long n) {
  uint64_t by_cause[COAP_CAUSE_COUNT] = {0}, total = 0, rejected = 0, evicted = 0;
  uint64_t notified = 0, dropped = 0;
  for (long i = 0; i < n; i++) {
    coap_stats_t st;
    coap_context_get_stats(w[i].ctx, &st);
    for (int c = 1; c < COAP_CAUSE_COUNT; c++) by_cause[c] += st.failures_by_cause[c];
    rejected += st.peers_rejected;
    evicted += st.peers_evicted;
    notified += st.notifications_sent;
    dropped += st.observers_removed;
  }
  if (w[0].verbose && notified) {
    log_field_t fields[] = {LOG_COUNT("notifications", notified),
                            LOG_COUNT("observers_dropped", dropped)};
    tool_log("info", fields, 2,
             "observe: %llu notifications sent; %llu observers dropped by the server (an RST, "
             "an unacknowledged CON, the session's end, a limit)",
             (unsigned long long)notified, (unsigned long long)dropped);
  }
  security_print_cid_stats(w[0].verbose, n, worker_context, w);
  if (rejected || evicted) {
    log_field_t fields[] = {LOG_COUNT("datagrams_dropped", rejected),
                            LOG_COUNT("peers_evicted", evicted)};
    tool_log("info", fields, 2,
             "peer limit: %llu datagrams from new clients dropped, %llu silent clients "
             "forgotten to make room",
             (unsigned long long)rejected, (unsigned long long)evicted);
  }
  char line[1024];
  size_t used = 0;
  log_field_t fields[COAP_CAUSE_COUNT + 1];
  size_t nf = 0;
  for (int c = 1; c < COAP_CAUSE_COUNT && used < sizeof line; c++) {
    if (!by_cause[c]) continue;
    total += by_cause[c];
    fields[nf++] = LOG_COUNT(coap_cause_name((coap_cause_t)c), by_cause[c]);
    int k = snprintf(line + used, sizeof line - used, "%s %s %llu", used ? "," : "",
                     coap_cause_name((coap_cause_t)c), (unsigned long long)by_cause[c]);
    if (k > 0) used += (size_t)k;
  }
  fields[nf++] = LOG_COUNT("failures", total);
  if (total) tool_log("info", fields, nf, "failed connections by cause:%s", line);
}

/* --metrics: the board the workers publish on, and the HTTP listener
 * reading it. 0, or an exit code with the reason said. */
static int metrics_open(const serve_args_t *a, worker_t *w, metrics_board_t *board,
                        metrics_server_t **server) {
  if (metrics_board_init(board, a->workers) < 0) {
    cli_error("out of memory");
    return EXIT_NETWORK;
  }
  int rc = 0;
  *server = metrics_server_start(&a->metrics_addr, board, &rc);
  if (!*server) {
    metrics_board_free(board);
    return rc;
  }
  for (long i = 0; i < a->workers; i++) w[i].board = board;
  return 0;
}

static void print_metrics_endpoint(const metrics_server_t *s) {
  char addr[80];
  coap_address_format(metrics_server_address(s), addr, sizeof addr);
  printf("coaps: metrics on http://%s/metrics, status page on http://%s/\n", addr, addr);
}

int cmd_serve(int argc, char **argv) {
  serve_args_t a;
  cli_options_t p;
  int rc = parse_serve_args(&a, argc, argv, &p);
  if (rc == 1) {
    serve_usage(stdout);
    return 0;
  }
  if (rc < 0) return cli_usage_error(&p);
  log_json_enabled = a.log_json; /* the tool's own lines too, from here on */
  coap_address_t addr;
  coap_address_from_string(&addr, a.address, (uint16_t)a.port); /* checked when parsed */
  if ((rc = security_flags_load_psk_file(&a.sec)) != 0) return rc;
  a.state.node_id = a.sec.node_id > 0 ? (unsigned)(a.sec.node_id - 1) : 0;
  if ((rc = serve_state_load_key(&a.state)) != 0) return rc;
  worker_t *w = calloc((size_t)a.workers, sizeof(*w));
  if (!w) {
    cli_error("out of memory");
    return EXIT_NETWORK;
  }
  if ((rc = workers_open(w, &a, &addr)) != 0) {
    workers_free(w, a.workers);
    return rc;
  }
  metrics_board_t board;
  metrics_server_t *metrics = NULL;
  if (a.metrics && (rc = metrics_open(&a, w, &board, &metrics)) != 0) {
    workers_free(w, a.workers);
    return rc;
  }
  if (a.state.file && w[0].sep) {
    coap_context_t *ctxs[MAX_WORKERS];
    for (long i = 0; i < a.workers; i++) {
      ctxs[i] = w[i].ctx;
      w[i].state = &a.state;
    }
    serve_state_restore(&a.state, ctxs, (size_t)a.workers);
  }
  if (a.sec.cert) warn_cert_dates(a.sec.cert);
  print_endpoint("coap", w[0].ep);
  if (w[0].sep) print_endpoint("coaps", w[0].sep);
  if (metrics) print_metrics_endpoint(metrics);
  print_hints(&a, bound_port(w[0].ep), bound_port(w[0].sep));
  fflush(stdout);
  rc = workers_run(w, a.workers, &a.sec);
  if (w[0].state) workers_save_state(w, a.workers);
  size_t closed = 0;
  for (long i = 0; i < a.workers; i++) closed += w[i].closed;
  if (closed)
    tool_log("info", (log_field_t[]){LOG_COUNT("sessions_closed", closed)}, 1,
             "stopping: %zu DTLS session%s closed (close_notify)", closed, closed == 1 ? "" : "s");
  print_failures(w, a.workers);
  if (a.metrics) {
    metrics_server_stop(metrics);
    metrics_board_free(&board);
  }
  workers_free(w, a.workers);
  coap_psk_table_free(a.sec.psk_table);
  if (rc < 0) {
    cli_error("server stopped: %s", coap_strerror(rc));
    return EXIT_NETWORK;
  }
  return 0;
}
