/* Why a DTLS handshake failed, in the terms of the cause table: GnuTLS
 * errors, the alerts peers send, and what silence or repeated flights mean.
 * The side that finds a problem sends the alert that names it best, so a
 * peer running coaps can tell the user the same cause. */
#include <arpa/inet.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "security/dtls_internal.h"

/* A server that never says "wrong key" (most discard an undecryptable
 * Finished silently, as DTLS wants) shows it only by going on as if our
 * Finished had not come: it sends its hello flight again, or gives up.
 * Loss shows the same as long as every copy of our Finished flight was
 * lost, so the client calls the key wrong only once this many copies
 * were sent early enough that the server's answer had time to come back.
 * At a loss rate p each way that is wrong with probability p^5: 1 in
 * 13 000 handshakes that reach this point at 15 %, 1 in 3 000 at 20 %
 * (copies after the first go out in pairs, so the count is reached
 * after two resends, about 3 s on the usual 1 s, 2 s schedule; the
 * false-verdict rate is measured in tests/sim/test_dtls_lossy.c). */
#define COPIES_FOR_KEY_MISMATCH 5
/* Without a round trip measured, a copy is old enough after this. */
#define ROUND_TRIP_UNKNOWN_MS 1000

coap_diag_t *coap_dtls_diag_start(coap_dtls_session_t *s, coap_cause_t cause, coap_detector_t by) {
  if (!s->diag && !(s->diag = malloc(sizeof(*s->diag)))) return NULL;
  coap_diag_begin(s->diag, cause, s->step, by, COAP_E_DTLS_HANDSHAKE);
  s->diag->is_server = !s->client;
  s->diag->flights = s->flights;
  s->diag->elapsed_ms = (uint32_t)(s->now - s->started);
  return s->diag;
}

/* The RFC 5246 / 4279 names: what peers' logs and specifications say. */
static const char *alert_name(int a) {
  switch (a) {
    case 0: return "close_notify";
    case 10: return "unexpected_message";
    case 20: return "bad_record_mac";
    case 22: return "record_overflow";
    case 40: return "handshake_failure";
    case 42: return "bad_certificate";
    case 43: return "unsupported_certificate";
    case 44: return "certificate_revoked";
    case 45: return "certificate_expired";
    case 46: return "certificate_unknown";
    case 47: return "illegal_parameter";
    case 48: return "unknown_ca";
    case 49: return "access_denied";
    case 50: return "decode_error";
    case 51: return "decrypt_error";
    case 70: return "protocol_version";
    case 71: return "insufficient_security";
    case 80: return "internal_error";
    case 90: return "user_canceled";
    case 100: return "no_renegotiation";
    case 110: return "unsupported_extension";
    case 112: return "unrecognized_name";
    case 115: return "unknown_psk_identity";
    default: return "unknown alert";
  }
}

static void set_alert(coap_diag_t *g, int alert) {
  g->alert = alert;
  snprintf(g->alert_name, sizeof g->alert_name, "%s", alert_name(alert));
}

static int negotiated_psk(const coap_dtls_session_t *s) {
  gnutls_kx_algorithm_t kx = gnutls_kx_get(s->tls);
  return kx == GNUTLS_KX_PSK || kx == GNUTLS_KX_ECDHE_PSK || kx == GNUTLS_KX_DHE_PSK;
}

static const char *our_identity(const coap_dtls_session_t *s) {
  if (!s->client) return s->psk_identity;
  return s->d->n_psk ? s->d->psk[s->d->n_psk - 1].identity : "";
}

static const char *peer_word(const coap_dtls_session_t *s) {
  return s->client ? "server" : "client";
}

void coap_dtls_describe_modes(const coap_dtls_context_t *d, int client, char *out, size_t cap) {
  const char *parts[3];
  size_t n = 0;
  if (d->n_psk || (!client && d->psk_lookup)) parts[n++] = "PSK";
  /* A server names only the key exchanges its certificates serve: one
   * with only an ECDSA certificate must not suggest RSA would work. */
  unsigned kx = client ? COAP_DTLS_KX_ECDSA | COAP_DTLS_KX_RSA : d->cert_kx;
  if (client ? d->has_ca : d->has_cert)
    parts[n++] = (kx & COAP_DTLS_KX_ECDSA) && (kx & COAP_DTLS_KX_RSA)
                     ? "certificates (ECDHE-ECDSA/RSA)"
                 : kx & COAP_DTLS_KX_RSA   ? "certificates (ECDHE-RSA)"
                 : kx & COAP_DTLS_KX_ECDSA ? "certificates (ECDHE-ECDSA)"
                                           : "certificates";
  if (client ? (d->n_trusted_rpk || d->rpk_verify) : d->has_rpk) parts[n++] = "raw public keys";
  if (n == 0) parts[n++] = "nothing";
  snprintf(out, cap, "%s%s%s%s%s", parts[0], n > 1 ? ", " : "", n > 1 ? parts[1] : "",
           n > 2 ? ", " : "", n > 2 ? parts[2] : "");
}

