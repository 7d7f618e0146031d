#include "security_flags.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log_json.h"

enum {
  OPT_PSK_IDENTITY = SECURITY_OPTION_FIRST,
  OPT_PSK,
  OPT_PSK_HEX,
  OPT_CERT,
  OPT_KEY,
  OPT_CACERT,
  OPT_REQUIRE_CLIENT_CERT,
  OPT_SESSION,
  OPT_MTU,
  OPT_RPK,
  OPT_TRUST_RPK,
  OPT_HANDSHAKE_TIMEOUT,
  OPT_COOKIE,
  OPT_PSK_FILE,
  OPT_ALLOW_INSECURE_KEY_FILES,
  OPT_TICKET_KEY_FILE,
  OPT_CID,
  OPT_NO_CID,
  OPT_NODE_ID
};

static const struct option security_options[] = {
    {"psk-identity", required_argument, NULL, OPT_PSK_IDENTITY},
    {"psk", required_argument, NULL, OPT_PSK},
    {"psk-hex", required_argument, NULL, OPT_PSK_HEX},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"require-client-cert", no_argument, NULL, OPT_REQUIRE_CLIENT_CERT},
    {"session", required_argument, NULL, OPT_SESSION},
    {"mtu", required_argument, NULL, OPT_MTU},
    {"rpk", no_argument, NULL, OPT_RPK},
    {"trust-rpk", required_argument, NULL, OPT_TRUST_RPK},
    {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
    {"cookie", required_argument, NULL, OPT_COOKIE},
    {"psk-file", required_argument, NULL, OPT_PSK_FILE},
    {"allow-insecure-key-files", no_argument, NULL, OPT_ALLOW_INSECURE_KEY_FILES},
    {"ticket-key-file", required_argument, NULL, OPT_TICKET_KEY_FILE},
    {"cid", optional_argument, NULL, OPT_CID},
    {"no-cid", no_argument, NULL, OPT_NO_CID},
    {"node-id", required_argument, NULL, OPT_NODE_ID},
};

/* The flags only one side has. */
static int for_side(const struct option *o, int server) {
  if (o->val == OPT_SESSION) return !server;
  if (o->val == OPT_COOKIE || o->val == OPT_REQUIRE_CLIENT_CERT || o->val == OPT_PSK_FILE ||
      o->val == OPT_ALLOW_INSECURE_KEY_FILES || o->val == OPT_TICKET_KEY_FILE ||
      o->val == OPT_NODE_ID)
    return server;
  return 1;
}

size_t security_options_merge(struct option *dst, size_t n, size_t cap, int server) {
  for (size_t i = 0; i < sizeof security_options / sizeof security_options[0] && n + 1 < cap; i++)
    if (for_side(&security_options[i], server)) dst[n++] = security_options[i];
  memset(&dst[n], 0, sizeof dst[n]);
  return n;
}

/* A key in hex: pairs of hex digits, at least one pair. */
static int is_hex_key(const char *s) {
  size_t n = strlen(s);
  return n > 0 && n % 2 == 0 && strspn(s, "0123456789abcdefABCDEF") == n;
}

