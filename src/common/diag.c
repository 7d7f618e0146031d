/* The cause table: one row per way a connection fails. The tool prints it,
 * the README's table is checked against it, and every diagnosis starts
 * from its row. */
#include "common/diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "coaps/error.h"

static const coap_cause_info_t causes[COAP_CAUSE_COUNT] = {
    {COAP_CAUSE_NONE, "none", "no failure", "nothing to do", COAP_CLASS_NONE},
    {COAP_CAUSE_NO_CREDENTIALS, "no-credentials",
     "coaps:// needs credentials and none are configured; nothing was sent",
     "give a pre-shared key (--psk-identity ID --psk KEY), the CA that signed the "
     "server's certificate (--cacert FILE) or the server's raw public key (--trust-rpk FILE)",
     COAP_CLASS_CONFIG},
    {COAP_CAUSE_PSK_KEY_MISMATCH, "psk-key-mismatch",
     "wrong pre-shared key: the server knows the identity but its key differs",
     "use the key the server has for this identity (--psk TEXT or --psk-hex HEX: "
     "a text key and its hex spelling are different keys)",
     COAP_CLASS_TRUST},
    {COAP_CAUSE_PSK_UNKNOWN_IDENTITY, "psk-unknown-identity",
     "the server has no key for our PSK identity",
     "use an identity the server knows (--psk-identity), or add it to the server",
     COAP_CLASS_TRUST},
    {COAP_CAUSE_CERT_UNTRUSTED, "cert-untrusted",
     "the peer's certificate is signed by a CA that is not trusted here",
     "give the CA certificate that signed it (--cacert FILE or DIR)", COAP_CLASS_TRUST},
    {COAP_CAUSE_CERT_EXPIRED, "cert-expired", "the peer's certificate has expired",
     "renew the certificate; if it should still be valid, check this machine's clock",
     COAP_CLASS_TRUST},
    {COAP_CAUSE_CERT_NOT_YET_VALID, "cert-not-yet-valid", "the peer's certificate is not valid yet",
     "check this machine's clock (clock skew), or reissue the certificate with an "
     "earlier start date",
     COAP_CLASS_TRUST},
    {COAP_CAUSE_CERT_NAME_MISMATCH, "cert-name-mismatch",
     "the server's certificate does not name the host in the URI",
     "use a host name the certificate names, or reissue it with this name in its "
     "subjectAltName",
     COAP_CLASS_TRUST},
    {COAP_CAUSE_CERT_INVALID, "cert-invalid",
     "the peer's certificate is invalid (bad signature, revoked, weak algorithm or "
     "not usable for TLS)",
     "reissue the certificate", COAP_CLASS_TRUST},
    {COAP_CAUSE_CLIENT_CERT_MISSING, "client-cert-missing",
     "the server requires a client certificate and none was sent",
     "give a certificate and key (--cert FILE --key FILE) or a raw key (--rpk FILE)",
     COAP_CLASS_TRUST},
    {COAP_CAUSE_CLIENT_CERT_REJECTED, "client-cert-rejected",
     "the server rejected the certificate or raw public key we sent",
     "use a certificate from a CA the server trusts, or have the server pin our raw "
     "key; the server's log says why",
     COAP_CLASS_TRUST},
    {COAP_CAUSE_SERVER_CERT_REJECTED, "server-cert-rejected",
     "the client rejected our certificate or raw public key",
     "give the client the CA that signed our certificate (and use a host name it "
     "names), or have it pin our raw key",
     COAP_CLASS_TRUST},
    {COAP_CAUSE_RPK_UNTRUSTED, "rpk-untrusted",
     "the peer's raw public key is not in the trust list",
     "if it is the right peer, pin its key (--trust-rpk FILE, "
     "coap_dtls_add_trusted_rpk); its fingerprint is shown",
     COAP_CLASS_TRUST},
    {COAP_CAUSE_NO_COMMON_SUITE, "no-common-suite",
     "no security mode or cipher suite in common with the peer",
     "configure a mode both sides have: a PSK on both, or certificates (or raw "
     "keys) on both",
     COAP_CLASS_NEGOTIATION},
    {COAP_CAUSE_PORT_UNREACHABLE, "port-unreachable",
     "nothing listens on that UDP port (ICMP port unreachable)",
     "start the server, or check the port: coap:// is 5683 and coaps:// 5684 by default",
     COAP_CLASS_NETWORK},
    {COAP_CAUSE_PLAIN_COAP_PEER, "plain-coap-peer",
     "a plain CoAP server answers on that port: it does not speak DTLS",
     "use coap:// for this port, or the server's coaps:// port (5684 by default)",
     COAP_CLASS_NETWORK},
    {COAP_CAUSE_DTLS_PEER, "dtls-peer", "a DTLS server answers on that port: it expects coaps://",
     "use coaps:// with credentials, or the server's coap:// port (5683 by default)",
     COAP_CLASS_NETWORK},
    {COAP_CAUSE_NO_ANSWER, "no-answer",
     "no answer at all: the host is down, the packets are filtered, or the address "
     "is wrong",
     "check the address and port, that the server runs, and firewalls on the way "
     "(UDP)",
     COAP_CLASS_NO_ANSWER},
    {COAP_CAUSE_MTU, "mtu", "handshake datagrams are lost on the way: larger than the path MTU",
     "use raw public keys (--rpk), a shorter certificate chain, or a smaller MTU "
     "(--mtu 500)",
     COAP_CLASS_NETWORK},
    {COAP_CAUSE_SESSION_LOST, "session-lost",
     "the server lost our session (it restarted, or our address changed without "
     "Connection ID); a new handshake was made",
     "nothing to do: the client reconnects by itself", COAP_CLASS_OTHER},
    {COAP_CAUSE_PEER_CLOSED, "peer-closed", "the peer closed the DTLS session",
     "send the request again: a new handshake follows", COAP_CLASS_OTHER},
    {COAP_CAUSE_PROTOCOL, "protocol-error", "the DTLS handshake failed on a protocol error",
     "run with -v for the details; the peer's log may say more", COAP_CLASS_OTHER},
    {COAP_CAUSE_NAT_REBINDING, "nat-rebinding",
     "encrypted records came from an address with no DTLS session: likely NAT rebinding "
     "(a NAT gave the client a new port), so each move costs the client a new handshake",
     "use DTLS Connection ID on both sides (on by default in coaps; --cid): the session "
     "then survives the move",
     COAP_CLASS_OTHER},
    {COAP_CAUSE_TICKET_KEY_UNKNOWN, "ticket-key-unknown",
     "a client resumed with a session ticket sealed with a key this server does not hold "
     "(rotated out of the ticket key file, or another server's): a full handshake was made",
     "give every server the same --ticket-key-file, and rotate it no faster than clients "
     "come back",
     COAP_CLASS_OTHER},
};

