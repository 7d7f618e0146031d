/* coaps keygen: demo credentials for every coaps:// mode — a P-256 CA, a
 * server and a client certificate signed by it, and a pre-shared key. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "keygen_state.h"
#include "keygen_ticket.h"
#include "options.h"

#define MAX_HOSTS 8
#define VALID_DAYS 365

typedef struct keygen_args {
  const char *out;
  const char *hosts[MAX_HOSTS];
  size_t n_hosts;
  int force;
  const char *ticket_key; /* --ticket-key FILE: only that file */
  const char *state_key;  /* --state-key FILE: only that file */
} keygen_args_t;

#define KEYGEN_SYNOPSIS \
  "[--out DIR] [--host NAME]... [--force] | --ticket-key FILE | --state-key FILE [--force]"

static void keygen_usage(FILE *out) {
  fprintf(out,
          "usage: coaps keygen " KEYGEN_SYNOPSIS
          "\n"
          "\n"
          "  -o, --out DIR      write the files into DIR (default ./coaps-demo-creds)\n"
          "  -H, --host NAME    a name for the server certificate; repeatable (up to\n"
          "                     8; default localhost)\n"
          "  -f, --force        overwrite existing files\n"
          "      --ticket-key FILE  only create the session-ticket key file FILE for\n"
          "                     serve --ticket-key-file, or rotate it when it exists:\n"
          "                     a new current key, the old one kept for one more\n"
          "                     rotation (mode 600, replaced atomically)\n"
          "      --state-key FILE  only create FILE, the key for serve's option\n"
          "                     of that name (--state-key-file): 32 random bytes\n"
          "                     as hex, mode 600. An existing FILE is kept unless\n"
          "                     --force (a state file sealed with the old key\n"
          "                     could no longer be read)\n"
          "  -h, --help         this help\n"
          "\n"
          "Write demo credentials for coaps:// into DIR:\n"
          "  ca-cert.pem, ca-key.pem          a P-256 ECDSA CA\n"
          "  server-cert.pem, server-key.pem  signed by the CA; names: each --host\n"
          "                                   (default localhost), 127.0.0.1, ::1\n"
          "  server-pub.pem                   its public key, to pin as a raw key\n"
          "  client-cert.pem, client-key.pem  signed by the CA (CN coaps-client)\n"
          "  rpk-server-key.pem, rpk-server-pub.pem  raw public key pairs (RFC 7250)\n"
          "  rpk-client-key.pem, rpk-client-pub.pem  (the -pub files are what peers pin)\n"
          "  psk.txt                          identity coaps-demo and a random key (hex)\n"
          "Valid from an hour ago for %d days. Existing files are kept unless --force.\n",
          VALID_DAYS);
}

static int write_file(const keygen_args_t *a, const char *name, const void *data, size_t len,
                      mode_t mode) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", a->out, name);
  if (!a->force && access(path, F_OK) == 0) {
    cli_error("%s exists already (use --force to overwrite)", path);
    return -2;
  }
  /* Created with its final mode: a private key is never readable by
   * others, not even between creation and a chmod. */
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  int ok = fd >= 0 && fchmod(fd, mode) == 0; /* an existing file (--force) too */
  for (size_t done = 0; ok && done < len;) {
    ssize_t n = write(fd, (const char *)data + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += (size_t)n;
  }
  int saved = errno;
  if (fd >= 0 && close(fd) != 0 && ok) {
    ok = 0;
    saved = errno;
  }
  if (!ok) {
    cli_error("cannot write %s: %s", path, strerror(saved));
    return -1;
  }
  printf("wrote %s\n", path);
  return 0;
}

/* -1 on failure, -2 when the file exists and --force was not given. */
static int write_datum(const keygen_args_t *a, const char *name, gnutls_datum_t *d, mode_t mode) {
  int rc = write_file(a, name, d->data, d->size, mode);
  if (!(mode & 0044)) explicit_bzero(d->data, d->size); /* a private key */
  gnutls_free(d->data);
  d->data = NULL;
  return rc;
}

static int new_key(gnutls_x509_privkey_t *key) {
  if (gnutls_x509_privkey_init(key) < 0) return -1;
  return gnutls_x509_privkey_generate(*key, GNUTLS_PK_ECDSA,
                                      GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
}

static int set_serial(gnutls_x509_crt_t crt) {
  uint8_t serial[16];
  if (gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial) < 0) return -1;
  serial[0] &= 0x7F; /* positive */
  return gnutls_x509_crt_set_serial(crt, serial, sizeof serial);
}