int security_flags_take(security_flags_t *f, int id, const char *arg) {
  switch (id) {
    case OPT_PSK_IDENTITY: f->psk_identity = arg; break;
    case OPT_PSK: f->psk = arg; break;
    case OPT_PSK_HEX:
      if (!is_hex_key(arg)) {
        cli_error("--psk-hex wants the key as pairs of hex digits (0-9, a-f), got '%s'", arg);
        return -1;
      }
      f->psk_hex = arg;
      break;
    case OPT_CERT: f->cert = arg; break;
    case OPT_KEY: f->key = arg; break;
    case OPT_CACERT: f->cacert = arg; break;
    case OPT_REQUIRE_CLIENT_CERT: f->client_cert_required = 1; break;
    case OPT_PSK_FILE: f->psk_file = arg; break;
    case OPT_ALLOW_INSECURE_KEY_FILES: f->allow_insecure_key_files = 1; break;
    case OPT_TICKET_KEY_FILE: f->ticket_key_file = arg; break;
    case OPT_SESSION: f->session_file = arg; break;
    case OPT_RPK: f->rpk = 1; break;
    case OPT_TRUST_RPK:
      if (f->n_trust_rpk == sizeof f->trust_rpk / sizeof f->trust_rpk[0]) {
        cli_error("at most %zu --trust-rpk keys", sizeof f->trust_rpk / sizeof f->trust_rpk[0]);
        return -1;
      }
      f->trust_rpk[f->n_trust_rpk++] = arg;
      break;
    case OPT_HANDSHAKE_TIMEOUT:
      if (cli_parse_seconds("--handshake-timeout", arg, 0.1, 3600, &f->handshake_timeout_ms) < 0)
        return -1;
      break;
    case OPT_COOKIE:
      if (strcmp(arg, "always") == 0)
        f->cookie = 1 + COAP_DTLS_COOKIE_ALWAYS;
      else if (strcmp(arg, "under-load") == 0)
        f->cookie = 1 + COAP_DTLS_COOKIE_UNDER_LOAD;
      else if (strcmp(arg, "never") == 0)
        f->cookie = 1 + COAP_DTLS_COOKIE_NEVER;
      else if (strcmp(arg, "when-needed") == 0)
        f->cookie = 1 + COAP_DTLS_COOKIE_WHEN_NEEDED;
      else {
        cli_error("--cookie wants when-needed, always, under-load or never, got '%s'", arg);
        return -1;
      }
      break;
    case OPT_CID:
      f->cid = 1;
      if (arg) {
        char *end;
        long n = strtol(arg, &end, 10);
        if (end == arg || *end || n < 0 || n > 32) {
          cli_error("--cid=N wants a Connection ID length from 0 to 32, got '%s'", arg);
          return -1;
        }
        f->cid_len = (unsigned)n;
        f->cid_len_given = 1;
      }
      break;
    case OPT_NO_CID: f->cid = -1; break;
    case OPT_NODE_ID: {
      char *end;
      long n = strtol(arg, &end, 10);
      if (end == arg || *end || n < 0 || n > 255) {
        cli_error("--node-id wants a number from 0 to 255, got '%s'", arg);
        return -1;
      }
      f->node_id = (int)n + 1;
      return 1; /* not a credential: --node-id alone turns no DTLS on */
    }
    case OPT_MTU: {
      char *end;
      long v = strtol(arg, &end, 10);
      if (end == arg || *end || v < 256 || v > 65535) {
        cli_error("--mtu wants a number of bytes from 256 to 65535, got '%s'", arg);
        return -1;
      }
      f->mtu = v;
      break;
    }
    default: return 0;
  }
  f->any = 1;
  return 1;
}

