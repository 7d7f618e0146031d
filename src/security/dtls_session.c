/* One DTLS 1.2 session, sans-I/O: GnuTLS pulls the datagram we were given
 * and pushes records to our send callback; time comes from the caller. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "security/dtls_internal.h"

/* gnutls_dtls_get_timeout() may return 0 again and again while records
 * are discarded; never poll faster than this. */
#define RETRANSMIT_FLOOR_MS 10
#define RECORD_MAX 16384

struct coap_dtls_session {
  gnutls_session_t tls;
  coap_dtls_context_t *d;
  coap_dtls_session_cb_t cb;
  void *user;
  const uint8_t *in;   /* the datagram GnuTLS may pull, NULL once taken */
  size_t in_len;
  int client, established, failed;
  uint64_t deadline;        /* handshake gives up */
  uint64_t next_retransmit; /* GnuTLS wants to be called again */
  unsigned verify_status;   /* GnuTLS status bits when the peer's
                               certificate was rejected */
  int no_peer_cert;         /* rejected because none was sent */
  char untrusted_rpk[112];  /* fingerprint of a raw key not in the list */
  char peer_rpk[112];       /* fingerprint of the peer's accepted raw key */
  char server_name[256];
  char error[384];
};

/* ---- transport callbacks ---- */

static ssize_t push(gnutls_transport_ptr_t ptr, const void *data, size_t len) {
  coap_dtls_session_t *s = ptr;
  /* A datagram lost here is like one lost on the way: DTLS retransmits. */
  (void)s->cb.send(s->user, data, len);
  return (ssize_t)len;
}

static ssize_t pull(gnutls_transport_ptr_t ptr, void *buf, size_t size) {
  coap_dtls_session_t *s = ptr;
  if (!s->in) {
    gnutls_transport_set_errno(s->tls, EAGAIN);
    return -1;
  }
  size_t n = s->in_len < size ? s->in_len : size;
  memcpy(buf, s->in, n);
  s->in = NULL;
  return (ssize_t)n;
}

/* Must never block: there is data or there is not. */
static int pull_timeout(gnutls_transport_ptr_t ptr, unsigned ms) {
  (void)ms;
  return ((coap_dtls_session_t *)ptr)->in ? 1 : 0;
}

/* ---- failure classification ---- */

static void say(coap_dtls_session_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(coap_dtls_session_t *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->error, sizeof s->error, fmt, ap);
  va_end(ap);
}

static void describe_alert(coap_dtls_session_t *s) {
  gnutls_alert_description_t a = gnutls_alert_get(s->tls);
  if (s->client && gnutls_certificate_client_get_request_status(s->tls) &&
      !s->d->has_cert && !s->d->has_rpk) {
    say(s, "the server requires a client certificate and none is configured "
           "(alert %d, %s): give a certificate and key (--cert/--key) or a raw key (--rpk)",
        (int)a, gnutls_alert_get_name(a));
    return;
  }
  const char *name = gnutls_alert_get_name(a);
  const char *hint = "";
  switch ((int)a) {
    case GNUTLS_A_HANDSHAKE_FAILURE:
      hint = ": no security mode or cipher suite in common (e.g. PSK offered, "
             "certificates expected)";
      break;
    case GNUTLS_A_BAD_CERTIFICATE:
    case GNUTLS_A_UNKNOWN_CA:
    case GNUTLS_A_CERTIFICATE_EXPIRED:
    case GNUTLS_A_CERTIFICATE_UNKNOWN:
      hint = s->client ? ": the server rejected our certificate (or requires one)"
                       : ": the client rejected our certificate (untrusted CA, "
                         "expired, or wrong name)";
      break;
    case GNUTLS_A_DECRYPT_ERROR:
      hint = ": the pre-shared keys differ";
      break;
    case GNUTLS_A_UNKNOWN_PSK_IDENTITY:
    case GNUTLS_A_INTERNAL_ERROR:
      hint = s->client ? ": the server may not know our PSK identity" : "";
      break;
    default: break;
  }
  say(s, "the peer ended the handshake with alert %d (%s)%s", (int)a,
      name ? name : "unknown", hint);
}