/* ---- the ClientHello's cipher suites, grouped by key exchange ---- */

static const char *suite_kx(unsigned id, const char **suite_name) {
  unsigned char cs[2];
  gnutls_kx_algorithm_t kx;
  for (size_t i = 0;; i++) {
    const char *name = gnutls_cipher_suite_info(i, cs, &kx, NULL, NULL, NULL);
    if (!name) return NULL;
    if (cs[0] == (id >> 8) && cs[1] == (id & 0xFF)) {
      *suite_name = name;
      return gnutls_kx_get_name(kx);
    }
  }
}

void coap_dtls_hello_offer(const uint8_t *data, size_t len, char *out, size_t cap) {
  /* record header 13, handshake header 12, version 2, random 32 */
  size_t off = 13 + 12 + 2 + 32;
  snprintf(out, cap, "an unreadable ClientHello");
  if (len < off + 1) return;
  off += 1 + data[off]; /* session id */
  if (len < off + 1) return;
  off += 1 + data[off]; /* cookie */
  if (len < off + 2) return;
  size_t n = ((size_t)data[off] << 8 | data[off + 1]) / 2;
  off += 2;
  const char *kx_seen[8];
  const char *first[8];
  unsigned count[8];
  size_t groups = 0;
  for (size_t i = 0; i < n && off + 2 * i + 1 < len; i++) {
    unsigned id = (unsigned)data[off + 2 * i] << 8 | data[off + 2 * i + 1];
    const char *name = NULL;
    const char *kx = suite_kx(id, &name);
    if (!kx) continue; /* signalling values, suites GnuTLS does not know */
    size_t g = 0;
    while (g < groups && strcmp(kx_seen[g], kx) != 0) g++;
    if (g == groups) {
      if (groups == 8) continue;
      kx_seen[g] = kx;
      first[g] = name;
      count[g] = 0;
      groups++;
    }
    count[g]++;
  }
  size_t used = 0;
  out[0] = '\0';
  for (size_t g = 0; g < groups && used < cap; g++) {
    int w = snprintf(out + used, cap - used, "%s%s (%s%s)", g ? ", " : "", kx_seen[g], first[g],
                     count[g] > 1 ? " and more" : "");
    if (w < 0) break;
    used += (size_t)w;
  }
  if (!groups) snprintf(out, cap, "no cipher suite known here");
}

/* ---- certificates ---- */

static void format_time(time_t t, char *buf, size_t cap) {
  struct tm tm;
  if (t == (time_t)-1 || !gmtime_r(&t, &tm) ||
      strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
    snprintf(buf, cap, "(unknown)");
}

/* "DNS:a.example, IP:192.0.2.1" and the CN when there is no DNS name. */
static void cert_names(gnutls_x509_crt_t crt, char *out, size_t cap) {
  size_t used = 0;
  out[0] = '\0';
  for (unsigned i = 0; used < cap; i++) {
    char buf[256];
    size_t size = sizeof buf - 1;
    int type = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &size, NULL);
    if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) break;
    if (type < 0) continue;
    char text[72];
    const char *kind = NULL;
    if (type == GNUTLS_SAN_DNSNAME) {
      buf[size] = '\0';
      kind = "DNS";
      snprintf(text, sizeof text, "%.60s", buf);
    } else if (type == GNUTLS_SAN_IPADDRESS && (size == 4 || size == 16)) {
      kind = "IP";
      inet_ntop(size == 4 ? AF_INET : AF_INET6, buf, text, sizeof text);
    }
    if (!kind) continue;
    int w = snprintf(out + used, cap - used, "%s%s:%s", used ? ", " : "", kind, text);
    if (w < 0) break;
    used += (size_t)w;
  }
  if (used) return;
  char cn[128];
  size_t size = sizeof cn;
  if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &size) == 0)
    snprintf(out, cap, "CN:%s (no subjectAltName)", cn);
  else
    snprintf(out, cap, "no names");
}

static void cert_dn(gnutls_x509_crt_t crt, int issuer, char *out, size_t cap) {
  size_t size = cap;
  int rc = issuer ? gnutls_x509_crt_get_issuer_dn(crt, out, &size)
                  : gnutls_x509_crt_get_dn(crt, out, &size);
  if (rc < 0) snprintf(out, cap, "(unreadable)");
}

