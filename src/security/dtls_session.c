/* One DTLS 1.2 session, sans-I/O: GnuTLS pulls the datagram we were given
 * and pushes records to our send callback; time comes from the caller. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <gnutls/x509.h>

#include "common/util.h"
#include "security/dtls_internal.h"
#include "security/dtls_state.h"

/* gnutls_dtls_get_timeout() may return 0 again and again while records
 * are discarded; never poll faster than this. */
#define RETRANSMIT_FLOOR_MS 10
#define RECORD_MAX 16384
#define DTLS_RECORD_HEADER 13

/* ---- transport callbacks ---- */

/* The handshake message type of a datagram whose first record is an
 * epoch-0 handshake record; -1 otherwise. */
static int plain_handshake_type(const uint8_t *data, size_t len) {
  if (len <= DTLS_RECORD_HEADER || data[0] != 22 || data[3] || data[4]) return -1;
  return data[DTLS_RECORD_HEADER];
}

static void count_datagram(coap_dtls_session_t *s, const void *data, size_t len) {
  if (s->established) return;
  if (!s->pushed && s->client && plain_handshake_type(data, len) == GNUTLS_HANDSHAKE_CLIENT_HELLO)
    s->hellos_sent++;
  if (!s->pushed) s->flights++;
  s->pushed = 1;
  if (len > s->largest_datagram) s->largest_datagram = (unsigned)len;
}

/* GnuTLS pushes each record of a flight on its own. Sent as they come, a
 * PSK handshake after the cookie exchange is five datagrams from the
 * server and four from the client (with its first ClientHello, five);
 * gathered into datagrams of up to the MTU (RFC 6347 §4.1.1 allows
 * several records in one), it is two and two — fewer sends and wake-ups
 * on both sides, and fewer chances to lose a part of a flight. */
static void gather_start(coap_dtls_session_t *s) {
  coap_dtls_context_t *d = s->d;
  if (d->flight_owner) return; /* another session's drive (never nested today) */
  if (!d->flight) {
    d->flight = malloc(d->mtu);
    if (!d->flight) return;
    d->flight_cap = d->mtu;
  }
  d->flight_len = 0;
  d->flight_owner = s;
}

/* May this datagram go to a peer whose address is not verified? Once
 * GnuTLS has taken the client's Finished, the address is the client's
 * (a forger cannot make a Finished that decrypts). By the time GnuTLS
 * sends the flight that follows it, it has already cleared what it last
 * received (GNUTLS_HANDSHAKE_ANY); before that it says CLIENT_HELLO, the
 * only message a server answers with a flight. */
static int within_budget(coap_dtls_session_t *s, size_t len) {
  if (!s->unverified) return 1;
  gnutls_handshake_description_t in = gnutls_handshake_get_last_in(s->tls);
  if (in == GNUTLS_HANDSHAKE_FINISHED || in == GNUTLS_HANDSHAKE_ANY) {
    s->unverified = 0;
    return 1;
  }
  if (s->unverified_out + len > s->unverified_in) return 0;
  s->unverified_out += len;
  return 1;
}

static void forget_unverified_flight(coap_dtls_session_t *s) {
  free(s->unverified_flight);
  s->unverified_flight = NULL;
  s->unverified_flight_len = 0;
}

/* Kept only while the address is unverified, and only a flight of one
 * datagram (a hello's worth of bytes: more would not be sent anyway). */
static void keep_unverified_flight(coap_dtls_session_t *s, const void *data, size_t len) {
  if (!s->unverified) {
    forget_unverified_flight(s);
    return;
  }
  uint8_t *copy = s->pushed ? NULL : malloc(len); /* a second datagram: keep none */
  if (copy) memcpy(copy, data, len);
  forget_unverified_flight(s);
  s->unverified_flight = copy;
  s->unverified_flight_len = copy ? len : 0;
}

/* A client keeps the datagrams of its current flight (see client_side_t):
 * the first datagram of a drive starts a new copy. */
static void keep_own_flight(coap_dtls_session_t *s, const void *data, size_t len) {
  client_side_t *cs = s->cs;
  if (!cs || cs->own_resending || s->established) return;
  if (!s->pushed) {
    cs->own_flight_len = 0;
    cs->own_dgrams = 0;
    cs->own_sent_at = s->now;
    cs->rx_at_send = s->rx;
    cs->own_resend_ms = 0;
  }
  if (!cs->own_flight && !(cs->own_flight = malloc(COAP_DTLS_OWN_FLIGHT_MAX))) return;
  if (cs->own_dgrams == COAP_DTLS_OWN_FLIGHT_DATAGRAMS ||
      cs->own_flight_len + len > COAP_DTLS_OWN_FLIGHT_MAX) {
    cs->own_dgrams = 0; /* too large to keep whole: keep none */
    cs->own_flight_len = COAP_DTLS_OWN_FLIGHT_MAX;
    return;
  }
  memcpy(cs->own_flight + cs->own_flight_len, data, len);
  cs->own_flight_len += len;
  cs->own_dgram_len[cs->own_dgrams++] = (uint16_t)len;
}

static void send_datagram(coap_dtls_session_t *s, const void *data, size_t len);

/* Give every record of our copy the next sequence numbers of GnuTLS's
 * epoch 0, and move GnuTLS past them: the server drops a record whose
 * number it has seen as a replay. Only plaintext records can be renumbered
 * (under a key the number is bound to the record): returns 0 when the copy
 * holds anything else. */
static int renumber_own_flight(coap_dtls_session_t *s) {
  client_side_t *cs = s->cs;
  for (size_t o = 0; o + DTLS_RECORD_HEADER <= cs->own_flight_len;
       o += DTLS_RECORD_HEADER + ((size_t)cs->own_flight[o + 11] << 8 | cs->own_flight[o + 12]))
    if (cs->own_flight[o + 3] || cs->own_flight[o + 4]) return 0;
  unsigned char seq[8];
  if (gnutls_record_get_state(s->tls, 0, NULL, NULL, NULL, seq) < 0) return 0;
  uint64_t next = 0;
  for (int i = 2; i < 8; i++) next = next << 8 | seq[i];
  for (size_t o = 0; o + DTLS_RECORD_HEADER <= cs->own_flight_len;
       o += DTLS_RECORD_HEADER + ((size_t)cs->own_flight[o + 11] << 8 | cs->own_flight[o + 12])) {
    for (int i = 0; i < 6; i++) cs->own_flight[o + 5 + i] = (uint8_t)(next >> (40 - 8 * i));
    next++;
  }
  for (int i = 7; i >= 2; i--, next >>= 8) seq[i] = (unsigned char)next;
  return gnutls_record_set_state(s->tls, 0, seq) == 0;
}

/* The retransmission timer ran out and GnuTLS sent nothing although the
 * server has answered part of its flight since ours went out: GnuTLS
 * waits for the rest and never resends (RFC 6347 §4.2.4 wants the flight
 * resent while the peer's is incomplete). Send our copy, on a back-off of
 * our own; a server resends its whole flight when our flight comes again. */
static void resend_own_flight(coap_dtls_session_t *s, uint64_t now) {
  client_side_t *cs = s->cs;
  if (!cs || s->pushed || !cs->own_dgrams || s->rx == cs->rx_at_send) return;
  uint32_t wait = cs->own_resend_ms ? cs->own_resend_ms : s->d->retransmit_ms;
  if (now < cs->own_sent_at + wait || !renumber_own_flight(s)) return;
  cs->own_resend_ms = wait * 2 > 60000 ? 60000 : wait * 2;
  cs->own_sent_at = now;
  cs->own_resending = 1;
  size_t off = 0;
  for (unsigned i = 0; i < cs->own_dgrams; i++) {
    send_datagram(s, cs->own_flight + off, cs->own_dgram_len[i]);
    off += cs->own_dgram_len[i];
  }
  cs->own_resending = 0;
  if (s->d->log)
    coap_logf(s->d->log, COAP_LOG_DEBUG, s->peer_name,
              "the server's flight came in part only: our flight sent again");
}

/* A datagram lost here is like one lost on the way: DTLS retransmits. */
static void send_datagram(coap_dtls_session_t *s, const void *data, size_t len) {
  if (!within_budget(s, len)) {
    if (s->d->log)
      coap_logf(s->d->log, COAP_LOG_DEBUG, s->peer_name,
                "%zu bytes to an unverified address held back: it sent only %zu", len,
                s->unverified_in);
    return;
  }
  if (!s->client) keep_unverified_flight(s, data, len);
  keep_own_flight(s, data, len);
  coap_dtls_keep_server_final(s, data, len);
  count_datagram(s, data, len);
  s->sends++;
  (void)s->cb.send(s->user, data, len);
  if (s->send_twice) (void)s->cb.send(s->user, data, len);
}