static void describe_verification(coap_dtls_session_t *s) {
  unsigned status = s->verify_status;
  gnutls_datum_t text = {NULL, 0};
  if (s->untrusted_rpk[0]) {
    say(s, "the %s raw public key is not trusted here (%s); pin it with "
           "coap_dtls_add_trusted_rpk / --trust-rpk if it is the right peer",
        s->client ? "server's" : "client's", s->untrusted_rpk);
    return;
  }
  if (s->no_peer_cert) {
    say(s, s->client ? "the server sent no certificate"
                     : "the client sent no certificate, and one is required");
    return;
  }
  if (status &&
      gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) == 0) {
    say(s, "the %s certificate was rejected: %s", s->client ? "server's" : "client's",
        (const char *)text.data);
    gnutls_free(text.data);
  } else {
    say(s, "the %s certificate could not be verified",
        s->client ? "server's" : "client's");
  }
}

/* Record why the handshake failed and return the error to report. */
static int handshake_failed(coap_dtls_session_t *s, int rc) {
  s->failed = 1;
  switch (rc) {
    case GNUTLS_E_FATAL_ALERT_RECEIVED:
      describe_alert(s);
      return COAP_E_DTLS_HANDSHAKE;
    case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR:
    case GNUTLS_E_CERTIFICATE_ERROR:
      describe_verification(s);
      break;
    case GNUTLS_E_NO_CIPHER_SUITES:
    case GNUTLS_E_UNKNOWN_CIPHER_SUITE:
    case GNUTLS_E_INSUFFICIENT_CREDENTIALS:
    case GNUTLS_E_NO_COMMON_KEY_SHARE:
      say(s, "no security mode or cipher suite in common with the peer (%s)",
          gnutls_strerror(rc));
      break;
    case GNUTLS_E_NO_CERTIFICATE_FOUND:
      say(s, "the client sent no certificate, and one is required here");
      /* RFC 5246 §7.4.6: the answer to a missing client certificate. */
      gnutls_alert_send(s->tls, GNUTLS_AL_FATAL, GNUTLS_A_HANDSHAKE_FAILURE);
      return COAP_E_DTLS_HANDSHAKE;
    case GNUTLS_E_KEYFILE_ERROR: /* what the PSK lookup failing turns into */
      say(s, "the client's PSK identity is not known here");
      break;
    case GNUTLS_E_TIMEDOUT:
      say(s, "the handshake timed out: the peer stopped answering");
      return COAP_E_DTLS_TIMEOUT;
    default:
      say(s, "%s", gnutls_strerror(rc));
      break;
  }
  /* Tell the peer, or it only sees silence until its own timeout. */
  gnutls_alert_send_appropriate(s->tls, rc);
  return COAP_E_DTLS_HANDSHAKE;
}

/* ---- peer certificate checks ---- */

/* GnuTLS calls this with the peer's certificate during the handshake: the
 * chain, the validity dates and (client side) the host name are checked
 * here, so the reason for a rejection can be reported. Returns 0 to go on,
 * -1 to fail the handshake (GnuTLS sends bad_certificate). */
int coap_dtls_verify_peer(gnutls_session_t tls) {
  coap_dtls_session_t *s = gnutls_transport_get_ptr(tls);
  const coap_dtls_context_t *d = s->d;
  unsigned n = 0;
  const gnutls_datum_t *peers = gnutls_certificate_get_peers(tls, &n);
  if (n > 0 && gnutls_certificate_type_get2(tls, GNUTLS_CTYPE_PEERS) == GNUTLS_CRT_RAWPK) {
    if (coap_dtls_rpk_trusted(d, peers[0].data, peers[0].size)) {
      coap_dtls_spki_fingerprint(&peers[0], s->peer_rpk, sizeof s->peer_rpk);
      return 0;
    }
    coap_dtls_spki_fingerprint(&peers[0], s->untrusted_rpk, sizeof s->untrusted_rpk);
    return -1;
  }
  if (n == 0) {
    int required = s->client || d->client_cert == COAP_DTLS_CLIENT_CERT_REQUIRED;
    s->no_peer_cert = required;
    return required ? -1 : 0;
  }
  if (!d->has_ca) { /* an X.509 certificate and no CA to check it with */
    s->verify_status = GNUTLS_CERT_INVALID | GNUTLS_CERT_SIGNER_NOT_FOUND;
    return -1;
  }
  const char *name = s->client && d->verify_name && s->server_name[0] ? s->server_name : NULL;
  unsigned status = 0;
  if (gnutls_certificate_verify_peers3(tls, name, &status) < 0 || status) {
    s->verify_status = status ? status : GNUTLS_CERT_INVALID;
    return -1;
  }
  return 0;
}