void coap_dtls_note_chain(coap_dtls_session_t *s, const gnutls_datum_t *peers, unsigned n) {
  coap_handshake_report_t *rep = &s->cs->report;
  rep->n_certs = 0;
  for (unsigned i = 0; i < n && rep->n_certs < COAP_REPORT_MAX_CERTS; i++) {
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0) return;
    if (gnutls_x509_crt_import(crt, &peers[i], GNUTLS_X509_FMT_DER) == 0) {
      coap_peer_cert_info_t *c = &rep->certs[rep->n_certs++];
      cert_dn(crt, 0, c->subject, sizeof c->subject);
      cert_dn(crt, 1, c->issuer, sizeof c->issuer);
      c->not_before = gnutls_x509_crt_get_activation_time(crt);
      c->not_after = gnutls_x509_crt_get_expiration_time(crt);
      cert_names(crt, c->names, sizeof c->names);
    }
    gnutls_x509_crt_deinit(crt);
  }
}

/* The verification said no: name the reason, with what the certificate
 * says, and choose the alert that tells the peer the same. */
static void explain_rejection(coap_dtls_session_t *s, gnutls_x509_crt_t crt, unsigned status) {
  char subject[256], issuer[256], from[40], until[40], clock_now[40], names[256];
  cert_dn(crt, 0, subject, sizeof subject);
  cert_dn(crt, 1, issuer, sizeof issuer);
  format_time(gnutls_x509_crt_get_activation_time(crt), from, sizeof from);
  format_time(gnutls_x509_crt_get_expiration_time(crt), until, sizeof until);
  format_time(time(NULL), clock_now, sizeof clock_now);
  cert_names(crt, names, sizeof names);
  const char *whose = s->client ? "server's" : "client's";
  coap_diag_t *g;
  if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA)) {
    if (!(g = coap_dtls_diag_start(s, COAP_CAUSE_CERT_UNTRUSTED, COAP_DETECTED_LOCAL))) return;
    coap_diag_explain(g,
                      "the %s certificate \"%s\" is issued by \"%s\", which no CA "
                      "configured here vouches for",
                      whose, subject, issuer);
    coap_diag_fix(g, "give the CA certificate of \"%s\" (--cacert FILE or DIR)", issuer);
    set_alert(g, GNUTLS_A_UNKNOWN_CA);
  } else if (status & GNUTLS_CERT_SIGNATURE_FAILURE) {
    /* An issuer of that name is configured, but it did not sign this:
     * typically a CA regenerated under the same name. */
    if (!(g = coap_dtls_diag_start(s, COAP_CAUSE_CERT_UNTRUSTED, COAP_DETECTED_LOCAL))) return;
    coap_diag_explain(g,
                      "the %s certificate \"%s\" is issued by \"%s\", but the CA of "
                      "that name configured here did not sign it (the signature does not "
                      "verify: a different CA with the same name, e.g. regenerated)",
                      whose, subject, issuer);
    coap_diag_fix(g, "give the CA certificate that really signed it (--cacert FILE or DIR)");
    set_alert(g, GNUTLS_A_UNKNOWN_CA);
  } else if (status & (GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED)) {
    int expired = (status & GNUTLS_CERT_EXPIRED) != 0;
    if (!(g = coap_dtls_diag_start(
              s, expired ? COAP_CAUSE_CERT_EXPIRED : COAP_CAUSE_CERT_NOT_YET_VALID,
              COAP_DETECTED_LOCAL)))
      return;
    coap_diag_explain(g,
                      "the %s certificate \"%s\" is %s: valid from %s until %s, and "
                      "this machine's clock says %s",
                      whose, subject, expired ? "expired" : "not valid yet", from, until,
                      clock_now);
    coap_diag_fix(g, expired ? "renew the certificate; if those dates should include "
                               "now, this machine's clock is wrong (check: date -u)"
                             : "check this machine's clock (clock skew, check: date -u); "
                               "if it is right, reissue the certificate with an earlier "
                               "start date");
    set_alert(g, GNUTLS_A_CERTIFICATE_EXPIRED);
  } else if (status & GNUTLS_CERT_UNEXPECTED_OWNER) {
    if (!(g = coap_dtls_diag_start(s, COAP_CAUSE_CERT_NAME_MISMATCH, COAP_DETECTED_LOCAL))) return;
    coap_diag_explain(g, "the server's certificate names %s, not \"%s\"", names,
                      s->cs ? s->cs->server_name : "");
    coap_diag_fix(g,
                  "use a host the certificate names in the URI (%s), or reissue it "
                  "with \"%s\" in its subjectAltName",
                  names, s->cs ? s->cs->server_name : "");
    set_alert(g, GNUTLS_A_BAD_CERTIFICATE);
  } else {
    gnutls_datum_t text = {NULL, 0};
    if (!(g = coap_dtls_diag_start(s, COAP_CAUSE_CERT_INVALID, COAP_DETECTED_LOCAL))) return;
    if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) == 0) {
      coap_diag_explain(g, "the %s certificate \"%s\" was rejected: %s", whose, subject,
                        (const char *)text.data);
      gnutls_free(text.data);
    }
    set_alert(g, GNUTLS_A_BAD_CERTIFICATE);
  }
}