void security_flags_usage(FILE *out, int server) {
  fprintf(out,
          "DTLS (coaps://) credentials:\n"
          "      --psk-identity ID    pre-shared key identity\n"
          "      --psk KEY            pre-shared key as text\n"
          "      --psk-hex HEX        pre-shared key in hex\n"
          "      --cert FILE          own certificate chain (PEM or DER)\n"
          "      --key FILE           private key of --cert\n"
          "      --cacert FILE|DIR    CA certificates that verify the %s\n"
          "      --rpk                use --key as a raw public key (RFC 7250) too, or\n"
          "                           alone without --cert\n"
          "      --trust-rpk FILE|DIR trust the peer with this public key (PEM or DER);\n"
          "                           repeatable; a directory: every file in it not\n"
          "                           starting with '.' is one key (any number)\n"
          "      --mtu N              path MTU for handshake fragmentation (default 1280)\n"
          "      --handshake-timeout S  give up a DTLS handshake after S seconds\n"
          "                           (default 30); flights are resent from 1 s on\n"
          "      --cid[=N]            Connection ID (RFC 9146), on by default: %s\n"
          "      --no-cid             no Connection ID: %s\n",
          server ? "client's certificate (asked for, verified when sent)"
                 : "server (chain, dates and the URI's host name)",
          server ? "granted to\n"
                   "                           clients that ask, N bytes long (1-32,\n"
                   "                           default 8): a client whose address changes\n"
                   "                           keeps its session"
                 : "asked for;\n"
                   "                           N random bytes of our own (default 0: only\n"
                   "                           our records carry the server's CID)",
          server ? "none granted" : "not asked for");
  if (server)
    fprintf(out,
            "      --require-client-cert  refuse clients without a certificate\n"
            "      --cookie POLICY      ask new clients for a cookie (a round trip that\n"
            "                           proves their address): when-needed (default:\n"
            "                           under load, or when a fresh hello would get a\n"
            "                           certificate or raw-key flight), always,\n"
            "                           under-load (as when-needed, but resumed\n"
            "                           certificate sessions get one too), never\n"
            "                           (trusted networks only); fresh certificate\n"
            "                           and raw-key handshakes always get one\n"
            "      --psk-file FILE      the identities clients may use, one a line:\n"
            "                             IDENTITY KEY\n"
            "                           separated by spaces or tabs; KEY is the key as\n"
            "                           text, or hex: and its hex digits (hex:00a1ff);\n"
            "                           '#' at the start of a line or after whitespace\n"
            "                           starts a comment; at most 64 bytes each. A\n"
            "                           duplicate identity or a bad line is refused\n"
            "                           with FILE:LINE; so is a file group or others\n"
            "                           may read (chmod 600), unless\n"
            "      --allow-insecure-key-files  take such a file (with a warning)\n"
            "      --ticket-key-file FILE  seal session tickets with the current key of\n"
            "                           FILE (coaps keygen --ticket-key) and open them\n"
            "                           with any of its keys (a rotation's grace period);\n"
            "                           read at start and on SIGHUP: servers sharing\n"
            "                           FILE resume each other's sessions. Mode 600\n"
            "                           (or --allow-insecure-key-files)\n"
            "      --node-id N          this server's id (0-255, default 0) among\n"
            "                           several behind one balancer: byte 1 of the\n"
            "                           Connection IDs it grants (byte 0 is the\n"
            "                           worker), for the balancer to route a client\n"
            "                           whose address changed (docs/cluster.md)\n");
  else
    fprintf(out,
            "      --session FILE       keep the DTLS session in FILE and resume it\n"
            "                           next time (abbreviated handshake). FILE holds\n"
            "                           a secret: it is replaced atomically by a new\n"
            "                           file of mode 0600. A symbolic link, a directory,\n"
            "                           a file that is not a session file or a directory\n"
            "                           we cannot write is refused before anything is\n"
            "                           sent (exit 7); a save that fails later is said\n"
            "                           on stderr, the exit code staying the response's\n");
}

static int usage_error(const char *msg) {
  cli_error("%s", msg);
  return -1;
}

int security_flags_check(const security_flags_t *f, int server) {
  if ((f->psk || f->psk_hex) && !f->psk_identity)
    return usage_error("--psk/--psk-hex need --psk-identity too");
  if (f->psk_identity && !f->psk && !f->psk_hex)
    return usage_error("--psk-identity needs --psk or --psk-hex too");
  if (f->psk && f->psk_hex) return usage_error("give --psk or --psk-hex, not both");
  /* --rpk with --cert: the certificate's key doubles as the raw key. */
  if (f->rpk && !f->key) return usage_error("--rpk needs --key FILE (an EC P-256 private key)");
  if (f->cert && !f->key) return usage_error("--cert needs --key FILE (its private key)");
  if (!f->rpk && f->key && !f->cert) return usage_error("--key goes with --cert (or --rpk)");
  if (f->session_file && !f->psk_identity && !f->cacert && !f->n_trust_rpk)
    return usage_error("--session needs credentials (--psk-identity or --cacert) to resume");
  if (f->allow_insecure_key_files && !f->psk_file && !f->ticket_key_file)
    return usage_error("--allow-insecure-key-files goes with --psk-file or --ticket-key-file");
  if (server && f->client_cert_required && !f->cacert)
    return usage_error("--require-client-cert needs --cacert to verify them with");
  if (server && f->node_id && f->cid < 0)
    return usage_error("--node-id is carried in the Connection ID: not with --no-cid");
  if (server && f->node_id && f->cid_len_given && f->cid_len < 2)
    return usage_error("--node-id needs Connection IDs of 2 bytes at least (--cid=N)");
  if (server && f->cid > 0 && f->cid_len_given && f->cid_len == 0)
    return usage_error("--cid=0: a server's Connection ID has 1 byte at least (or --no-cid)");
  return 0;
}