const coap_cause_info_t *coap_cause_info(coap_cause_t cause) {
  if ((int)cause < 0 || cause >= COAP_CAUSE_COUNT) return &causes[0];
  return &causes[cause];
}

const char *coap_cause_name(coap_cause_t cause) {
  return coap_cause_info(cause)->name;
}
const char *coap_cause_str(coap_cause_t cause) {
  return coap_cause_info(cause)->summary;
}

int coap_cause_from_name(const char *name) {
  for (int i = 0; name && i < COAP_CAUSE_COUNT; i++)
    if (strcmp(causes[i].name, name) == 0) return i;
  return -1;
}

const char *coap_step_name(coap_dtls_step_t step) {
  static const char *const names[COAP_STEP_COUNT] = {
      "nothing sent",    "hello",
      "cookie exchange", "cipher suite negotiation",
      "authentication",  "key confirmation (Finished)",
      "established"};
  return (int)step >= 0 && step < COAP_STEP_COUNT ? names[step] : "unknown";
}

const char *coap_detector_name(coap_detector_t d) {
  static const char *const names[COAP_DETECTED_COUNT] = {"nobody", "configuration check",
                                                         "local check", "peer alert", "network"};
  return (int)d >= 0 && d < COAP_DETECTED_COUNT ? names[d] : "unknown";
}

void coap_diag_begin(coap_diag_t *d, coap_cause_t cause, coap_dtls_step_t step, coap_detector_t by,
                     int error) {
  const coap_cause_info_t *info = coap_cause_info(cause);
  memset(d, 0, sizeof(*d));
  d->cause = cause;
  d->step = step;
  d->detected_by = by;
  d->error = error;
  d->alert = -1;
  snprintf(d->explanation, sizeof d->explanation, "%s", info->summary);
  snprintf(d->fix, sizeof d->fix, "%s", info->fix);
}

void coap_diag_explain(coap_diag_t *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->explanation, sizeof d->explanation, fmt, ap);
  va_end(ap);
}

void coap_diag_fix(coap_diag_t *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->fix, sizeof d->fix, fmt, ap);
  va_end(ap);
}