int coap_dtls_check_x509(coap_dtls_session_t *s, const gnutls_datum_t *peers, unsigned n) {
  const coap_dtls_context_t *d = s->d;
  unsigned status = 0;
  if (!d->has_ca) {
    /* A certificate and no CA to check it with: as good as untrusted. */
    status = GNUTLS_CERT_INVALID | GNUTLS_CERT_SIGNER_NOT_FOUND;
  } else {
    const char *name =
        s->client && d->verify_name && s->cs->server_name[0] ? s->cs->server_name : NULL;
    if (gnutls_certificate_verify_peers3(s->tls, name, &status) < 0 && !status)
      status = GNUTLS_CERT_INVALID;
  }
  if (!status) return 0;
  gnutls_x509_crt_t crt;
  if (gnutls_x509_crt_init(&crt) < 0) return -1;
  if (gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) == 0)
    explain_rejection(s, crt, status);
  gnutls_x509_crt_deinit(crt);
  (void)n;
  return -1;
}

/* ---- alerts from the peer ---- */

static int cert_alert(int a) {
  return a == GNUTLS_A_BAD_CERTIFICATE || a == GNUTLS_A_UNSUPPORTED_CERTIFICATE ||
         a == GNUTLS_A_CERTIFICATE_REVOKED || a == GNUTLS_A_CERTIFICATE_EXPIRED ||
         a == GNUTLS_A_CERTIFICATE_UNKNOWN || a == GNUTLS_A_UNKNOWN_CA ||
         a == GNUTLS_A_ACCESS_DENIED;
}

static const char *cert_alert_reason(int a) {
  switch (a) {
    case GNUTLS_A_UNKNOWN_CA: return "it does not trust the CA that signed it";
    case GNUTLS_A_CERTIFICATE_EXPIRED: return "it finds it expired or not valid yet";
    case GNUTLS_A_CERTIFICATE_REVOKED: return "it finds it revoked";
    default:
      return "it does not trust it or finds it invalid (untrusted raw key, "
             "CA, name or dates)";
  }
}

/* The client: did it send a certificate or raw key of its own? (GnuTLS
 * sends none when the server's CertificateRequest names CAs ours is not
 * from.) */
static int sent_own_cert(const coap_dtls_session_t *s) {
  return gnutls_certificate_client_get_request_status(s->tls) &&
         gnutls_certificate_get_ours(s->tls) != NULL;
}