/* A directory passes the library's readability check and then fails in
 * GnuTLS as "Error while reading file.": name it before that. Anything
 * else wrong with the file is the library's to say. */
static int refuse_directory(const char *flag, const char *path, const char *want) {
  struct stat st;
  if (!path || stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
  cli_error("%s %s: is a directory (give %s)", flag, path, want);
  return -1;
}

/* --cid=N: a server's CIDs are N bytes long (1 at least); a client's own
 * CID is N random bytes (0: none). */
static int security_apply_cid(const security_flags_t *f, coap_dtls_context_t *d, int server) {
  if (f->cid < 0) return coap_dtls_set_cid(d, 0, 0);
  if (server) return coap_dtls_set_cid(d, 1, f->cid_len ? f->cid_len : 8);
  uint8_t cid[32];
  FILE *rnd = f->cid_len ? fopen("/dev/urandom", "rb") : NULL;
  size_t got = rnd ? fread(cid, 1, f->cid_len, rnd) : 0;
  if (rnd) fclose(rnd);
  if (got != f->cid_len) return COAP_E_SYSTEM;
  return coap_dtls_set_client_cid(d, cid, f->cid_len);
}

int security_flags_read_psk_file(const security_flags_t *f, coap_psk_table_t **out, char *why,
                                 size_t cap) {
  unsigned flags = f->allow_insecure_key_files ? COAP_KEY_FILE_ALLOW_INSECURE : 0;
  return coap_psk_table_load_file(f->psk_file, flags, out, why, cap);
}

int security_flags_load_psk_file(security_flags_t *f) {
  if (!f->psk_file) return 0;
  char why[640];
  coap_psk_table_t *t = NULL;
  if (security_flags_read_psk_file(f, &t, why, sizeof why) < 0) {
    cli_error("%s", why);
    return EXIT_CONFIG;
  }
  if (why[0]) cli_error("warning: %s", why);
  coap_psk_table_free(f->psk_table);
  f->psk_table = t;
  return 0;
}

/* A --trust-rpk directory holds any number of keys. */
static int add_trusted_rpk(coap_dtls_context_t *d, const char *path) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    int n = coap_dtls_add_trusted_rpk_dir(d, path);
    return n < 0 ? n : 0;
  }
  return coap_dtls_add_trusted_rpk(d, path);
}

/* --ticket-key-file: the refusal is in last_error (said by the caller),
 * the warning for an allowed insecure file said here. */
static int security_apply_ticket_keys(const security_flags_t *f, coap_dtls_context_t *d) {
  unsigned flags = f->allow_insecure_key_files ? COAP_KEY_FILE_ALLOW_INSECURE : 0;
  char why[640];
  int rc = coap_dtls_load_ticket_key_file(d, f->ticket_key_file, flags, why, sizeof why);
  if (rc >= 0 && why[0]) cli_error("warning: %s", why);
  return rc < 0 ? rc : 0;
}