/* ---- creation ---- */

static int literal_address(const char *name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/* A client asks only for what it can check: a server raw key when pinned
 * keys are its only trust, and offers only a raw key of its own when it
 * has no certificate. Servers take the common priority. */
static int set_priority(coap_dtls_session_t *s, const coap_dtls_context_t *d) {
  int rpk_trust_only = (d->n_trusted_rpk || d->rpk_verify) && !d->has_ca;
  int rpk_own_only = d->has_rpk && !d->has_cert;
  if (!s->client || (!rpk_trust_only && !rpk_own_only))
    return gnutls_priority_set(s->tls, d->priority);
  char text[1024];
  snprintf(text, sizeof text, "%s%s%s", d->priority_string,
           rpk_trust_only ? ":-CTYPE-SRV-ALL:+CTYPE-SRV-RAWPK" : "",
           rpk_own_only ? ":-CTYPE-CLI-ALL:+CTYPE-CLI-RAWPK" : "");
  return gnutls_priority_set_direct(s->tls, text, NULL);
}

static int session_init(coap_dtls_context_t *d, int client,
                        const coap_dtls_session_cb_t *cb, void *user, uint64_t now,
                        coap_dtls_session_t **out) {
  coap_dtls_session_t *s = calloc(1, sizeof(*s));
  if (!s) return COAP_E_NOMEM;
  s->d = d;
  s->cb = *cb;
  s->user = user;
  s->client = client;
  s->deadline = now + d->total_ms;
  s->next_retransmit = UINT64_MAX;
  unsigned flags = (client ? GNUTLS_CLIENT : GNUTLS_SERVER) | GNUTLS_DATAGRAM | GNUTLS_NONBLOCK;
  if (d->has_rpk || d->n_trusted_rpk || d->rpk_verify) flags |= GNUTLS_ENABLE_RAWPK;
  if (gnutls_init(&s->tls, flags) < 0) {
    free(s);
    return COAP_E_NOMEM;
  }
  gnutls_session_set_ptr(s->tls, d);
  gnutls_transport_set_ptr(s->tls, s);
  gnutls_transport_set_push_function(s->tls, push);
  gnutls_transport_set_pull_function(s->tls, pull);
  gnutls_transport_set_pull_timeout_function(s->tls, pull_timeout);
  gnutls_dtls_set_mtu(s->tls, d->mtu);
  gnutls_dtls_set_timeouts(s->tls, d->retransmit_ms, d->total_ms);
  int rc = set_priority(s, d);
  /* A client needs its own identity; a server a table or a lookup. */
  if (rc >= 0 && (d->n_psk || (!client && d->psk_lookup)))
    rc = gnutls_credentials_set(s->tls, GNUTLS_CRD_PSK,
                                client ? (void *)d->psk_client : (void *)d->psk_server);
  if (rc >= 0 && d->cert) rc = gnutls_credentials_set(s->tls, GNUTLS_CRD_CERTIFICATE, d->cert);
  if (rc < 0) {
    gnutls_deinit(s->tls);
    free(s);
    return COAP_E_DTLS_HANDSHAKE;
  }
  *out = s;
  return 0;
}

static int drive_handshake(coap_dtls_session_t *s, uint64_t now);

int coap_dtls_session_new_client(coap_dtls_context_t *d, const char *server_name,
                                 const coap_dtls_session_cb_t *cb, void *user,
                                 uint64_t now, coap_dtls_session_t **out) {
  if (!coap_dtls_can_connect(d)) return COAP_E_DTLS_NO_CREDENTIALS;
  coap_dtls_session_t *s;
  int rc = session_init(d, 1, cb, user, now, &s);
  if (rc < 0) return rc;
  if (server_name) snprintf(s->server_name, sizeof s->server_name, "%s", server_name);
  if (s->server_name[0] && !literal_address(s->server_name))
    gnutls_server_name_set(s->tls, GNUTLS_NAME_DNS, s->server_name, strlen(s->server_name));
  const gnutls_datum_t *resume = coap_dtls_cache_find(d, s->server_name);
  if (resume) gnutls_session_set_data(s->tls, resume->data, resume->size);
  *out = s;
  rc = drive_handshake(s, now); /* sends the ClientHello */
  if (rc < 0) {
    coap_dtls_session_free(s);
    *out = NULL;
  }
  return rc;
}

int coap_dtls_session_new_server(coap_dtls_context_t *d,
                                 const coap_dtls_session_cb_t *cb, void *user,
                                 uint64_t now, coap_dtls_session_t **out) {
  if (!coap_dtls_can_serve(d)) return COAP_E_DTLS_NO_CREDENTIALS;
  coap_dtls_session_t *s;
  int rc = session_init(d, 0, cb, user, now, &s);
  if (rc < 0) return rc;
  if (d->cert && (d->has_ca || d->n_trusted_rpk || d->rpk_verify) &&
      d->client_cert != COAP_DTLS_CLIENT_CERT_NONE)
    gnutls_certificate_server_set_request(
        s->tls, d->client_cert == COAP_DTLS_CLIENT_CERT_REQUIRED ? GNUTLS_CERT_REQUIRE
                                                                 : GNUTLS_CERT_REQUEST);
  gnutls_session_ticket_enable_server(s->tls, &d->ticket_key);
  /* Continue the sequence numbers of the stateless cookie exchange. */
  gnutls_dtls_prestate_set(s->tls, &d->prestate);
  *out = s;
  return 0;
}

void coap_dtls_session_free(coap_dtls_session_t *s) {
  if (!s) return;
  gnutls_deinit(s->tls);
  free(s);
}

/* ---- driving ---- */

/* Keep the session (with its ticket) for the next connection. */
static void remember_session(coap_dtls_session_t *s) {
  gnutls_datum_t data = {NULL, 0};
  if (gnutls_session_get_data2(s->tls, &data) < 0) return;
  coap_dtls_cache_store(s->d, s->server_name, &data);
  gnutls_free(data.data);
}

static int drive_handshake(coap_dtls_session_t *s, uint64_t now) {
  int rc;
  do {
    rc = gnutls_handshake(s->tls);
  } while (rc == GNUTLS_E_INTERRUPTED);
  if (rc == 0) {
    s->established = 1;
    s->next_retransmit = UINT64_MAX;
    if (s->d->log && coap_log_enabled(s->d->log, COAP_LOG_INFO))
      coap_logf(s->d->log, COAP_LOG_INFO, NULL, "DTLS %s established: %s%s%s%s",
                s->client ? "client" : "server", coap_dtls_session_suite(s),
                coap_dtls_session_resumed(s) ? " (resumed)" : "",
                s->peer_rpk[0] ? ", peer raw public key " : "", s->peer_rpk);
    if (s->client) remember_session(s);
    if (s->cb.on_established) s->cb.on_established(s->user);
    return 0;
  }
  if (rc == GNUTLS_E_AGAIN || !gnutls_error_is_fatal(rc)) {
    unsigned t = gnutls_dtls_get_timeout(s->tls);
    s->next_retransmit = now + (t < RETRANSMIT_FLOOR_MS ? RETRANSMIT_FLOOR_MS : t);
    return 0;
  }
  return handshake_failed(s, rc);
}

/* Read every record GnuTLS can make of the datagram we were given. */
static int drive_records(coap_dtls_session_t *s) {
  uint8_t buf[RECORD_MAX];
  for (;;) {
    ssize_t n = gnutls_record_recv(s->tls, buf, sizeof buf);
    if (n > 0) {
      if (s->cb.on_data) s->cb.on_data(s->user, buf, (size_t)n);
      continue;
    }
    if (n == 0) {
      say(s, "the peer closed the session (close_notify)");
      return COAP_E_DTLS_CLOSED;
    }
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) return 0;
    if (n == GNUTLS_E_REHANDSHAKE) {
      /* No renegotiation (RFC 7925): refuse politely, keep the session. */
      gnutls_alert_send(s->tls, GNUTLS_AL_WARNING, GNUTLS_A_NO_RENEGOTIATION);
      continue;
    }
    if (!gnutls_error_is_fatal((int)n)) continue;
    say(s, "session failed: %s", gnutls_strerror((int)n));
    s->failed = 1;
    return COAP_E_DTLS_RECORD;
  }
}