static coap_diag_t *client_alert(coap_dtls_session_t *s, int a) {
  int psk = negotiated_psk(s);
  int requested = gnutls_certificate_client_get_request_status(s->tls) != 0;
  coap_diag_t *g;
  char offered[160];
  if (a == GNUTLS_A_UNKNOWN_PSK_IDENTITY ||
      (a == GNUTLS_A_INTERNAL_ERROR && psk && s->step >= COAP_STEP_AUTHENTICATION)) {
    if (!(g = coap_dtls_diag_start(s, COAP_CAUSE_PSK_UNKNOWN_IDENTITY, COAP_DETECTED_PEER_ALERT)))
      return NULL;
    g->step = COAP_STEP_AUTHENTICATION;
    coap_diag_explain(g, "the server has no key for the PSK identity \"%s\"%s", our_identity(s),
                      a == GNUTLS_A_INTERNAL_ERROR
                          ? " (it answered internal_error, which is what GnuTLS-based "
                            "servers send for an unknown identity)"
                          : "");
  } else if ((a == GNUTLS_A_DECRYPT_ERROR || a == GNUTLS_A_BAD_RECORD_MAC) && psk) {
    if (!(g = coap_dtls_diag_start(s, COAP_CAUSE_PSK_KEY_MISMATCH, COAP_DETECTED_PEER_ALERT)))
      return NULL;
    coap_diag_explain(g,
                      "the server could not decrypt our Finished message: its key for "
                      "identity \"%s\" differs from ours",
                      our_identity(s));
  } else if (a == GNUTLS_A_HANDSHAKE_FAILURE && requested && !sent_own_cert(s)) {
    if (!(g = coap_dtls_diag_start(s, COAP_CAUSE_CLIENT_CERT_MISSING, COAP_DETECTED_PEER_ALERT)))
      return NULL;
    if (s->d->has_cert)
      coap_diag_explain(g,
                        "the server requires a client certificate from a CA it trusts; "
                        "ours is not issued by one of the CAs it named, so none was sent");
    g->step = COAP_STEP_AUTHENTICATION;
  } else if ((a == GNUTLS_A_HANDSHAKE_FAILURE && s->step < COAP_STEP_NEGOTIATION) ||
             a == GNUTLS_A_INSUFFICIENT_SECURITY || a == GNUTLS_A_PROTOCOL_VERSION) {
    if (!(g = coap_dtls_diag_start(s, COAP_CAUSE_NO_COMMON_SUITE, COAP_DETECTED_PEER_ALERT)))
      return NULL;
    coap_dtls_describe_modes(s->d, 1, offered, sizeof offered);
    coap_diag_explain(g,
                      "we offered %s; the server accepts none of it (it probably "
                      "expects another security mode)",
                      offered);
  } else if (cert_alert(a) && sent_own_cert(s)) {
    if (!(g = coap_dtls_diag_start(s, COAP_CAUSE_CLIENT_CERT_REJECTED, COAP_DETECTED_PEER_ALERT)))
      return NULL;
    char fp[112] = "";
    if (s->d->has_rpk && !s->d->has_cert)
      coap_dtls_spki_fingerprint(&s->d->own_spki, fp, sizeof fp);
    coap_diag_explain(g, "the server rejected our %s%s%s: %s",
                      fp[0] ? "raw public key " : "certificate", fp, "",
                      fp[0] ? "it is not in the server's trust list" : cert_alert_reason(a));
    if (fp[0]) coap_diag_fix(g, "have the server pin our raw public key (%s)", fp);
  } else if (cert_alert(a) && requested) {
    g = coap_dtls_diag_start(s, COAP_CAUSE_CLIENT_CERT_MISSING, COAP_DETECTED_PEER_ALERT);
  } else if (a == GNUTLS_A_CLOSE_NOTIFY) {
    g = coap_dtls_diag_start(s, COAP_CAUSE_PEER_CLOSED, COAP_DETECTED_PEER_ALERT);
  } else {
    if (!(g = coap_dtls_diag_start(s, COAP_CAUSE_PROTOCOL, COAP_DETECTED_PEER_ALERT))) return NULL;
    coap_diag_explain(g, "the server ended the handshake with alert %s at the %s step",
                      alert_name(a), coap_step_name(s->step));
  }
  return g;
}

static coap_diag_t *server_alert(coap_dtls_session_t *s, int a) {
  coap_diag_t *g;
  if (cert_alert(a)) {
    if (!(g = coap_dtls_diag_start(s, COAP_CAUSE_SERVER_CERT_REJECTED, COAP_DETECTED_PEER_ALERT)))
      return NULL;
    coap_diag_explain(g, "the client rejected our certificate or raw key: %s",
                      cert_alert_reason(a));
  } else if (a == GNUTLS_A_CLOSE_NOTIFY) {
    g = coap_dtls_diag_start(s, COAP_CAUSE_PEER_CLOSED, COAP_DETECTED_PEER_ALERT);
  } else {
    if (!(g = coap_dtls_diag_start(s, COAP_CAUSE_PROTOCOL, COAP_DETECTED_PEER_ALERT))) return NULL;
    coap_diag_explain(g, "the client ended the handshake with alert %s at the %s step",
                      alert_name(a), coap_step_name(s->step));
  }
  return g;
}

static int server_ignored_finished(coap_dtls_session_t *s, const char *what, uint64_t now);

/* ---- fatal GnuTLS errors ---- */

static int fail_with_alert(coap_dtls_session_t *s, coap_diag_t *g, int alert) {
  if (g && g->alert < 0) set_alert(g, alert);
  gnutls_alert_send(s->tls, GNUTLS_AL_FATAL, (gnutls_alert_description_t)(g ? g->alert : alert));
  return COAP_E_DTLS_HANDSHAKE;
}

static coap_diag_t *no_common_suite(coap_dtls_session_t *s, int rc) {
  coap_diag_t *g = coap_dtls_diag_start(s, COAP_CAUSE_NO_COMMON_SUITE, COAP_DETECTED_LOCAL);
  if (!g) return NULL;
  char ours[160], theirs[320];
  coap_dtls_describe_modes(s->d, s->client, ours, sizeof ours);
  if (!s->client && s->cur) {
    coap_dtls_hello_offer(s->cur, s->cur_len, theirs, sizeof theirs);
    coap_diag_explain(g,
                      "the client offered %s; this server accepts %s, over DTLS 1.2 "
                      "with AEAD ciphers only (AES-CCM, AES-GCM, ChaCha20-Poly1305)",
                      theirs, ours);
  } else {
    coap_diag_explain(g, "no security mode or cipher suite in common: we offered %s (%s)", ours,
                      gnutls_strerror(rc));
  }
  return g;
}