/* A certificate for |key| named |cn|, issued by (ca, ca_key) or self-signed. */
static int make_cert(gnutls_x509_crt_t *crt, gnutls_x509_privkey_t key, const char *cn, int is_ca,
                     gnutls_x509_crt_t ca, gnutls_x509_privkey_t ca_key, const keygen_args_t *a) {
  time_t now = time(NULL);
  int rc = gnutls_x509_crt_init(crt);
  if (rc >= 0) rc = gnutls_x509_crt_set_version(*crt, 3);
  if (rc >= 0) rc = set_serial(*crt);
  if (rc >= 0) rc = gnutls_x509_crt_set_activation_time(*crt, now - 3600);
  if (rc >= 0) rc = gnutls_x509_crt_set_expiration_time(*crt, now + VALID_DAYS * 86400L);
  if (rc >= 0)
    rc = gnutls_x509_crt_set_dn_by_oid(*crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, strlen(cn));
  if (rc >= 0) rc = gnutls_x509_crt_set_key(*crt, key);
  if (rc >= 0) rc = gnutls_x509_crt_set_basic_constraints(*crt, is_ca, -1);
  if (rc >= 0)
    rc = gnutls_x509_crt_set_key_usage(*crt, is_ca ? GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN
                                                   : GNUTLS_KEY_DIGITAL_SIGNATURE);
  if (rc >= 0 && !is_ca && a) { /* a server: its names */
    for (size_t i = 0; rc >= 0 && i < a->n_hosts; i++)
      rc = gnutls_x509_crt_set_subject_alt_name(*crt, GNUTLS_SAN_DNSNAME, a->hosts[i],
                                                strlen(a->hosts[i]), GNUTLS_FSAN_APPEND);
    unsigned char v4[4], v6[16];
    inet_pton(AF_INET, "127.0.0.1", v4);
    inet_pton(AF_INET6, "::1", v6);
    if (rc >= 0)
      rc = gnutls_x509_crt_set_subject_alt_name(*crt, GNUTLS_SAN_IPADDRESS, v4, 4,
                                                GNUTLS_FSAN_APPEND);
    if (rc >= 0)
      rc = gnutls_x509_crt_set_subject_alt_name(*crt, GNUTLS_SAN_IPADDRESS, v6, 16,
                                                GNUTLS_FSAN_APPEND);
  }
  if (rc >= 0 && !is_ca)
    rc = gnutls_x509_crt_set_key_purpose_oid(
        *crt, a ? GNUTLS_KP_TLS_WWW_SERVER : GNUTLS_KP_TLS_WWW_CLIENT, 0);
  if (rc >= 0)
    rc = gnutls_x509_crt_sign2(*crt, ca ? ca : *crt, ca ? ca_key : key, GNUTLS_DIG_SHA256, 0);
  return rc;
}

/* The SubjectPublicKeyInfo of |key|, for peers that pin it as a raw key. */
static int export_spki(const keygen_args_t *a, const char *name, gnutls_x509_privkey_t key) {
  gnutls_privkey_t abstract = NULL;
  gnutls_pubkey_t pub = NULL;
  gnutls_datum_t d;
  int rc = gnutls_privkey_init(&abstract) < 0 || gnutls_privkey_import_x509(abstract, key, 0) < 0 ||
                   gnutls_pubkey_init(&pub) < 0 ||
                   gnutls_pubkey_import_privkey(pub, abstract, 0, 0) < 0 ||
                   gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_PEM, &d) < 0
               ? -1
               : write_datum(a, name, &d, 0644);
  if (pub) gnutls_pubkey_deinit(pub);
  if (abstract) gnutls_privkey_deinit(abstract);
  return rc;
}

static int export_pair(const keygen_args_t *a, const char *cert_name, gnutls_x509_crt_t crt,
                       const char *key_name, gnutls_x509_privkey_t key) {
  gnutls_datum_t d;
  int rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d) < 0
               ? -1
               : write_datum(a, cert_name, &d, 0644);
  if (rc < 0) return rc;
  if (gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &d) < 0) return -1;
  return write_datum(a, key_name, &d, 0600);
}

/* An EC P-256 key pair for raw public keys: the private key and its
 * SubjectPublicKeyInfo ("PUBLIC KEY"), the file a peer pins. */
static int write_rpk_pair(const keygen_args_t *a, const char *who) {
  gnutls_x509_privkey_t key = NULL;
  gnutls_privkey_t abstract = NULL;
  gnutls_pubkey_t pub = NULL;
  gnutls_datum_t d;
  char key_name[64], pub_name[64];
  snprintf(key_name, sizeof key_name, "rpk-%s-key.pem", who);
  snprintf(pub_name, sizeof pub_name, "rpk-%s-pub.pem", who);
  int rc = new_key(&key) < 0 || gnutls_privkey_init(&abstract) < 0 ||
                   gnutls_privkey_import_x509(abstract, key, 0) < 0 ||
                   gnutls_pubkey_init(&pub) < 0 ||
                   gnutls_pubkey_import_privkey(pub, abstract, 0, 0) < 0
               ? -1
               : 0;
  if (rc == 0 && gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &d) < 0) rc = -1;
  if (rc == 0) rc = write_datum(a, key_name, &d, 0600);
  if (rc == 0 && gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_PEM, &d) < 0) rc = -1;
  if (rc == 0) rc = write_datum(a, pub_name, &d, 0644);
  if (pub) gnutls_pubkey_deinit(pub);
  if (abstract) gnutls_privkey_deinit(abstract);
  if (key) gnutls_x509_privkey_deinit(key);
  return rc;
}

