/* The CPU cost of one DTLS 1.2 handshake in GnuTLS itself, client and
 * server in one process over memory queues (no sockets, no cookie, no
 * coaps code): the ceiling for handshakes per second per core, against
 * which `coaps-bench --handshakes` figures are read.
 *
 * usage: handshake-cost [--count N] [--json]
 * Prints, for TLS_PSK_WITH_AES_128_CCM_8 and
 * TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 (P-256 certificate, verified by the
 * client), the server's and the client's CPU microseconds per handshake
 * and the server-side limit in handshakes/s. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/dtls.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#define QUEUE_SLOTS 64
#define SLOT_BYTES 1500

/* One direction of the memory "network". */
typedef struct queue {
  unsigned char data[QUEUE_SLOTS][SLOT_BYTES];
  size_t len[QUEUE_SLOTS];
  unsigned head, tail;
} queue_t;

typedef struct end {
  queue_t *in, *out;
} end_t;

static ssize_t push(gnutls_transport_ptr_t p, const void *data, size_t len) {
  end_t *e = p;
  queue_t *q = e->out;
  if (q->tail - q->head == QUEUE_SLOTS || len > SLOT_BYTES) return (ssize_t)len; /* "lost" */
  unsigned i = q->tail++ % QUEUE_SLOTS;
  memcpy(q->data[i], data, len);
  q->len[i] = len;
  return (ssize_t)len;
}

static ssize_t pull(gnutls_transport_ptr_t p, void *buf, size_t size) {
  end_t *e = p;
  queue_t *q = e->in;
  if (q->head == q->tail) {
    errno = EAGAIN;
    return -1;
  }
  unsigned i = q->head++ % QUEUE_SLOTS;
  size_t n = q->len[i] < size ? q->len[i] : size;
  memcpy(buf, q->data[i], n);
  return (ssize_t)n;
}

static int pull_timeout(gnutls_transport_ptr_t p, unsigned ms) {
  end_t *e = p;
  (void)ms;
  return e->in->head != e->in->tail;
}

static double cpu_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static _Noreturn void die(const char *what, int rc) {
  fprintf(stderr, "handshake-cost: %s: %s\n", what, gnutls_strerror(rc));
  exit(1);
}

typedef struct creds {
  gnutls_psk_server_credentials_t psk_server;
  gnutls_psk_client_credentials_t psk_client;
  gnutls_certificate_credentials_t cert_server, cert_client;
} creds_t;

static int psk_lookup(gnutls_session_t s, const char *user, gnutls_datum_t *key) {
  (void)s;
  (void)user;
  key->data = gnutls_malloc(16);
  memset(key->data, 0x42, 16);
  key->size = 16;
  return 0;
}

/* A self-signed P-256 certificate for "bench", trusted by the client. */
static void make_cert_creds(creds_t *c) {
  gnutls_x509_privkey_t key;
  gnutls_x509_crt_t crt;
  int rc;
  if ((rc = gnutls_x509_privkey_init(&key)) < 0 ||
      (rc = gnutls_x509_privkey_generate(
           key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0)) < 0 ||
      (rc = gnutls_x509_crt_init(&crt)) < 0)
    die("key", rc);
  time_t now = time(NULL);
  unsigned char serial[1] = {1};
  gnutls_x509_crt_set_key(crt, key);
  gnutls_x509_crt_set_version(crt, 3);
  gnutls_x509_crt_set_serial(crt, serial, 1);
  gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "bench", 5);
  gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "bench", 5, GNUTLS_FSAN_SET);
  gnutls_x509_crt_set_activation_time(crt, now - 60);
  gnutls_x509_crt_set_expiration_time(crt, now + 86400);
  gnutls_x509_crt_set_basic_constraints(crt, 1, -1);
  if ((rc = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0)) < 0) die("sign", rc);
  gnutls_certificate_allocate_credentials(&c->cert_server);
  gnutls_certificate_allocate_credentials(&c->cert_client);
  if ((rc = gnutls_certificate_set_x509_key(c->cert_server, &crt, 1, key)) < 0) die("cert", rc);
  if ((rc = gnutls_certificate_set_x509_trust(c->cert_client, &crt, 1)) < 0) die("trust", rc);
  gnutls_x509_crt_deinit(crt);
  gnutls_x509_privkey_deinit(key);
}

static void make_creds(creds_t *c) {
  gnutls_datum_t key = {(unsigned char *)"BBBBBBBBBBBBBBBB", 16};
  gnutls_psk_allocate_server_credentials(&c->psk_server);
  gnutls_psk_set_server_credentials_function(c->psk_server, psk_lookup);
  gnutls_psk_allocate_client_credentials(&c->psk_client);
  gnutls_psk_set_client_credentials(c->psk_client, "bench", &key, GNUTLS_PSK_KEY_RAW);
  make_cert_creds(c);
}

static void free_creds(creds_t *c) {
  gnutls_psk_free_server_credentials(c->psk_server);
  gnutls_psk_free_client_credentials(c->psk_client);
  gnutls_certificate_free_credentials(c->cert_server);
  gnutls_certificate_free_credentials(c->cert_client);
}