int security_flags_build(const security_flags_t *f, coap_dtls_context_t *d, int server,
                         coap_psk_table_t *table) {
  int rc = 0;
  if (f->psk)
    rc = coap_dtls_set_psk(d, (const uint8_t *)f->psk_identity, (const uint8_t *)f->psk,
                           strlen(f->psk));
  else if (f->psk_hex)
    rc = coap_dtls_set_psk_hex(d, f->psk_identity, f->psk_hex);
  if (rc == 0 && table) rc = coap_dtls_set_psk_table(d, table);
  if (rc == 0 && f->cert) rc = coap_dtls_set_cert(d, f->cert, f->key, NULL);
  if (rc == 0 && f->rpk) rc = coap_dtls_set_rpk(d, f->key);
  for (size_t i = 0; rc == 0 && i < f->n_trust_rpk; i++) rc = add_trusted_rpk(d, f->trust_rpk[i]);
  if (rc == 0 && f->cacert) rc = coap_dtls_set_ca(d, f->cacert);
  if (rc == 0 && f->mtu) rc = coap_dtls_set_mtu(d, (unsigned)f->mtu);
  if (rc == 0 && f->handshake_timeout_ms) {
    /* Short budgets still see a few resends. */
    unsigned total = f->handshake_timeout_ms;
    rc = coap_dtls_set_handshake_timeouts(d, total < 4000 ? total / 4 : 1000, total);
  }
  if (rc == 0 && f->session_file) rc = coap_dtls_set_session_file(d, f->session_file);
  if (rc == 0 && f->cookie)
    rc = coap_dtls_set_cookie_policy(d, (coap_dtls_cookie_policy_t)(f->cookie - 1), 0);
  if (rc == 0 && f->client_cert_required)
    rc = coap_dtls_set_client_cert(d, COAP_DTLS_CLIENT_CERT_REQUIRED);
  if (rc == 0 && f->cid) rc = security_apply_cid(f, d, server);
  if (rc == 0 && server && f->ticket_key_file) rc = security_apply_ticket_keys(f, d);
  if (rc == 0 && server && f->node_id) rc = coap_dtls_set_cid_node(d, (unsigned)(f->node_id - 1));
  return rc;
}

int security_flags_apply(const security_flags_t *f, coap_context_t *ctx, int server) {
  if (!f->any) return 0;
  if (refuse_directory("--cert", f->cert, "the certificate file") < 0 ||
      refuse_directory("--key", f->key, "the private key file") < 0)
    return EXIT_CONFIG;
  coap_dtls_context_t *d = coap_dtls_new_context(ctx);
  if (!d) {
    cli_error("out of memory");
    return EXIT_SECURITY;
  }
  /* The library logs what it refuses; the tool says it once, below. */
  cli_log_quiet = 1;
  int rc = security_flags_build(f, d, server, f->psk_table);
  cli_log_quiet = 0;
  if (rc < 0) {
    cli_error("%s", coap_dtls_context_last_error(d));
    return EXIT_CONFIG; /* nothing was sent: a local configuration mistake */
  }
  coap_context_set_dtls_context(ctx, d);
  return 0;
}

static void print_hex(const uint8_t *b, size_t n) {
  if (!n) fputs("(empty)", stderr);
  for (size_t i = 0; i < n; i++) fprintf(stderr, "%02x", b[i]);
}

void security_print_cid(coap_context_t *ctx) {
  coap_stats_t st;
  coap_context_get_stats(ctx, &st);
  coap_dtls_cid_info_t info;
  if (!st.dtls_handshakes || coap_dtls_last_cid(coap_context_dtls(ctx), &info) < 0) return;
  if (!info.negotiated) {
    fprintf(stderr, "coaps: Connection ID: not negotiated\n");
    return;
  }
  fprintf(stderr, "coaps: Connection ID: negotiated; ours ");
  print_hex(info.own, info.own_len);
  fprintf(stderr, ", the server's ");
  print_hex(info.peer, info.peer_len);
  fputc('\n', stderr);
}

void security_print_cid_stats(int verbose, long n, coap_context_t *(*ctx_of)(const void *, long),
                              const void *arg) {
  coap_dtls_cid_stats_t sum = {0}, one;
  for (long i = 0; i < n; i++) {
    if (coap_dtls_cid_stats(coap_context_dtls(ctx_of(arg, i)), &one) < 0) continue;
    sum.sessions += one.sessions;
    sum.moves += one.moves;
    sum.held += one.held;
  }
  log_field_t fields[] = {LOG_COUNT("cid_sessions", sum.sessions),
                          LOG_COUNT("cid_address_moves", sum.moves),
                          LOG_COUNT("cid_datagrams_held", sum.held)};
  if (verbose && (sum.sessions || sum.moves))
    tool_log("info", fields, 3,
             "Connection ID: %llu sessions, %llu address moves, %llu datagrams held for "
             "unconfirmed addresses",
             (unsigned long long)sum.sessions, (unsigned long long)sum.moves,
             (unsigned long long)sum.held);
}