int coap_dtls_diagnose_failure(coap_dtls_session_t *s, int rc, uint64_t now) {
  s->now = now;
  coap_diag_t *g;
  switch (rc) {
    case GNUTLS_E_FATAL_ALERT_RECEIVED: {
      int a = (int)gnutls_alert_get(s->tls);
      g = s->client ? client_alert(s, a) : server_alert(s, a);
      if (g) set_alert(g, a);
      return COAP_E_DTLS_HANDSHAKE;
    }
    case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR:
    case GNUTLS_E_CERTIFICATE_ERROR:
      g = s->diag;
      if (!g && (g = coap_dtls_diag_start(s, COAP_CAUSE_CERT_INVALID, COAP_DETECTED_LOCAL)))
        coap_diag_explain(g, "the %s certificate could not be verified", peer_word(s));
      /* RFC 5246 §7.4.6: a missing client certificate is a handshake_failure. */
      return fail_with_alert(s, g,
                             g && g->cause == COAP_CAUSE_CLIENT_CERT_MISSING
                                 ? GNUTLS_A_HANDSHAKE_FAILURE
                                 : GNUTLS_A_BAD_CERTIFICATE);
    case GNUTLS_E_NO_CIPHER_SUITES:
    case GNUTLS_E_UNKNOWN_CIPHER_SUITE:
    case GNUTLS_E_INSUFFICIENT_CREDENTIALS:
    case GNUTLS_E_NO_COMMON_KEY_SHARE:
    case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
      return fail_with_alert(s, no_common_suite(s, rc), GNUTLS_A_HANDSHAKE_FAILURE);
    case GNUTLS_E_NO_CERTIFICATE_FOUND:
      g = coap_dtls_diag_start(s, COAP_CAUSE_CLIENT_CERT_MISSING, COAP_DETECTED_LOCAL);
      if (g) coap_diag_explain(g, "the client sent no certificate, and one is required here");
      return fail_with_alert(s, g, GNUTLS_A_HANDSHAKE_FAILURE);
    case GNUTLS_E_KEYFILE_ERROR: /* what a failed PSK lookup turns into */
      g = coap_dtls_diag_start(s, COAP_CAUSE_PSK_UNKNOWN_IDENTITY, COAP_DETECTED_LOCAL);
      if (g) {
        g->step = COAP_STEP_AUTHENTICATION;
        coap_diag_explain(g, "the client's PSK identity \"%s\" is not known here", s->psk_identity);
        coap_diag_fix(g,
                      "add identity \"%s\" with its key to this server, or give the "
                      "client an identity it knows",
                      s->psk_identity);
      }
      return fail_with_alert(s, g, GNUTLS_A_UNKNOWN_PSK_IDENTITY);
    case GNUTLS_E_RECEIVED_DISALLOWED_NAME:
      /* libcoap's clients send the URI's host even when it is an IPv6
       * literal; GnuTLS refuses it and cannot be told otherwise. */
      g = coap_dtls_diag_start(s, COAP_CAUSE_PROTOCOL, COAP_DETECTED_LOCAL);
      if (g) {
        g->step = COAP_STEP_HELLO;
        coap_diag_explain(g,
                          "the client sent a TLS server name (SNI) that is not a host "
                          "name, such as an IPv6 address literal (RFC 6066 §3 allows "
                          "only host names), and GnuTLS refuses it");
        coap_diag_fix(g,
                      "let the client reach this server by a host name (an /etc/hosts "
                      "entry will do) or by an IPv4 address, or make it send no server "
                      "name");
      }
      return fail_with_alert(s, g, GNUTLS_A_ILLEGAL_PARAMETER);
    case GNUTLS_E_TIMEDOUT: return coap_dtls_diagnose_stall(s, now);
    case GNUTLS_E_SESSION_EOF:
      if (s->client && s->step == COAP_STEP_FINISHED && negotiated_psk(s) &&
          !gnutls_session_is_resumed(s->tls))
        return server_ignored_finished(s,
                                       "the server closed the handshake without "
                                       "accepting our Finished",
                                       now);
      /* A close_notify in the middle of the handshake: the peer gave it up
       * (libcoap's servers do after a few seconds of loss), no protocol
       * fault of either side. */
      g = coap_dtls_diag_start(s, COAP_CAUSE_PEER_CLOSED, COAP_DETECTED_PEER_ALERT);
      if (g) {
        set_alert(g, GNUTLS_A_CLOSE_NOTIFY);
        coap_diag_explain(g,
                          "the %s closed the connection (close_notify) during the "
                          "handshake, at the %s step: it gave the handshake up",
                          peer_word(s), coap_step_name(s->step));
      }
      return COAP_E_DTLS_HANDSHAKE;
    default:
      if (s->client && s->step == COAP_STEP_FINISHED && negotiated_psk(s) &&
          !gnutls_session_is_resumed(s->tls)) {
        /* The server gave up after our Finished without a fatal alert
         * (libcoap's servers close). */
        char what[160];
        snprintf(what, sizeof what,
                 "the server gave up the handshake without accepting "
                 "our Finished (%s)",
                 gnutls_strerror(rc));
        return server_ignored_finished(s, what, now);
      }
      g = coap_dtls_diag_start(s, COAP_CAUSE_PROTOCOL, COAP_DETECTED_LOCAL);
      if (g) coap_diag_explain(g, "%s", gnutls_strerror(rc));
      /* Tell the peer, or it only sees silence until its own timeout. */
      gnutls_alert_send_appropriate(s->tls, rc);
      return COAP_E_DTLS_HANDSHAKE;
  }
}