int coap_dtls_session_input(coap_dtls_session_t *s, const uint8_t *data, size_t len,
                            uint64_t now) {
  if (s->failed) return COAP_E_DTLS_HANDSHAKE;
  s->in = data;
  s->in_len = len;
  int rc = s->established ? drive_records(s) : drive_handshake(s, now);
  /* A handshake that just completed may have data behind it. */
  if (rc == 0 && s->established && s->in) rc = drive_records(s);
  s->in = NULL;
  return rc;
}

int coap_dtls_session_write(coap_dtls_session_t *s, const uint8_t *data, size_t len) {
  if (!s->established || s->failed) return COAP_E_STATE;
  ssize_t n = gnutls_record_send(s->tls, data, len);
  if (n < 0) return n == GNUTLS_E_LARGE_PACKET ? COAP_E_BUFFER_TOO_SMALL : COAP_E_DTLS_RECORD;
  return 0;
}

uint64_t coap_dtls_session_next_timeout(const coap_dtls_session_t *s) {
  if (s->established || s->failed) return UINT64_MAX;
  return s->next_retransmit < s->deadline ? s->next_retransmit : s->deadline;
}

int coap_dtls_session_handle_timeout(coap_dtls_session_t *s, uint64_t now) {
  if (s->established || s->failed) return 0;
  if (now >= s->deadline) {
    s->failed = 1;
    say(s, "no answer to the handshake within %u ms", s->d->total_ms);
    return COAP_E_DTLS_TIMEOUT;
  }
  if (now < s->next_retransmit) return 0;
  return drive_handshake(s, now);
}