static void gather_flush(coap_dtls_context_t *d) {
  if (!d->flight_len) return;
  send_datagram(d->flight_owner, d->flight, d->flight_len);
  d->flight_len = 0;
}

static void gather_end(coap_dtls_session_t *s) {
  coap_dtls_context_t *d = s->d;
  if (d->flight_owner != s) return;
  gather_flush(d);
  d->flight_owner = NULL;
}

static ssize_t push(gnutls_transport_ptr_t ptr, const void *data, size_t len) {
  coap_dtls_session_t *s = ptr;
  coap_dtls_context_t *d = s->d;
  /* With a Connection ID towards the peer, GnuTLS's encrypted records go
   * out as tls12_cid (dtls_cid.c), or not at all. */
  uint8_t cid_rec[RECORD_MAX + 64];
  size_t pushed_len = len;
  int n = coap_dtls_cid_push_rewrite(s, data, len, cid_rec, sizeof cid_rec);
  if (n < 0) return (ssize_t)len; /* as if lost: DTLS resends */
  if (n > 0) {
    data = cid_rec;
    len = (size_t)n;
  }
  size_t room = d->mtu < d->flight_cap ? d->mtu : d->flight_cap;
  if (d->flight_owner == s && len <= room) {
    if (d->flight_len + len > room) gather_flush(d);
    memcpy(d->flight + d->flight_len, data, len);
    d->flight_len += len;
    return (ssize_t)pushed_len;
  }
  if (d->flight_owner == s) gather_flush(d); /* keep the records in order */
  send_datagram(s, data, len);
  return (ssize_t)pushed_len;
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

/* ---- peer certificate checks ---- */

/* GnuTLS calls this with the peer's certificate during the handshake: the
 * chain, the validity dates and (client side) the host name are checked
 * here, so the reason for a rejection can be reported. Returns 0 to go on,
 * -1 to fail the handshake (GnuTLS sends bad_certificate). */
static void reach_step(coap_dtls_session_t *s, coap_dtls_step_t step, uint64_t now);

int coap_dtls_verify_peer(gnutls_session_t tls) {
  coap_dtls_session_t *s = gnutls_transport_get_ptr(tls);
  reach_step(s, COAP_STEP_NEGOTIATION, s->now);
  reach_step(s, COAP_STEP_AUTHENTICATION, s->now);
  const coap_dtls_context_t *d = s->d;
  unsigned n = 0;
  const gnutls_datum_t *peers = gnutls_certificate_get_peers(tls, &n);
  if (n > 0 && gnutls_certificate_type_get2(tls, GNUTLS_CTYPE_PEERS) == GNUTLS_CRT_RAWPK) {
    char fp[112];
    coap_dtls_spki_fingerprint(&peers[0], fp, sizeof fp);
    if (s->cs) snprintf(s->cs->report.peer_rpk, sizeof s->cs->report.peer_rpk, "%s", fp);
    if (coap_dtls_rpk_trusted(d, peers[0].data, peers[0].size)) return 0;
    coap_diag_t *g = coap_dtls_diag_start(s, COAP_CAUSE_RPK_UNTRUSTED, COAP_DETECTED_LOCAL);
    if (g) {
      coap_diag_explain(g, "the %s raw public key %s is not in the trust list",
                        s->client ? "server's" : "client's", fp);
      coap_diag_fix(g,
                    "if this is the right %s, pin its key: --trust-rpk FILE "
                    "(coap_dtls_add_trusted_rpk), fingerprint %s",
                    s->client ? "server" : "client", fp);
    }
    return -1;
  }
  if (n == 0) {
    if (!s->client && d->client_cert != COAP_DTLS_CLIENT_CERT_REQUIRED) return 0;
    coap_diag_t *g = coap_dtls_diag_start(
        s, s->client ? COAP_CAUSE_CERT_INVALID : COAP_CAUSE_CLIENT_CERT_MISSING,
        COAP_DETECTED_LOCAL);
    if (g)
      coap_diag_explain(g, s->client ? "the server sent no certificate"
                                     : "the client sent no certificate, and one is required here");
    return -1;
  }
  if (s->cs) coap_dtls_note_chain(s, peers, n);
  return coap_dtls_check_x509(s, peers, n);
}

/* ---- creation ---- */

static int literal_address(const char *name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/* Each role offers and accepts only what its credentials can complete
 * (coap_dtls_role_priority): a GnuTLS server left to the full list picks
 * a certificate suite with no certificate, then fails. */
static int set_priority(coap_dtls_session_t *s, coap_dtls_context_t *d) {
  gnutls_priority_t p = coap_dtls_role_priority(d, s->client);
  return p ? gnutls_priority_set(s->tls, p) : GNUTLS_E_MEMORY_ERROR;
}

static int session_init(coap_dtls_context_t *d, int client, const coap_dtls_session_cb_t *cb,
                        void *user, uint64_t now, coap_dtls_session_t **out) {
  coap_dtls_session_t *s = calloc(1, sizeof(*s));
  if (!s) return COAP_E_NOMEM;
  if (client && !(s->cs = calloc(1, sizeof(*s->cs)))) {
    free(s);
    return COAP_E_NOMEM;
  }
  s->d = d;
  s->cb = *cb;
  s->user = user;
  s->client = client;
  s->started = s->now = now;
  s->deadline = now + d->total_ms;
  s->next_retransmit = UINT64_MAX;
  s->step = client ? COAP_STEP_HELLO : COAP_STEP_COOKIE;
  unsigned flags = (client ? GNUTLS_CLIENT : GNUTLS_SERVER) | GNUTLS_DATAGRAM | GNUTLS_NONBLOCK;
  if (d->has_rpk || d->n_trusted_rpk || d->rpk_verify) flags |= GNUTLS_ENABLE_RAWPK;
  /* A client that will not resume asks for no ticket: the server saves
   * encrypting one, and the handshake a message. */
  if (client && d->no_resume) flags |= GNUTLS_NO_TICKETS;
  if (gnutls_init(&s->tls, flags) < 0) {
    free(s->cs);
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
  if (rc >= 0) rc = coap_dtls_cid_register(s);
  /* A client needs its own identity; a server a table or a lookup. */
  if (rc >= 0 && (d->n_psk || (!client && (d->psk_lookup || d->psk_table))))
    rc = gnutls_credentials_set(s->tls, GNUTLS_CRD_PSK,
                                client ? (void *)d->psk_client : (void *)d->psk_server);
  if (rc >= 0 && d->cert) rc = gnutls_credentials_set(s->tls, GNUTLS_CRD_CERTIFICATE, d->cert);
  if (rc < 0) {
    gnutls_deinit(s->tls);
    free(s->cs);
    free(s);
    return COAP_E_DTLS_HANDSHAKE;
  }
  d->refs++; /* a reload may swap the context's configuration: ours stays */
  *out = s;
  return 0;
}

static int drive_handshake(coap_dtls_session_t *s, uint64_t now);

int coap_dtls_session_new_client(coap_dtls_context_t *d, const char *server_name,
                                 const coap_dtls_session_cb_t *cb, void *user, uint64_t now,
                                 coap_dtls_session_t **out) {
  if (!coap_dtls_can_connect(d)) return COAP_E_DTLS_NO_CREDENTIALS;
  coap_dtls_session_t *s;
  int rc = session_init(d, 1, cb, user, now, &s);
  if (rc < 0) return rc;
  char *name = s->cs->server_name;
  if (server_name) snprintf(name, sizeof s->cs->server_name, "%s", server_name);
  coap_handshake_report_t *rep = &s->cs->report;
  rep->attempted = 1;
  rep->step = COAP_STEP_HELLO;
  snprintf(rep->server_name, sizeof rep->server_name, "%s", name);
  if (name[0] && !literal_address(name))
    gnutls_server_name_set(s->tls, GNUTLS_NAME_DNS, name, strlen(name));
  const gnutls_datum_t *resume = coap_dtls_cache_find(d, name);
  if (resume)
    s->offers_resumption = gnutls_session_set_data(s->tls, resume->data, resume->size) == 0;
  *out = s;
  rc = drive_handshake(s, now); /* sends the ClientHello */
  if (rc < 0) {
    coap_dtls_session_free(s);
    *out = NULL;
  }
  return rc;
}

/* GnuTLS takes one ticket key per session: the key that sealed the
 * ticket the hello brings, when it is one of ours (a previous key of the
 * file opens the tickets of the grace period), else the current key. A
 * hello without a ticket of ours makes a full handshake, whose new ticket
 * is then sealed with the current key. (One whose ticket names a previous
 * key but does not resume — forged, or its suite no longer offered — gets
 * its new ticket sealed with that key: good until the next rotation.) The
 * expiration fixes GnuTLS's time step to the one our names are derived
 * for (COAP_DTLS_TICKET_STEP_S). */
static void enable_tickets(coap_dtls_session_t *s, coap_dtls_context_t *d) {
  int k = d->accepted_ticket && d->accepted_key >= 0 ? d->accepted_key : 0;
  gnutls_datum_t key = {d->ticket_keys[k], COAP_DTLS_TICKET_KEY_LEN};
  gnutls_db_set_cache_expiration(s->tls, (int)COAP_DTLS_TICKET_EXPIRE_S);
  gnutls_session_ticket_enable_server(s->tls, &key);
  s->offered_ticket = d->accepted_ticket;
  s->offered_key = d->accepted_ticket ? d->accepted_key : -1;
}

int coap_dtls_session_new_server(coap_dtls_context_t *d, const coap_dtls_session_cb_t *cb,
                                 void *user, uint64_t now, coap_dtls_session_t **out) {
  if (!coap_dtls_can_serve(d)) return COAP_E_DTLS_NO_CREDENTIALS;
  coap_dtls_session_t *s;
  int rc = session_init(d, 0, cb, user, now, &s);
  if (rc < 0) return rc;
  if (d->cert && (d->has_ca || d->n_trusted_rpk || d->rpk_verify) &&
      d->client_cert != COAP_DTLS_CLIENT_CERT_NONE)
    gnutls_certificate_server_set_request(s->tls, d->client_cert == COAP_DTLS_CLIENT_CERT_REQUIRED
                                                      ? GNUTLS_CERT_REQUIRE
                                                      : GNUTLS_CERT_REQUEST);
  enable_tickets(s, d);
  /* Continue the sequence numbers of the stateless cookie exchange. */
  if (d->prestate_valid) gnutls_dtls_prestate_set(s->tls, &d->prestate);
  s->unverified = s->cookieless = !d->prestate_valid;
  *out = s;
  return 0;
}

void coap_dtls_session_set_peer_name(coap_dtls_session_t *s, const char *name) {
  s->peer_name = name;
}

void coap_dtls_session_follows_old(coap_dtls_session_t *s) {
  if (s && s->client) s->await_hello = 1;
}

/* A datagram for a session that follows an old one, before its
 * ServerHello: is it this handshake's (it begins with an epoch-0
 * HelloVerifyRequest or ServerHello)? */
static int hello_of_this_handshake(coap_dtls_session_t *s, const uint8_t *data, size_t len) {
  if (len <= DTLS_RECORD_HEADER || data[0] != 22 || data[3] || data[4]) return 0;
  uint8_t type = data[DTLS_RECORD_HEADER];
  if (type == GNUTLS_HANDSHAKE_SERVER_HELLO) s->await_hello = 0;
  return type == GNUTLS_HANDSHAKE_SERVER_HELLO || type == GNUTLS_HANDSHAKE_HELLO_VERIFY_REQUEST;
}

void coap_dtls_session_free(coap_dtls_session_t *s) {
  if (!s) return;
  if (s->tls) gnutls_deinit(s->tls);
  if (s->keys) {
    coap_dtls_keys_free(s->keys);
    free(s->keys);
  }
  free(s->unverified_flight);
  coap_dtls_forget_server_final(s);
  if (s->cs) free(s->cs->own_flight);
  free(s->cs);
  free(s->diag);
  /* Our reference (session_init), without the logger copy that a
   * context letting go makes. */
  if (s->d->refs > 1)
    s->d->refs--;
  else
    coap_dtls_context_free(s->d);
  free(s);
}

/* ---- driving ---- */

/* Keep the session (with its ticket) for the next connection. */
static void remember_session(coap_dtls_session_t *s) {
  gnutls_datum_t data = {NULL, 0};
  if (gnutls_session_get_data2(s->tls, &data) < 0) return;
  coap_dtls_cache_store(s->d, s->cs->server_name, &data);
  gnutls_free(data.data);
}

static void note_negotiated(coap_dtls_session_t *s);

static void reach_step(coap_dtls_session_t *s, coap_dtls_step_t step, uint64_t now) {
  if (step <= s->step) return;
  s->step = step;
  if (!s->cs) return;
  coap_handshake_report_t *rep = &s->cs->report;
  rep->step = step;
  uint64_t ms = now - s->started;
  rep->step_ms[step] = (uint32_t)(ms ? ms : 1);
  if (step == COAP_STEP_COOKIE) rep->cookie = 1;
  if (step == COAP_STEP_NEGOTIATION && s->client) note_negotiated(s);
}

/* The handshake messages seen so far tell how far it got. */
static void track_step(coap_dtls_session_t *s, uint64_t now) {
  int in = (int)gnutls_handshake_get_last_in(s->tls);
  int out = (int)gnutls_handshake_get_last_out(s->tls);
  switch (in) {
    case GNUTLS_HANDSHAKE_HELLO_VERIFY_REQUEST: reach_step(s, COAP_STEP_COOKIE, now); break;
    case GNUTLS_HANDSHAKE_SERVER_HELLO:
    case GNUTLS_HANDSHAKE_CLIENT_HELLO: reach_step(s, COAP_STEP_NEGOTIATION, now); break;
    case GNUTLS_HANDSHAKE_CERTIFICATE_PKT:
    case GNUTLS_HANDSHAKE_SERVER_KEY_EXCHANGE:
    case GNUTLS_HANDSHAKE_CERTIFICATE_REQUEST:
    case GNUTLS_HANDSHAKE_SERVER_HELLO_DONE:
    case GNUTLS_HANDSHAKE_CLIENT_KEY_EXCHANGE:
    case GNUTLS_HANDSHAKE_CERTIFICATE_VERIFY:
      reach_step(s, COAP_STEP_NEGOTIATION, now);
      reach_step(s, COAP_STEP_AUTHENTICATION, now);
      break;
    case GNUTLS_HANDSHAKE_FINISHED:
    case GNUTLS_HANDSHAKE_NEW_SESSION_TICKET: reach_step(s, COAP_STEP_FINISHED, now); break;
    default: break;
  }
  if (out == GNUTLS_HANDSHAKE_FINISHED) reach_step(s, COAP_STEP_FINISHED, now);
}

/* What the ServerHello settled: version, suite, mode. */
static void note_negotiated(coap_dtls_session_t *s) {
  coap_handshake_report_t *rep = &s->cs->report;
  const char *v = gnutls_protocol_get_name(gnutls_protocol_get_version(s->tls));
  snprintf(rep->version, sizeof rep->version, "%s", v ? v : "?");
  snprintf(rep->suite, sizeof rep->suite, "%s", coap_dtls_session_suite(s));
  gnutls_kx_algorithm_t kx = gnutls_kx_get(s->tls);
  const char *mode =
      kx == GNUTLS_KX_PSK || kx == GNUTLS_KX_ECDHE_PSK || kx == GNUTLS_KX_DHE_PSK     ? "psk"
      : gnutls_certificate_type_get2(s->tls, GNUTLS_CTYPE_SERVER) == GNUTLS_CRT_RAWPK ? "rpk"
                                                                                      : "x509";
  snprintf(rep->mode, sizeof rep->mode, "%s", mode);
}

static void fill_report(coap_dtls_session_t *s) {
  coap_handshake_report_t *rep = &s->cs->report;
  rep->established = 1;
  rep->resumed = coap_dtls_session_resumed(s);
  rep->flights = s->flights;
  note_negotiated(s);
}

/* Record header, handshake header, client_version: then the random. */
#define HELLO_RANDOM_AT (DTLS_RECORD_HEADER + 12 + 2)

static void keep_hello_random(coap_dtls_session_t *s) {
  gnutls_datum_t client, server;
  gnutls_session_get_random(s->tls, &client, &server);
  if (client.size >= sizeof s->hello_random)
    memcpy(s->hello_random, client.data, sizeof s->hello_random);
}

/* An unfinished handshake reads its client's random from GnuTLS (it has
 * it from the hello that began it); one GnuTLS has not read yet counts as
 * its own, and goes to GnuTLS as before. So does a fragment of a hello
 * other than the first (no random to compare: a small MTU). */
int coap_dtls_session_own_hello(const coap_dtls_session_t *s, const uint8_t *data, size_t len) {
  if (s->client || len < DTLS_RECORD_HEADER + 12) return 0;
  if (data[DTLS_RECORD_HEADER + 6] || data[DTLS_RECORD_HEADER + 7] || data[DTLS_RECORD_HEADER + 8])
    return 1;
  if (len < HELLO_RANDOM_AT + sizeof s->hello_random) return 0;
  const uint8_t *random = s->hello_random;
  if (!s->established && s->tls) {
    gnutls_datum_t client, server;
    gnutls_session_get_random(s->tls, &client, &server);
    if (client.size < sizeof s->hello_random) return 1;
    random = client.data;
  }
  return memcmp(data + HELLO_RANDOM_AT, random, sizeof s->hello_random) == 0;
}

/* A server handshake begun by a hello without a cookie, and its client's
 * hello again with a message_seq past 0: the client answered a cookie
 * request (our load changed between the two, see answers_first_hello):
 * it waits for the answer to that hello, not to the one we took. */
int coap_dtls_session_hello_after_cookie(const coap_dtls_session_t *s, const uint8_t *data,
                                         size_t len) {
  return !s->client && !s->established && s->cookieless && len > DTLS_RECORD_HEADER + 8 &&
         (data[DTLS_RECORD_HEADER + 4] || data[DTLS_RECORD_HEADER + 5]) &&
         !data[DTLS_RECORD_HEADER + 6] && !data[DTLS_RECORD_HEADER + 7] &&
         !data[DTLS_RECORD_HEADER + 8]; /* (a first fragment, or the whole) */
}

/* Connection IDs agreed: counted, remembered for a client's report, and
 * the MTU GnuTLS writes to lowered by what a tls12_cid header adds. */
static void note_cid(coap_dtls_session_t *s) {
  coap_dtls_context_t *d = s->d;
  if (s->client) d->last_client_cid = s->cid; /* also when none was agreed */
  if (!s->cid.on) return;
  d->cid_sessions++;
  if (s->cid.tx_len) gnutls_dtls_set_mtu(s->tls, d->mtu - 1u - s->cid.tx_len);
  if (d->log && coap_log_enabled(d->log, COAP_LOG_INFO)) {
    char own[2 * COAP_DTLS_CID_MAX + 1], peer[2 * COAP_DTLS_CID_MAX + 1];
    coap_hex(s->cid.rx, s->cid.rx_len, own);
    coap_hex(s->cid.tx, s->cid.tx_len, peer);
    coap_logf(d->log, COAP_LOG_INFO, s->peer_name, "Connection ID on: ours %s, the peer's %s",
              s->cid.rx_len ? own : "(empty)", s->cid.tx_len ? peer : "(empty)");
  }
}

void coap_dtls_note_authentic(coap_dtls_session_t *s, uint64_t seq64) {
  if (seq64 <= s->rx_newest) return; /* a replay or a late one: delivered, moves nothing */
  s->rx_newest = seq64;
  if (s->cb.on_fresh) s->cb.on_fresh(s->user);
}

/* Server: a client offered a session ticket and got a full handshake.
 * Its name in none of our keys' (ticket-key-unknown, counted) is the
 * cause an operator can act on; a ticket with a known name that still
 * did not resume (forged, or resuming a suite the client no longer
 * offers) is not that cause, and is said apart. */
static void note_ticket_outcome(coap_dtls_session_t *s) {
  if (s->client || !s->offered_ticket || s->resumed) return;
  s->ticket_refused = s->offered_key < 0;
  if (!s->d->log) return;
  if (s->ticket_refused)
    coap_logf(s->d->log, COAP_LOG_WARNING, s->peer_name,
              "[%s] the client's session ticket was sealed with a key this server does not "
              "hold, so a full handshake was made: its key left the ticket key file (more "
              "than one rotation ago: rotate no faster than clients come back), or it came "
              "from a server with another file, or from one whose clock is a key step (18 h) "
              "ahead: give every server the same --ticket-key-file, reload them all after "
              "each rotation, keep their clocks in time",
              coap_cause_name(COAP_CAUSE_TICKET_KEY_UNKNOWN));
  else
    coap_logf(s->d->log, COAP_LOG_INFO, s->peer_name,
              "the client's session ticket names one of our keys but did not resume "
              "(forged, or its session's suite no longer offered): a full handshake was made");
}

static void established(coap_dtls_session_t *s, uint64_t now) {
  s->established = 1;
  s->rx_authentic++; /* the peer's Finished verified */
  note_cid(s);
  if (!s->client) keep_hello_random(s);
  s->suite = coap_dtls_session_suite(s);
  s->resumed = gnutls_session_is_resumed(s->tls) != 0;
  note_ticket_outcome(s);
  s->mode = coap_dtls_session_mode(s); /* kept for after the GnuTLS state goes */
  s->next_retransmit = UINT64_MAX;
  reach_step(s, COAP_STEP_FINISHED, now);
  reach_step(s, COAP_STEP_ESTABLISHED, now);
  if (s->d->log && coap_log_enabled(s->d->log, COAP_LOG_INFO))
    coap_logf(s->d->log, COAP_LOG_INFO, s->peer_name, "DTLS %s established: %s%s%s%s",
              s->client ? "client" : "server", coap_dtls_session_suite(s),
              coap_dtls_session_resumed(s) ? " (resumed)" : "",
              s->cs && s->cs->report.peer_rpk[0] ? ", peer raw public key " : "",
              s->cs ? s->cs->report.peer_rpk : "");
  if (s->client) {
    fill_report(s);
    remember_session(s);
  }
  if (s->cb.on_established) s->cb.on_established(s->user);
}

/* A client's Finished flight sent again means the server has not taken
 * it yet: from then on each copy goes out twice, so that a lossy path
 * needs far fewer rounds to get one through, and a server that keeps
 * refusing it has seen more copies before we call the key wrong. */
static int resending_final_flight(const coap_dtls_session_t *s) {
  return s->client && s->final_copies > 0;
}

/* What this drive sent: the time of a new flight (for the round trip) or
 * a resend, and each copy of the Finished flight. |resend|: the drive
 * came from the retransmission timer. */
static void note_flight_sent(coap_dtls_session_t *s, int resend, uint64_t now) {
  if (!s->pushed || !s->client) return;
  if (s->step >= COAP_STEP_FINISHED && !s->established) {
    coap_dtls_note_final_copy(s, s->send_twice ? 2 : 1, now);
  } else if (resend) {
    s->flight_resent = 1;
  } else {
    s->flight_at = now;
    s->flight_resent = 0;
  }
}

static int drive_handshake_from(coap_dtls_session_t *s, int resend, uint64_t now) {
  int rc;
  s->pushed = 0;
  s->send_twice = resending_final_flight(s);
  gather_start(s);
  do {
    rc = gnutls_handshake(s->tls);
  } while (rc == GNUTLS_E_INTERRUPTED);
  if (resend && rc == GNUTLS_E_AGAIN) resend_own_flight(s, now);
  gather_end(s);
  track_step(s, now);
  note_flight_sent(s, resend, now);
  s->send_twice = 0;
  if (rc == 0) {
    int refused = coap_dtls_server_check_peer(s); /* credentials.c */
    if (refused < 0) return refused;
    established(s, now);
    return 0;
  }
  if (rc == GNUTLS_E_AGAIN || !gnutls_error_is_fatal(rc)) {
    unsigned t = gnutls_dtls_get_timeout(s->tls);
    s->next_retransmit = now + (t < RETRANSMIT_FLOOR_MS ? RETRANSMIT_FLOOR_MS : t);
    return 0;
  }
  s->failed = 1;
  return coap_dtls_diagnose_failure(s, rc, now);
}

static int drive_handshake(coap_dtls_session_t *s, uint64_t now) {
  return drive_handshake_from(s, 0, now);
}

static int record_failed(coap_dtls_session_t *s, coap_cause_t cause, int err, const char *text) {
  s->failed = 1;
  coap_diag_t *g = coap_dtls_diag_start(
      s, cause, cause == COAP_CAUSE_PEER_CLOSED ? COAP_DETECTED_PEER_ALERT : COAP_DETECTED_LOCAL);
  if (g) {
    g->error = err;
    g->step = COAP_STEP_ESTABLISHED;
    coap_diag_explain(g, "%s", text);
  }
  return err;
}

static int read_records(coap_dtls_session_t *s);

/* Read every record GnuTLS can make of the datagram we were given. Our
 * last handshake flight, if the peer's resend makes GnuTLS send it again
 * from here, goes out gathered too: a flight split into one datagram per
 * record reaches the peer whole far less often on a lossy path. */
static int drive_records(coap_dtls_session_t *s) {
  gather_start(s);
  int rc = read_records(s);
  gather_end(s);
  return rc;
}

static int read_records(coap_dtls_session_t *s) {
  uint8_t buf[RECORD_MAX];
  for (;;) {
    ssize_t n = gnutls_record_recv(s->tls, buf, sizeof buf);
    if (n > 0) {
      s->rx_authentic++;
      s->slim_wanted = !s->d->keep_gnutls;
      coap_dtls_forget_server_final(s); /* the client has our flight */
      if (s->cb.on_data) s->cb.on_data(s->user, buf, (size_t)n);
      continue;
    }
    if (n == 0)
      return record_failed(s, COAP_CAUSE_PEER_CLOSED, COAP_E_DTLS_CLOSED,
                           "the peer closed the session (close_notify)");
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) return 0;
    /* GnuTLS answers a stray handshake record on an established session
     * (the peer's flight resent late) with AGAIN, or with TIMEDOUT once the
     * handshake began longer ago than its timeout: the record is dropped
     * either way, and the session is fine. */
    if (n == GNUTLS_E_TIMEDOUT) return 0;
    if (n == GNUTLS_E_REHANDSHAKE) {
      /* No renegotiation (RFC 7925): refuse politely, keep the session. */
      gnutls_alert_send(s->tls, GNUTLS_AL_WARNING, GNUTLS_A_NO_RENEGOTIATION);
      continue;
    }
    if (!gnutls_error_is_fatal((int)n)) continue;
    /* A server that revoked our identity at a reload refuses a resumed
     * session after its handshake completed for us (credentials.c). */
    if (n == GNUTLS_E_FATAL_ALERT_RECEIVED && s->client &&
        gnutls_alert_get(s->tls) == GNUTLS_A_UNKNOWN_PSK_IDENTITY)
      return record_failed(s, COAP_CAUSE_PSK_UNKNOWN_IDENTITY, COAP_E_DTLS_HANDSHAKE,
                           "the server refused our resumed session with unknown_psk_identity: "
                           "it no longer has a key for our PSK identity (removed from its "
                           "credentials)");
    char text[160];
    snprintf(text, sizeof text, "the session failed: %s", gnutls_strerror((int)n));
    return record_failed(s, COAP_CAUSE_PROTOCOL, COAP_E_DTLS_RECORD, text);
  }
}

/* The peer has sent application data, so it has finished the handshake
 * and needs no flight of ours again (whichever side sent the last one):
 * from now on the session needs only its keys. */
static void go_slim(coap_dtls_session_t *s) {
  s->slim_wanted = 0;
  if (s->slim_refused || s->keys || !s->tls) return;
  coap_dtls_keys_t *k = malloc(sizeof(*k));
  if (!k || coap_dtls_keys_export(s->tls, k) < 0) {
    free(k);
    s->slim_refused = 1; /* e.g. a suite without AEAD: GnuTLS carries on */
    return;
  }
  gnutls_deinit(s->tls);
  s->tls = NULL;
  s->keys = k;
  coap_dtls_forget_server_final(s);
  s->d->compacted++;
}

#define TYPE_ALERT 21
#define TYPE_APPLICATION 23
#define ALERT_FATAL 2

static int slim_alert(coap_dtls_session_t *s, const uint8_t *a, size_t len) {
  if (len < 2) return 0;
  if (a[1] == GNUTLS_A_CLOSE_NOTIFY)
    return record_failed(s, COAP_CAUSE_PEER_CLOSED, COAP_E_DTLS_CLOSED,
                         "the peer closed the session (close_notify)");
  if (a[0] != ALERT_FATAL) return 0;
  char text[96];
  snprintf(text, sizeof text, "the peer ended the session with fatal alert %u", a[1]);
  return record_failed(s, COAP_CAUSE_PROTOCOL, COAP_E_DTLS_RECORD, text);
}

/* Every record of the datagram, on the exported keys. Records of other
 * epochs, replays and forgeries are dropped one by one (RFC 6347 §4.1.2.7). */
static int slim_input(coap_dtls_session_t *s, const uint8_t *data, size_t len) {
  uint8_t plain[RECORD_MAX];
  for (size_t off = 0; off < len;) {
    size_t rec_len, plain_len = sizeof plain;
    uint8_t type;
    uint64_t seq64 = 0;
    int r = coap_dtls_keys_unprotect_cid(s->keys, &s->cid, data + off, len - off, &rec_len, &type,
                                         plain, &plain_len, &seq64);
    if (r == COAP_DTLS_RECORD_MALFORMED) return 0;
    off += rec_len;
    if (r != COAP_DTLS_RECORD_OK) continue;
    s->rx_authentic++;
    coap_dtls_note_authentic(s, seq64);
    if (type == TYPE_APPLICATION && s->cb.on_data) {
      s->cb.on_data(s->user, plain, plain_len);
    } else if (type == TYPE_ALERT) {
      int rc = slim_alert(s, plain, plain_len);
      if (rc < 0) return rc;
    }
    if (s->failed) return COAP_E_DTLS_RECORD;
  }
  return 0;
}

/* The first answer to a flight we sent only once: a round trip no
 * retransmission can have shortened (Karn). The largest sample is kept:
 * the rules it serves must not think a copy had time to arrive when it
 * had not. */
static void note_round_trip(coap_dtls_session_t *s, uint64_t now) {
  if (!s->client || !s->flight_at || s->flight_resent || s->step >= COAP_STEP_FINISHED) return;
  uint64_t rtt = now > s->flight_at ? now - s->flight_at : 1;
  if (rtt > s->rtt_ms) s->rtt_ms = (uint32_t)rtt;
  s->flight_at = 0;
}

/* The bytes of the record at the start of |data|; the rest of the
 * datagram when its header does not add up (GnuTLS then drops it). */
static size_t record_span(const coap_dtls_session_t *s, const uint8_t *data, size_t len) {
  size_t hdr = DTLS_RECORD_HEADER;
  if (data[0] == COAP_DTLS_CT_CID && s->cid.on) hdr = COAP_DTLS_CID_HEADER(s->cid.rx_len);
  if (len < hdr) return len;
  size_t n = hdr + ((size_t)data[hdr - 2] << 8 | data[hdr - 1]);
  return n <= len ? n : len;
}

/* GnuTLS is given one record at a time. Given a whole datagram, it stops
 * at the first record it discards (an old epoch, a replay) and keeps the
 * rest unread until the next datagram: a server whose last flight was
 * lost would not see the Finished behind the client's resent key
 * exchange, and so never resend that flight. One record at a time also
 * tells exactly which record GnuTLS dropped. */
static int input_record(coap_dtls_session_t *s, const uint8_t *rec, size_t len, uint64_t now) {
  /* GnuTLS never sees a Connection ID: tls12_cid records are handed to it
   * in its own format, and records that should have had one are dropped.
   * Record by record, the peer's Finished behind its ChangeCipherSpec is
   * converted only after GnuTLS took the CCS (and has the read keys). */
  uint8_t plain_form[RECORD_MAX + 64];
  int n = coap_dtls_cid_pull_rewrite(s, rec, len, plain_form, sizeof plain_form);
  if (n < 0) return 0;
  if (n > 0) {
    rec = plain_form;
    len = (size_t)n;
  }
  s->in = rec;
  s->in_len = len;
  if (s->established) return drive_records(s);
  unsigned discarded = gnutls_record_get_discarded(s->tls);
  int last_in = (int)gnutls_handshake_get_last_in(s->tls);
  int rc = drive_handshake(s, now);
  if (rc == 0 && !s->established)
    rc = coap_dtls_watch_discards(s, rec, len, discarded, last_in, now);
  /* A handshake that just completed may have data behind it. */
  if (rc == 0 && s->established && s->in) rc = drive_records(s);
  return rc;
}

/* The client of an unverified handshake sent its hello again and GnuTLS
 * answered nothing (it resends only when its own timer runs out, and a
 * datagram arriving restarts that timer): our flight was lost, so it goes
 * again now, as an answer, within the bytes the client has sent. */
static void answer_resent_hello(coap_dtls_session_t *s, const uint8_t *data, size_t len) {
  if (!s->unverified || s->client || s->pushed || !s->unverified_flight ||
      !coap_dtls_is_client_hello(data, len))
    return;
  size_t n = s->unverified_flight_len;
  if (s->unverified_out + n > s->unverified_in) return;
  s->unverified_out += n;
  (void)s->cb.send(s->user, s->unverified_flight, n);
}

/* A resumed client sends the handshake's last flight (its ChangeCipherSpec
 * and Finished), and only the server's flight coming again tells it that
 * ours was lost (RFC 6347 §4.2.4). GnuTLS sends ours again then only if
 * its retransmission timeout has passed since it last did (lib/dtls.c,
 * non-blocking): the server's first repeat, one of its timeouts after its
 * flight, arrives about one of ours after our Finished, and about half
 * the time it is ignored. With the next repeat lost as well the server
 * gives the handshake up (to an address it has not verified it resends no
 * more than the hello paid for), while we hold a session it never had:
 * our requests go unanswered until the silence ends it (seen in
 * interop.lossy_handshakes: a run through three sessions, the server
 * counting a handshake "silent after the Finished step"). So a repeat
 * that GnuTLS left unanswered gets our flight again from our copy, the
 * same bytes (a duplicate, if the first did arrive: dropped as a replay). */
static int server_flight_again(const coap_dtls_session_t *s, const uint8_t *data, size_t len) {
  return s->cs && s->established && s->tls && gnutls_session_is_resumed(s->tls) &&
         len > DTLS_RECORD_HEADER && data[0] == 22 && data[3] == 0 && data[4] == 0 &&
         data[DTLS_RECORD_HEADER] == GNUTLS_HANDSHAKE_SERVER_HELLO;
}

static void resend_final_flight(coap_dtls_session_t *s) {
  client_side_t *cs = s->cs;
  if (!cs->own_dgrams) return; /* not kept (too large) */
  cs->own_resending = 1;
  size_t off = 0;
  for (unsigned i = 0; i < cs->own_dgrams; i++) {
    send_datagram(s, cs->own_flight + off, cs->own_dgram_len[i]);
    off += cs->own_dgram_len[i];
  }
  cs->own_resending = 0;
  if (s->d->log)
    coap_logf(s->d->log, COAP_LOG_DEBUG, s->peer_name,
              "the server's flight came again: our Finished flight sent again");
}

/* A server whose cookie policy depends on its load (when-needed, under
 * load) may ask our first hello for a cookie and, the load lower a moment
 * later, take a copy of that same hello (resent by our timer) without
 * one: its ServerHello then answers our first hello (message_seq 0) while
 * we answered its cookie request and wait for the answer to our second
 * (message_seq 1). GnuTLS fails the handshake on it ("unexpected
 * handshake packet"; 111 clients of cluster_failover under the ASan
 * stage's load). It is dropped: the server replaces that handshake when
 * our hello with the cookie comes (src/context/secure.c), and answers
 * that one. */
static int answers_first_hello(coap_dtls_session_t *s, const uint8_t *data, size_t len) {
  if (!s->client || s->established || len <= DTLS_RECORD_HEADER + 5 || data[0] != 22 || data[3] ||
      data[4])
    return 0;
  uint8_t type = data[DTLS_RECORD_HEADER];
  unsigned seq = (unsigned)data[DTLS_RECORD_HEADER + 4] << 8 | data[DTLS_RECORD_HEADER + 5];
  if (type == GNUTLS_HANDSHAKE_HELLO_VERIFY_REQUEST) s->asked_cookie = 1;
  return s->asked_cookie && type == GNUTLS_HANDSHAKE_SERVER_HELLO && seq == 0;
}

int coap_dtls_session_input(coap_dtls_session_t *s, const uint8_t *data, size_t len, uint64_t now) {
  if (s->failed) return COAP_E_DTLS_HANDSHAKE;
  if (s->await_hello && !s->established && !hello_of_this_handshake(s, data, len)) {
    if (s->d->log)
      coap_logf(s->d->log, COAP_LOG_DEBUG, s->peer_name,
                "a late datagram of the previous session dropped (%zu bytes)", len);
    return 0;
  }
  if (answers_first_hello(s, data, len)) {
    if (s->d->log)
      coap_logf(s->d->log, COAP_LOG_DEBUG, s->peer_name,
                "a ServerHello to our first hello, after the server asked it for a cookie: "
                "dropped (our hello with the cookie gets its own)");
    return 0;
  }
  s->now = now;
  s->rx++;
  if (s->keys) return slim_input(s, data, len);
  if (s->client && !s->established) {
    int type = plain_handshake_type(data, len);
    if (type == GNUTLS_HANDSHAKE_HELLO_VERIFY_REQUEST) s->hello_verifies_seen++;
    if (type == GNUTLS_HANDSHAKE_SERVER_HELLO) s->server_hellos_seen++;
  }
  int again = server_flight_again(s, data, len);
  int client_again = coap_dtls_client_flight_again(s, data, len);
  unsigned sends_before = s->sends;
  s->peer_in += len;
  if (s->unverified) s->unverified_in += len;
  int rc = 0;
  if (!s->established) {
    note_round_trip(s, now);
    rc = coap_dtls_watch_input(s, data, len, now);
  }
  if (rc < 0) return rc;
  s->cur = data;
  s->cur_len = len;
  s->pushed = 0;
  for (size_t off = 0; rc == 0 && off < len;) {
    size_t n = record_span(s, data + off, len - off);
    rc = input_record(s, data + off, n, now);
    off += n;
  }
  if (rc == 0) answer_resent_hello(s, data, len);
  if (rc == 0 && again && s->sends == sends_before) resend_final_flight(s);
  if (rc == 0 && client_again) coap_dtls_answer_client_repeat(s, data, s->sends != sends_before);
  s->in = s->cur = NULL;
  if (rc == 0 && s->slim_wanted) go_slim(s);
  return rc;
}

static int slim_send(coap_dtls_session_t *s, uint8_t type, const uint8_t *data, size_t len) {
  uint8_t rec[RECORD_MAX + 64];
  int n = coap_dtls_keys_protect_cid(s->keys, &s->cid, type, data, len, rec, sizeof rec);
  if (n < 0) return COAP_E_BUFFER_TOO_SMALL;
  return s->cb.send(s->user, rec, (size_t)n) < 0 ? COAP_E_SYSTEM : 0;
}

int coap_dtls_session_write(coap_dtls_session_t *s, const uint8_t *data, size_t len) {
  if (!s->established || s->failed) return COAP_E_STATE;
  if (s->keys) return slim_send(s, TYPE_APPLICATION, data, len);
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
  s->now = now;
  if (now >= s->deadline) return coap_dtls_session_give_up(s, now);
  if (now < s->next_retransmit) return 0;
  if (s->unverified &&
      !(s->unverified_flight && s->unverified_out + s->unverified_flight_len <= s->unverified_in)) {
    /* Resending to an address that never showed it is the client's, more
     * than it sent us, would make us a reflector; a real client resends
     * its hello, and the answer to that goes out with the bytes it
     * brings. A flight that still fits the bytes received does go again:
     * after a resumed hello (large, with its ticket) our small flight is
     * the only one that can be resent when the client's last flight is
     * lost (in an abbreviated handshake the client sends last). */
    s->next_retransmit = UINT64_MAX;
    return 0;
  }
  return drive_handshake_from(s, 1, now);
}

int coap_dtls_session_give_up(coap_dtls_session_t *s, uint64_t now) {
  if (s->established || s->failed) return 0;
  s->failed = 1;
  s->now = now;
  return coap_dtls_diagnose_stall(s, now);
}

void coap_dtls_session_close(coap_dtls_session_t *s) {
  if (!s || !s->established || s->failed) return;
  static const uint8_t close_notify[2] = {1, GNUTLS_A_CLOSE_NOTIFY};
  if (s->keys)
    slim_send(s, TYPE_ALERT, close_notify, sizeof close_notify);
  else
    gnutls_bye(s->tls, GNUTLS_SHUT_WR);
}

int coap_dtls_session_awaits_peer_finished(const coap_dtls_session_t *s) {
  return !s->client && !s->established && !s->failed && s->step >= COAP_STEP_FINISHED;
}

void coap_dtls_session_abandon(coap_dtls_session_t *s) {
  if (!coap_dtls_session_awaits_peer_finished(s) || !s->tls) return;
  /* A warning-level close_notify (not a fatal alert): the session ends
   * in order, and a client with requests outstanding carries them over
   * to a new handshake rather than failing them. */
  (void)gnutls_alert_send(s->tls, GNUTLS_AL_WARNING, GNUTLS_A_CLOSE_NOTIFY);
}

int coap_dtls_session_clean_hellos(const coap_dtls_session_t *s) {
  return s->client && s->server_hellos_seen == 1 && s->hellos_sent == s->hello_verifies_seen + 1;
}

int coap_dtls_session_established(const coap_dtls_session_t *s) {
  return s->established;
}
int coap_dtls_session_is_client(const coap_dtls_session_t *s) {
  return s->client;
}
uint64_t coap_dtls_session_authentic(const coap_dtls_session_t *s) {
  return s->rx_authentic;
}
unsigned coap_dtls_session_rx(const coap_dtls_session_t *s) {
  return s->rx;
}
unsigned coap_dtls_session_flights(const coap_dtls_session_t *s) {
  return s->flights;
}
uint32_t coap_dtls_session_elapsed(const coap_dtls_session_t *s, uint64_t now) {
  return now > s->started ? (uint32_t)(now - s->started) : 0;
}

const coap_diag_t *coap_dtls_session_diag(const coap_dtls_session_t *s) {
  return s->diag;
}

const coap_handshake_report_t *coap_dtls_session_report(coap_dtls_session_t *s) {
  if (!s->cs) return NULL;
  coap_handshake_report_t *rep = &s->cs->report;
  rep->flights = s->flights;
  if (s->diag) rep->diag = *s->diag;
  return rep;
}

void coap_dtls_session_note_identity(gnutls_session_t tls, const char *identity) {
  coap_dtls_session_t *s = gnutls_transport_get_ptr(tls);
  if (s && identity) snprintf(s->psk_identity, sizeof s->psk_identity, "%s", identity);
}

const char *coap_dtls_session_psk_identity(const coap_dtls_session_t *s) {
  return s->psk_identity;
}

const uint8_t *coap_dtls_session_peer_rpk_sha256(const coap_dtls_session_t *s) {
  return s->has_peer_rpk ? s->peer_rpk_sha256 : NULL;
}

const char *coap_dtls_session_suite(const coap_dtls_session_t *s) {
  if (!s->tls) return s->suite ? s->suite : "unknown";
  /* The IANA name ("TLS_PSK_WITH_AES_128_CCM_8"), what specs and peers say. */
  const char *name = gnutls_ciphersuite_get(s->tls);
  if (!name)
    name = gnutls_cipher_suite_get_name(gnutls_kx_get(s->tls), gnutls_cipher_get(s->tls),
                                        gnutls_mac_get(s->tls));
  return name ? name : "unknown";
}

int coap_dtls_session_offers_resumption(const coap_dtls_session_t *s) {
  return s->offers_resumption;
}

int coap_dtls_session_resumed(const coap_dtls_session_t *s) {
  if (!s->tls) return s->resumed;
  return gnutls_session_is_resumed(s->tls) != 0;
}

int coap_dtls_session_mode(const coap_dtls_session_t *s) {
  if (!s->tls || s->step < COAP_STEP_NEGOTIATION) return s->tls ? COAP_DTLS_MODE_NONE : s->mode;
  gnutls_kx_algorithm_t kx = gnutls_kx_get(s->tls);
  if (kx == GNUTLS_KX_PSK || kx == GNUTLS_KX_ECDHE_PSK || kx == GNUTLS_KX_DHE_PSK)
    return COAP_DTLS_MODE_PSK;
  if (kx == GNUTLS_KX_UNKNOWN) return COAP_DTLS_MODE_NONE;
  return gnutls_certificate_type_get2(s->tls, GNUTLS_CTYPE_SERVER) == GNUTLS_CRT_RAWPK
             ? COAP_DTLS_MODE_RPK
             : COAP_DTLS_MODE_X509;
}

/* The PSK identity it sent, else its certificate's subject or its raw
 * key's fingerprint, as far as the handshake got. */
void coap_dtls_session_peer_identity(const coap_dtls_session_t *s, char *buf, size_t cap) {
  if (!cap) return;
  buf[0] = '\0';
  if (!s->client && s->psk_identity[0]) {
    snprintf(buf, cap, "%s", s->psk_identity);
    return;
  }
  unsigned n = 0;
  const gnutls_datum_t *peers = s->tls ? gnutls_certificate_get_peers(s->tls, &n) : NULL;
  if (!peers || n == 0) return;
  if (gnutls_certificate_type_get2(s->tls, GNUTLS_CTYPE_PEERS) == GNUTLS_CRT_RAWPK) {
    coap_dtls_spki_fingerprint(&peers[0], buf, cap);
    return;
  }
  gnutls_x509_crt_t crt;
  if (gnutls_x509_crt_init(&crt) < 0) return;
  gnutls_datum_t dn = {NULL, 0};
  if (gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) >= 0 &&
      gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0)
    snprintf(buf, cap, "%s", (const char *)dn.data);
  gnutls_free(dn.data);
  gnutls_x509_crt_deinit(crt);
}

/* ---- stateless checks ---- */

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

#define KX_WITHOUT_CERTIFICATE(kx) \
  ((kx) == GNUTLS_KX_PSK || (kx) == GNUTLS_KX_ECDHE_PSK || (kx) == GNUTLS_KX_DHE_PSK)

/* What a ClientHello offers, as far as the cookie decision cares. */
typedef struct hello_offer {
  int readable;       /* the version and the list of suites could be read */
  int dtls12;         /* client_version is DTLS 1.2 */
  int certificate_kx; /* a suite whose key exchange sends a certificate or raw key */
  int aead;           /* a suite with an AEAD cipher (all this server accepts) */
} hello_offer_t;

static void note_suite(hello_offer_t *o, const uint8_t *id) {
  unsigned char cs[2];
  gnutls_kx_algorithm_t kx;
  gnutls_mac_algorithm_t mac;
  for (size_t k = 0; gnutls_cipher_suite_info(k, cs, &kx, NULL, &mac, NULL); k++) {
    if (cs[0] != id[0] || cs[1] != id[1]) continue;
    if (!KX_WITHOUT_CERTIFICATE(kx)) o->certificate_kx = 1;
    if (mac == GNUTLS_MAC_AEAD) o->aead = 1;
    return;
  }
}

static hello_offer_t read_hello_offer(const uint8_t *data, size_t len) {
  hello_offer_t o = {0};
  size_t off = DTLS_RECORD_HEADER + 12; /* handshake header */
  if (len < off + 2 + 32 + 1) return o;
  o.dtls12 = data[off] == 0xfe && data[off + 1] == 0xfd;
  off += 2 + 32;        /* version, random */
  off += 1 + data[off]; /* session id */
  if (len < off + 1) return o;
  off += 1 + data[off]; /* cookie */
  if (len < off + 2) return o;
  size_t n = ((size_t)data[off] << 8 | data[off + 1]) / 2;
  off += 2;
  if (len < off + 2 * n) return o;
  for (size_t i = 0; i < n; i++) note_suite(&o, data + off + 2 * i);
  o.readable = 1;
  return o;
}

/* May this hello start a handshake without a cookie, the policy having
 * not asked for one? Not if it could get a certificate (or raw key)
 * flight from us: such a flight is many times the hello's size, so it
 * goes only to an address that answered a cookie. Not if we will refuse
 * it (not DTLS 1.2, no AEAD suite): GnuTLS clients, among others, ignore
 * an alert that comes before any handshake message of the server's, so
 * the refusal reaches them only after a HelloVerifyRequest. An unreadable
 * hello gets a cookie. Under WHEN_NEEDED, one that resumes a ticket sealed
 * with one of our keys (accepted_key, by its name: dtls_cookie.c) is let
 * in whatever its suites, on any server sharing the key file. */
static int hello_needs_no_cookie(const coap_dtls_context_t *d, const uint8_t *data, size_t len) {
  hello_offer_t o = read_hello_offer(data, len);
  if (!o.readable || !o.dtls12 || !o.aead) return 0;
  if (d->cookie_policy == COAP_DTLS_COOKIE_WHEN_NEEDED && d->accepted_key >= 0) return 1;
  return !(o.certificate_kx && (d->has_cert || d->has_rpk));
}

int coap_dtls_session_ticket_refused(const coap_dtls_session_t *s) {
  return s->ticket_refused;
}

int coap_dtls_accepted_with_cookie(const coap_dtls_context_t *d) {
  return d->prestate_valid;
}

/* An eighth of all, at least 4: room for several devices behind one NAT
 * starting at once, while one attacking host holds at most an eighth. */
unsigned coap_dtls_max_handshakes_per_address(const coap_dtls_context_t *d) {
  unsigned n = d->max_handshakes / 8;
  return n < 4 ? 4 : n;
}

/* Wall-clock seconds, as GnuTLS reads them for its ticket key steps. */
static uint64_t unix_now(void) {
  time_t t = time(NULL);
  return t > 0 ? (uint64_t)t : 0;
}

int coap_dtls_accept(coap_dtls_context_t *d, const void *addr, size_t addr_len, const uint8_t *data,
                     size_t len, int require_cookie, coap_dtls_send_fn send, void *send_user) {
  if (!coap_dtls_is_client_hello(data, len)) return COAP_E_DTLS_RECORD;
  memset(&d->prestate, 0, sizeof d->prestate);
  d->prestate_valid = 0;
  d->accepted_ticket = coap_dtls_hello_has_ticket(data, len);
  /* GnuTLS's own clock (it reads the time itself for its key steps). */
  d->accepted_key = d->accepted_ticket ? coap_dtls_hello_ticket_key(d, data, len, unix_now()) : -1;
  int rc = gnutls_dtls_cookie_verify(&d->cookie_key, (void *)addr, addr_len, (void *)data, len,
                                     &d->prestate);
  if (rc == 0) {
    d->prestate_valid = 1;
    return COAP_DTLS_ACCEPT;
  }
  if (rc != GNUTLS_E_BAD_COOKIE) return COAP_E_DTLS_RECORD;
  /* No cookie asked for (policy): the handshake starts at this hello,
   * unless our answer would be a certificate flight. */
  if (!require_cookie && hello_needs_no_cookie(d, data, len)) return COAP_DTLS_ACCEPT;
  cookie_sink_t sink = {send, send_user};
  gnutls_dtls_cookie_send(&d->cookie_key, (void *)addr, addr_len, &d->prestate, &sink, cookie_push);
  return COAP_DTLS_COOKIE_SENT;
}

/* ---- probing a port ---- */

typedef struct probe_sink {
  uint8_t *buf;
  size_t cap, len;
} probe_sink_t;

static ssize_t probe_push(gnutls_transport_ptr_t ptr, const void *data, size_t len) {
  probe_sink_t *sink = ptr;
  if (!sink->len && len <= sink->cap) {
    memcpy(sink->buf, data, len);
    sink->len = len;
  }
  return (ssize_t)len;
}

static ssize_t probe_pull(gnutls_transport_ptr_t ptr, void *buf, size_t size) {
  (void)ptr;
  (void)buf;
  (void)size;
  errno = EAGAIN;
  return -1;
}

static int probe_pull_timeout(gnutls_transport_ptr_t ptr, unsigned ms) {
  (void)ptr;
  (void)ms;
  return 0;
}

int coap_dtls_probe_hello(uint8_t *buf, size_t cap) {
  gnutls_session_t tls;
  gnutls_certificate_credentials_t cred;
  probe_sink_t sink = {buf, cap, 0};
  if (gnutls_certificate_allocate_credentials(&cred) < 0) return COAP_E_NOMEM;
  if (gnutls_init(&tls, GNUTLS_CLIENT | GNUTLS_DATAGRAM | GNUTLS_NONBLOCK) < 0) {
    gnutls_certificate_free_credentials(cred);
    return COAP_E_NOMEM;
  }
  gnutls_priority_set_direct(tls, "NORMAL:-VERS-ALL:+VERS-DTLS1.2", NULL);
  gnutls_credentials_set(tls, GNUTLS_CRD_CERTIFICATE, cred);
  gnutls_transport_set_ptr(tls, &sink);
  gnutls_transport_set_push_function(tls, probe_push);
  gnutls_transport_set_pull_function(tls, probe_pull);
  gnutls_transport_set_pull_timeout_function(tls, probe_pull_timeout);
  (void)gnutls_handshake(tls); /* sends the ClientHello, then would wait */
  gnutls_deinit(tls);
  gnutls_certificate_free_credentials(cred);
  return sink.len ? (int)sink.len : COAP_E_INTERNAL;
}

/* ---- carried across a restart (dtls_state.c) ---- */

/* After the keys: the mode, the CID (on, our length, the peer's, the
 * bytes), the PSK identity (length, bytes) and the raw key's hash. */
#define SAVED_SESSION_MAX (COAP_DTLS_KEYS_SAVED + 1 + 3 + 2 * COAP_DTLS_CID_MAX + 1 + 64 + 1 + 32)

int coap_dtls_session_save(coap_dtls_session_t *s, uint64_t margin, uint8_t *out, size_t cap) {
  _Static_assert(SAVED_SESSION_MAX <= COAP_DTLS_SESSION_SAVED_MAX, "room for a saved session");
  if (s->client || !s->established || s->failed || !s->keys || cap < SAVED_SESSION_MAX) return -1;
  if (s->cid.rx_len > COAP_DTLS_CID_MAX || s->cid.tx_len > COAP_DTLS_CID_MAX) return -1;
  int n = coap_dtls_keys_save(s->keys, margin, out, cap);
  if (n < 0) return -1;
  uint8_t *p = out + n;
  *p++ = (uint8_t)s->mode;
  *p++ = s->cid.on;
  *p++ = s->cid.rx_len;
  *p++ = s->cid.tx_len;
  memcpy(p, s->cid.rx, s->cid.rx_len), p += s->cid.rx_len;
  memcpy(p, s->cid.tx, s->cid.tx_len), p += s->cid.tx_len;
  size_t id_len = strnlen(s->psk_identity, 64);
  *p++ = (uint8_t)id_len;
  memcpy(p, s->psk_identity, id_len), p += id_len;
  *p++ = (uint8_t)s->has_peer_rpk;
  memcpy(p, s->peer_rpk_sha256, 32), p += 32;
  return (int)(p - out);
}

static int restore_parts(coap_dtls_session_t *s, const uint8_t *p, const uint8_t *end);

void coap_dtls_session_settle_save(coap_dtls_session_t *s, int kept) {
  if (s && s->keys) coap_dtls_keys_settle(s->keys, kept);
}

int coap_dtls_saved_session_check(const uint8_t *in, size_t len) {
  if (!in || len < COAP_DTLS_KEYS_SAVED) return COAP_E_INVALID_ARG;
  coap_dtls_keys_t k = {0};
  coap_dtls_session_t *s = calloc(1, sizeof(*s));
  int ok = s && coap_dtls_keys_load(&k, in, COAP_DTLS_KEYS_SAVED) == 0;
  if (ok) ok = restore_parts(s, in + COAP_DTLS_KEYS_SAVED, in + len) == 0;
  coap_dtls_keys_free(&k);
  if (s) coap_memzero(s, sizeof(*s));
  free(s);
  return !s ? COAP_E_NOMEM : ok ? 0 : COAP_E_INVALID_ARG;
}

int coap_dtls_saved_session_cid_first(const uint8_t *in, size_t len) {
  /* After the keys: mode, CID on, receive CID length, send CID length,
   * then the receive CID (coap_dtls_session_save). */
  if (!in || len < COAP_DTLS_KEYS_SAVED + 5) return -1;
  const uint8_t *p = in + COAP_DTLS_KEYS_SAVED;
  return p[1] && p[2] ? p[4] : -1;
}

/* The parts after the keys, checked against |end|; 0 or -1. */
static int restore_parts(coap_dtls_session_t *s, const uint8_t *p, const uint8_t *end) {
  /* The mode indexes per-mode counters: a negotiated one only. */
  if (end - p < 4 || p[0] < COAP_DTLS_MODE_PSK || p[0] >= COAP_DTLS_MODE_COUNT) return -1;
  s->mode = p[0];
  s->cid.on = p[1];
  s->cid.rx_len = p[2];
  s->cid.tx_len = p[3];
  p += 4;
  if (s->cid.rx_len > COAP_DTLS_CID_MAX || s->cid.tx_len > COAP_DTLS_CID_MAX) return -1;
  if (end - p < s->cid.rx_len + s->cid.tx_len + 1) return -1;
  memcpy(s->cid.rx, p, s->cid.rx_len), p += s->cid.rx_len;
  memcpy(s->cid.tx, p, s->cid.tx_len), p += s->cid.tx_len;
  size_t id_len = *p++;
  if (id_len > 64 || (size_t)(end - p) != id_len + 1 + 32) return -1;
  memcpy(s->psk_identity, p, id_len);
  s->psk_identity[id_len] = 0;
  p += id_len;
  s->has_peer_rpk = *p++ != 0;
  memcpy(s->peer_rpk_sha256, p, 32);
  return 0;
}

int coap_dtls_session_restore(coap_dtls_context_t *d, const coap_dtls_session_cb_t *cb, void *user,
                              uint64_t now, const uint8_t *in, size_t len,
                              coap_dtls_session_t **out) {
  if (len < COAP_DTLS_KEYS_SAVED) return COAP_E_INVALID_ARG;
  coap_dtls_session_t *s;
  int rc = session_init(d, 0, cb, user, now, &s);
  if (rc < 0) return rc;
  gnutls_deinit(s->tls); /* the keys are all it needs */
  s->tls = NULL;
  s->keys = calloc(1, sizeof(*s->keys));
  if (!s->keys || coap_dtls_keys_load(s->keys, in, COAP_DTLS_KEYS_SAVED) < 0 ||
      restore_parts(s, in + COAP_DTLS_KEYS_SAVED, in + len) < 0) {
    coap_dtls_session_free(s);
    return COAP_E_INVALID_ARG;
  }
  s->established = 1;
  s->step = COAP_STEP_ESTABLISHED;
  s->suite = gnutls_cipher_get_name((gnutls_cipher_algorithm_t)s->keys->alg);
  /* Only a record newer than those already taken may move the peer. */
  uint64_t taken = s->keys->read_next ? s->keys->read_next - 1 : 0;
  s->rx_newest = (uint64_t)s->keys->epoch << 48 | taken;
  s->next_retransmit = UINT64_MAX;
  *out = s;
  return 0;
}