/* ---- silence and repetition ---- */

void coap_dtls_note_final_copy(coap_dtls_session_t *s, unsigned copies, uint64_t now) {
  for (unsigned i = 0; i < copies; i++) {
    if (s->final_copies < COAP_DTLS_FINAL_COPIES_KEPT) s->final_at[s->final_copies] = now;
    s->final_copies++;
  }
}

/* Copies of our Finished flight that the server had time to take and
 * answer by |now|: sent at least a round trip (and half again) ago. */
static unsigned copies_answerable(const coap_dtls_session_t *s, uint64_t now) {
  uint64_t wait = s->rtt_ms ? s->rtt_ms + s->rtt_ms / 2 + 10 : ROUND_TRIP_UNKNOWN_MS;
  unsigned n = 0;
  unsigned kept =
      s->final_copies < COAP_DTLS_FINAL_COPIES_KEPT ? s->final_copies : COAP_DTLS_FINAL_COPIES_KEPT;
  for (unsigned i = 0; i < kept; i++)
    if (s->final_at[i] + wait <= now) n++;
  return n;
}

/* The server went on as if our Finished had not come (|what| it did):
 * a wrong key when enough copies could have reached it, else say both
 * what it can mean and that more time or a better path will tell. */
static int server_ignored_finished(coap_dtls_session_t *s, const char *what, uint64_t now) {
  unsigned copies = copies_answerable(s, now);
  coap_diag_t *g;
  if (copies >= COPIES_FOR_KEY_MISMATCH) {
    if (!(g = coap_dtls_diag_start(s, COAP_CAUSE_PSK_KEY_MISMATCH, COAP_DETECTED_NETWORK)))
      return COAP_E_DTLS_HANDSHAKE;
    coap_diag_explain(g,
                      "%s after %u copies of our Finished had time to reach it: it "
                      "cannot decrypt our Finished, so its key for identity \"%s\" "
                      "differs from ours",
                      what, copies, our_identity(s));
    return COAP_E_DTLS_HANDSHAKE;
  }
  if (!(g = coap_dtls_diag_start(s, COAP_CAUSE_PROTOCOL, COAP_DETECTED_NETWORK)))
    return COAP_E_DTLS_HANDSHAKE;
  coap_diag_explain(g,
                    "%s, with only %u copies of our Finished old enough to have reached "
                    "it: either all of them were lost on the way, or its key for identity "
                    "\"%s\" differs from ours (too few copies to tell)",
                    what, copies, our_identity(s));
  coap_diag_fix(g,
                "try again: on a lossy path the next attempt gets through; if it fails "
                "the same way, check that both sides have the same key for \"%s\"",
                our_identity(s));
  return COAP_E_DTLS_HANDSHAKE;
}

static int psk_mismatch_by_repeats(coap_dtls_session_t *s, uint64_t now) {
  char what[96];
  snprintf(what, sizeof what,
           "the server sent its hello flight %u more times after our "
           "Finished",
           s->repeats_after_finished);
  return server_ignored_finished(s, what, now);
}