static gnutls_session_t new_session(int server, int cert, const creds_t *c, end_t *e) {
  gnutls_session_t s;
  gnutls_init(&s, (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_DATAGRAM | GNUTLS_NONBLOCK);
  const char *prio = cert ? "NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+ECDHE-ECDSA:-CIPHER-ALL:"
                            "+AES-128-CCM-8:-MAC-ALL:+AEAD:-GROUP-ALL:+GROUP-SECP256R1"
                          : "NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+PSK:-CIPHER-ALL:"
                            "+AES-128-CCM-8:-MAC-ALL:+AEAD";
  gnutls_priority_set_direct(s, prio, NULL);
  if (cert)
    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, server ? c->cert_server : c->cert_client);
  else
    gnutls_credentials_set(s, GNUTLS_CRD_PSK,
                           server ? (void *)c->psk_server : (void *)c->psk_client);
  if (cert && !server) gnutls_session_set_verify_cert(s, "bench", 0);
  gnutls_transport_set_ptr(s, e);
  gnutls_transport_set_push_function(s, push);
  gnutls_transport_set_pull_function(s, pull);
  gnutls_transport_set_pull_timeout_function(s, pull_timeout);
  gnutls_dtls_set_mtu(s, 1400);
  return s;
}

typedef struct cost {
  double server_us, client_us;
} cost_t;

/* One full handshake; each side's CPU time is added to |cost|. */
static void one_handshake(int cert, const creds_t *c, cost_t *cost) {
  static queue_t to_server, to_client;
  memset(&to_server, 0, sizeof to_server);
  memset(&to_client, 0, sizeof to_client);
  end_t server_end = {&to_server, &to_client}, client_end = {&to_client, &to_server};
  /* Setting a session up and tearing it down is part of the cost. */
  double t0 = cpu_us();
  gnutls_session_t sv = new_session(1, cert, c, &server_end);
  double t1 = cpu_us();
  gnutls_session_t cl = new_session(0, cert, c, &client_end);
  cost->server_us += t1 - t0;
  cost->client_us += cpu_us() - t1;
  int crc = GNUTLS_E_AGAIN, src = GNUTLS_E_AGAIN;
  for (int round = 0; round < 20 && (crc != 0 || src != 0); round++) {
    double r0 = cpu_us();
    if (crc != 0) crc = gnutls_handshake(cl);
    double r1 = cpu_us();
    if (src != 0) src = gnutls_handshake(sv);
    double r2 = cpu_us();
    cost->client_us += r1 - r0;
    cost->server_us += r2 - r1;
    if ((crc < 0 && gnutls_error_is_fatal(crc)) || (src < 0 && gnutls_error_is_fatal(src)))
      die("handshake", crc < 0 && gnutls_error_is_fatal(crc) ? crc : src);
  }
  if (crc != 0 || src != 0) die("handshake did not finish", GNUTLS_E_TIMEDOUT);
  t0 = cpu_us();
  gnutls_deinit(sv);
  t1 = cpu_us();
  gnutls_deinit(cl);
  cost->server_us += t1 - t0;
  cost->client_us += cpu_us() - t1;
}

static cost_t measure(int cert, const creds_t *c, int count) {
  cost_t total = {0, 0};
  one_handshake(cert, c, &total); /* warm-up */
  total = (cost_t){0, 0};
  for (int i = 0; i < count; i++) one_handshake(cert, c, &total);
  total.server_us /= count;
  total.client_us /= count;
  return total;
}

int main(int argc, char **argv) {
  int count = 500, json = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
      count = atoi(argv[++i]);
    else if (strcmp(argv[i], "--json") == 0)
      json = 1;
    else {
      fprintf(stderr, "usage: handshake-cost [--count N] [--json]\n");
      return 64;
    }
  }
  if (count < 1) count = 1;
  creds_t c;
  make_creds(&c);
  cost_t psk = measure(0, &c, count);
  cost_t ecdsa = measure(1, &c, count);
  if (json) {
    printf(
        "{\"count\":%d,\"psk\":{\"server_us\":%.1f,\"client_us\":%.1f,\"server_limit_per_s\":%.0f},"
        "\"ecdhe_ecdsa\":{\"server_us\":%.1f,\"client_us\":%.1f,\"server_limit_per_s\":%.0f}}\n",
        count, psk.server_us, psk.client_us, 1e6 / psk.server_us, ecdsa.server_us, ecdsa.client_us,
        1e6 / ecdsa.server_us);
  } else {
    printf("GnuTLS %s, %d handshakes each, CPU per handshake:\n", gnutls_check_version(NULL),
           count);
    printf(
        "  PSK-AES128-CCM8:          server %7.1f us, client %7.1f us -> server limit %6.0f/s per "
        "core\n",
        psk.server_us, psk.client_us, 1e6 / psk.server_us);
    printf(
        "  ECDHE-ECDSA-AES128-CCM8:  server %7.1f us, client %7.1f us -> server limit %6.0f/s per "
        "core\n",
        ecdsa.server_us, ecdsa.client_us, 1e6 / ecdsa.server_us);
  }
  free_creds(&c);
  return 0;
}