static int write_psk(const keygen_args_t *a) {
  uint8_t key[16];
  char text[128];
  if (gnutls_rnd(GNUTLS_RND_KEY, key, sizeof key) < 0) return -1;
  int n = snprintf(text, sizeof text, "identity=coaps-demo\nkey_hex=");
  for (size_t i = 0; i < sizeof key; i++)
    n += snprintf(text + n, sizeof text - (size_t)n, "%02x", key[i]);
  n += snprintf(text + n, sizeof text - (size_t)n, "\n");
  int rc = write_file(a, "psk.txt", text, (size_t)n, 0600);
  explicit_bzero(key, sizeof key);
  explicit_bzero(text, sizeof text);
  return rc;
}

static int generate(const keygen_args_t *a) {
  gnutls_x509_privkey_t ca_key = NULL, srv_key = NULL, cli_key = NULL;
  gnutls_x509_crt_t ca = NULL, srv = NULL, cli = NULL;
  int rc = -1;
  if (new_key(&ca_key) < 0 || new_key(&srv_key) < 0 || new_key(&cli_key) < 0 ||
      make_cert(&ca, ca_key, "coaps demo CA", 1, NULL, NULL, NULL) < 0 ||
      make_cert(&srv, srv_key, a->hosts[0], 0, ca, ca_key, a) < 0 ||
      make_cert(&cli, cli_key, "coaps-client", 0, ca, ca_key, NULL) < 0) {
    cli_error("generating keys and certificates failed");
    goto out;
  }
  if ((rc = export_pair(a, "ca-cert.pem", ca, "ca-key.pem", ca_key)) < 0 ||
      (rc = export_pair(a, "server-cert.pem", srv, "server-key.pem", srv_key)) < 0 ||
      (rc = export_spki(a, "server-pub.pem", srv_key)) < 0 ||
      (rc = export_pair(a, "client-cert.pem", cli, "client-key.pem", cli_key)) < 0 ||
      (rc = write_rpk_pair(a, "server")) < 0 || (rc = write_rpk_pair(a, "client")) < 0 ||
      (rc = write_psk(a)) < 0)
    goto out;
out:
  if (ca) gnutls_x509_crt_deinit(ca);
  if (srv) gnutls_x509_crt_deinit(srv);
  if (cli) gnutls_x509_crt_deinit(cli);
  if (ca_key) gnutls_x509_privkey_deinit(ca_key);
  if (srv_key) gnutls_x509_privkey_deinit(srv_key);
  if (cli_key) gnutls_x509_privkey_deinit(cli_key);
  return rc;
}

/* 0, 1 for --help, or -1 on bad usage (already reported). */
static int parse_keygen_args(keygen_args_t *a, int argc, char **argv, cli_options_t *p) {
  static const struct option longopts[] = {
      {"out", required_argument, NULL, 'o'},       {"host", required_argument, NULL, 'H'},
      {"force", no_argument, NULL, 'f'},           {"ticket-key", required_argument, NULL, 'T'},
      {"state-key", required_argument, NULL, 'S'}, {"help", no_argument, NULL, 'h'},
  };
  cli_options_init(p, "keygen", KEYGEN_SYNOPSIS, argc, argv, "o:H:fh", longopts,
                   sizeof longopts / sizeof longopts[0], CLI_NO_SECURITY, " host ");
  int c;
  while ((c = cli_options_next(p)) != CLI_OPTIONS_END) {
    switch (c) {
      case CLI_OPTIONS_BAD: return -1;
      case 'o': a->out = optarg; break;
      case 'H':
        if (a->n_hosts == MAX_HOSTS) {
          cli_error("at most %d --host names", MAX_HOSTS);
          return -1;
        }
        a->hosts[a->n_hosts++] = optarg;
        break;
      case 'f': a->force = 1; break;
      case 'T': a->ticket_key = optarg; break;
      case 'S': a->state_key = optarg; break;
      case 'h': return 1;
    }
  }
  return cli_options_no_operand(p);
}

int cmd_keygen(int argc, char **argv) {
  keygen_args_t a = {.out = "coaps-demo-creds"};
  cli_options_t p;
  int rc = parse_keygen_args(&a, argc, argv, &p);
  if (rc == 1) {
    keygen_usage(stdout);
    return 0;
  }
  if (rc < 0) return cli_usage_error(&p);
  if (a.ticket_key && a.state_key) {
    cli_error("give --ticket-key or --state-key, not both (one file a run)");
    return cli_usage_error(&p);
  }
  if (a.ticket_key) return keygen_ticket_key(a.ticket_key);
  if (a.state_key) return keygen_state_key(a.state_key, a.force);
  if (a.n_hosts == 0) a.hosts[a.n_hosts++] = "localhost";
  if (mkdir(a.out, 0755) < 0 && errno != EEXIST) {
    cli_error("cannot create directory %s: %s", a.out, strerror(errno));
    return EXIT_USAGE;
  }
  rc = generate(&a);
  return rc == -2 ? EXIT_USAGE : rc < 0 ? EXIT_SECURITY : 0;
}