int coap_dtls_diagnose_stall(coap_dtls_session_t *s, uint64_t now) {
  s->now = now;
  double secs = (double)(now - s->started) / 1000.0;
  coap_diag_t *g;
  /* No "wrong key" here: a repeat after enough copies is judged when it
   * arrives (coap_dtls_watch_input); silence after our copies means the
   * server took one, and only its answer was lost. */
  int certificates = s->client ? (s->d->has_ca || s->d->n_trusted_rpk || s->d->rpk_verify)
                               : s->d->has_cert || s->d->has_rpk;
  /* Answers stopped before the server's certificate arrived: the flight
   * that carries it is the largest of the handshake. */
  if (s->client && s->rx && s->step <= COAP_STEP_NEGOTIATION && certificates) {
    if (!(g = coap_dtls_diag_start(s, COAP_CAUSE_MTU, COAP_DETECTED_NETWORK)))
      return COAP_E_DTLS_TIMEOUT;
    coap_diag_explain(g,
                      "the server answered our first flight (%s) but its next flight, "
                      "which carries its certificate, never arrived whole in %.1f s "
                      "(%u flights sent): datagrams larger than the path MTU are "
                      "probably dropped on the way",
                      s->step == COAP_STEP_NEGOTIATION ? "ServerHello" : "cookie exchange", secs,
                      s->flights);
    coap_diag_fix(g,
                  "lower the server's DTLS MTU (coaps serve --mtu 500, "
                  "coap_dtls_set_mtu), use raw public keys (--rpk) or a shorter "
                  "certificate chain");
  } else if (!s->client && s->step == COAP_STEP_NEGOTIATION && s->rx > 1 &&
             s->largest_datagram > 576) {
    if (!(g = coap_dtls_diag_start(s, COAP_CAUSE_MTU, COAP_DETECTED_NETWORK)))
      return COAP_E_DTLS_TIMEOUT;
    coap_diag_explain(g,
                      "the client kept repeating its ClientHello: our flight (datagrams "
                      "up to %u bytes) does not reach it",
                      s->largest_datagram);
    coap_diag_fix(g,
                  "lower this server's DTLS MTU (--mtu 500, coap_dtls_set_mtu) or "
                  "use raw public keys");
  } else {
    if (!(g = coap_dtls_diag_start(s, COAP_CAUSE_NO_ANSWER, COAP_DETECTED_NETWORK)))
      return COAP_E_DTLS_TIMEOUT;
    if (!s->rx)
      coap_diag_explain(g, "no answer to %u flights over %.1f s", s->flights, secs);
    else
      coap_diag_explain(g,
                        "the %s answered up to the %s step, then went silent; "
                        "%u flights over %.1f s",
                        peer_word(s), coap_step_name(s->step), s->flights, secs);
  }
  g->error = COAP_E_DTLS_TIMEOUT;
  return COAP_E_DTLS_TIMEOUT;
}

#define RECORD_HEADER 13
#define CONTENT_HANDSHAKE 22

int coap_dtls_watch_input(coap_dtls_session_t *s, const uint8_t *data, size_t len, uint64_t now) {
  s->now = now;
  if (!s->client || s->step < COAP_STEP_FINISHED || len <= RECORD_HEADER) return 0;
  /* An epoch-0 ServerHello again, after our Finished went out: the server
   * is still waiting for a Finished it can read. */
  int server_hello = data[0] == CONTENT_HANDSHAKE && data[3] == 0 && data[4] == 0 &&
                     data[RECORD_HEADER] == GNUTLS_HANDSHAKE_SERVER_HELLO;
  if (!server_hello || gnutls_session_is_resumed(s->tls) || !negotiated_psk(s)) return 0;
  s->repeats_after_finished++;
  if (copies_answerable(s, now) < COPIES_FOR_KEY_MISMATCH) return 0;
  s->failed = 1;
  return psk_mismatch_by_repeats(s, now);
}

#define CONTENT_CCS 20

int coap_dtls_watch_discards(coap_dtls_session_t *s, const uint8_t *rec, size_t len,
                             unsigned discarded_before, int last_in_before, uint64_t now) {
  if (s->client || len < RECORD_HEADER || !negotiated_psk(s) ||
      last_in_before != GNUTLS_HANDSHAKE_CLIENT_KEY_EXCHANGE)
    return 0;
  int dropped = gnutls_record_get_discarded(s->tls) != discarded_before;
  int epoch0 = rec[3] == 0 && rec[4] == 0;
  /* A ChangeCipherSpec taken right after the key exchange: from here on
   * the server reads under the new keys. (One dropped was a duplicate.) */
  if (rec[0] == CONTENT_CCS && epoch0 && !dropped) s->ccs_after_kx = 1;
  /* Before that, an epoch-1 record is dropped innocently: a Finished
   * that overtook its ChangeCipherSpec, or came without it (lost). After
   * it, a record under the new keys that does not decrypt proves they
   * differ; loss, duplication and reordering within this handshake
   * cannot make that (a Finished of an earlier handshake of ours that we
   * lost can: docs/architecture.md). */
  if (epoch0 || !dropped || !s->ccs_after_kx) return 0;
  s->failed = 1;
  s->now = now;
  s->step = COAP_STEP_FINISHED;
  coap_diag_t *g = coap_dtls_diag_start(s, COAP_CAUSE_PSK_KEY_MISMATCH, COAP_DETECTED_LOCAL);
  if (g) {
    coap_diag_explain(g,
                      "the client used PSK identity \"%s\", but its key differs from "
                      "ours: its Finished message could not be decrypted",
                      s->psk_identity);
    coap_diag_fix(g, "give the client the key this server has for \"%s\" (or change it here)",
                  s->psk_identity);
  }
  return fail_with_alert(s, g, GNUTLS_A_DECRYPT_ERROR);
}