void coap_dtls_session_close(coap_dtls_session_t *s) {
  if (s && s->established && !s->failed) gnutls_bye(s->tls, GNUTLS_SHUT_WR);
}

int coap_dtls_session_established(const coap_dtls_session_t *s) { return s->established; }
int coap_dtls_session_is_client(const coap_dtls_session_t *s) { return s->client; }
const char *coap_dtls_session_error(const coap_dtls_session_t *s) { return s->error; }

const char *coap_dtls_session_suite(const coap_dtls_session_t *s) {
  const char *name = gnutls_cipher_suite_get_name(
      gnutls_kx_get(s->tls), gnutls_cipher_get(s->tls), gnutls_mac_get(s->tls));
  return name ? name : "unknown";
}

int coap_dtls_session_resumed(const coap_dtls_session_t *s) {
  return gnutls_session_is_resumed(s->tls) != 0;
}

/* ---- stateless checks ---- */

#define DTLS_RECORD_HEADER 13
#define CONTENT_HANDSHAKE 22
#define HANDSHAKE_CLIENT_HELLO 1

int coap_dtls_looks_like_record(const uint8_t *data, size_t len) {
  return len >= DTLS_RECORD_HEADER && data[0] >= 20 && data[0] <= 25 && data[1] == 0xFE;
}

int coap_dtls_is_client_hello(const uint8_t *data, size_t len) {
  return coap_dtls_looks_like_record(data, len) && len > DTLS_RECORD_HEADER &&
         data[0] == CONTENT_HANDSHAKE && data[3] == 0 && data[4] == 0 &&
         data[DTLS_RECORD_HEADER] == HANDSHAKE_CLIENT_HELLO;
}

typedef struct cookie_sink {
  coap_dtls_send_fn send;
  void *user;
} cookie_sink_t;

static ssize_t cookie_push(gnutls_transport_ptr_t ptr, const void *data, size_t len) {
  cookie_sink_t *sink = ptr;
  (void)sink->send(sink->user, data, len);
  return (ssize_t)len;
}

int coap_dtls_accept(coap_dtls_context_t *d, const void *addr, size_t addr_len,
                     const uint8_t *data, size_t len, coap_dtls_send_fn send,
                     void *send_user) {
  if (!coap_dtls_is_client_hello(data, len)) return COAP_E_DTLS_RECORD;
  memset(&d->prestate, 0, sizeof d->prestate);
  int rc = gnutls_dtls_cookie_verify(&d->cookie_key, (void *)addr, addr_len,
                                     (void *)data, len, &d->prestate);
  if (rc == 0) return COAP_DTLS_ACCEPT;
  if (rc != GNUTLS_E_BAD_COOKIE) return COAP_E_DTLS_RECORD;
  cookie_sink_t sink = {send, send_user};
  gnutls_dtls_cookie_send(&d->cookie_key, (void *)addr, addr_len, &d->prestate,
                          &sink, cookie_push);
  return COAP_DTLS_COOKIE_SENT;
}
