/* The security layer: GnuTLS behind a narrow, sans-I/O interface. GnuTLS
 * reads from and writes to our buffers through its transport callbacks;
 * nothing outside src/security includes a GnuTLS header. */
#ifndef COAPS_SECURITY_H
#define COAPS_SECURITY_H

#include <stddef.h>
#include <stdint.h>

#include "coaps/diag.h"
#include "coaps/dtls.h"
#include "common/log.h"

typedef struct coap_dtls_session coap_dtls_session_t;

/* Put one datagram on the wire towards the session's peer. */
typedef int (*coap_dtls_send_fn)(void *user, const uint8_t *data, size_t len);

typedef struct coap_dtls_session_cb {
  coap_dtls_send_fn send;
  /* Handshake complete: queued application data may go now. */
  void (*on_established)(void *user);
  /* One decrypted application datagram. */
  void (*on_data)(void *user, const uint8_t *data, size_t len);
  /* A record of the datagram being handled authenticated and is newer
   * (epoch, sequence number) than any before it: called before its data
   * is delivered, so that a peer found by its Connection ID can move to
   * the datagram's source first (RFC 9146 §6). May be NULL. */
  void (*on_fresh)(void *user);
} coap_dtls_session_cb_t;

/* Results of coap_dtls_accept. */
#define COAP_DTLS_ACCEPT 1      /* valid cookie: create the session now */
#define COAP_DTLS_COOKIE_SENT 0 /* HelloVerifyRequest sent, nothing kept */

unsigned coap_dtls_max_handshakes(const coap_dtls_context_t *d);
/* The largest CoAP message one record carries at the configured MTU,
 * whatever AEAD suite is agreed (header, explicit nonce and a 16-byte tag
 * counted): GnuTLS refuses to send a bigger one, so a client must split
 * its request into blocks of at most that. */
size_t coap_dtls_record_room(const coap_dtls_context_t *d);
/* Server sessions moved to exported keys so far. */
uint64_t coap_dtls_compacted(const coap_dtls_context_t *d);
void coap_dtls_context_set_logger(coap_dtls_context_t *d, const coap_logger_t *log);
/* Make |msg| what coap_dtls_context_last_error says (src/io's key
 * file readers, whose refusals are about the configuration). */
void coap_dtls_set_last_error(coap_dtls_context_t *d, const char *msg);

/* A datagram from an address with no session. Checks the stateless cookie
 * (RFC 6347 §4.2.1) before anything is allocated: COAP_DTLS_ACCEPT when
 * the ClientHello carries a valid cookie, or carries none and
 * |require_cookie| is 0 (then call coap_dtls_session_new_server and feed
 * it the same datagram), COAP_DTLS_COOKIE_SENT when a HelloVerifyRequest
 * went out through |send|, or a negative code for anything else
 * (dropped). */
int coap_dtls_accept(coap_dtls_context_t *d, const void *addr, size_t addr_len, const uint8_t *data,
                     size_t len, int require_cookie, coap_dtls_send_fn send, void *send_user);
/* Did the ClientHello coap_dtls_accept just accepted bring a valid cookie
 * (its sender receives at its address)? */
int coap_dtls_accepted_with_cookie(const coap_dtls_context_t *d);
/* Server: the client brought a session ticket and got a full handshake
 * (ticket-key-unknown). */
int coap_dtls_session_ticket_refused(const coap_dtls_session_t *s);
/* Half-open server handshakes one source address (host, any port) may
 * hold at once. */
unsigned coap_dtls_max_handshakes_per_address(const coap_dtls_context_t *d);
/* Does a new ClientHello need a cookie, with |in_progress| handshakes
 * running? (The context's cookie policy.) */
int coap_dtls_cookie_required(const coap_dtls_context_t *d, unsigned in_progress);

/* A client session towards |server_name| (a host name or literal: used for
 * SNI and certificate name checks); sends the ClientHello. */
int coap_dtls_session_new_client(coap_dtls_context_t *d, const char *server_name,
                                 const coap_dtls_session_cb_t *cb, void *user, uint64_t now,
                                 coap_dtls_session_t **out);
/* A server session for the ClientHello just accepted. */
int coap_dtls_session_new_server(coap_dtls_context_t *d, const coap_dtls_session_cb_t *cb,
                                 void *user, uint64_t now, coap_dtls_session_t **out);
void coap_dtls_session_free(coap_dtls_session_t *s);
/* A restart without handshakes (dtls_state.c): an established server
 * session on exported keys written into |out| (the next sequence number
 * advanced by |margin|; its keys then held below that number until
 * _settle_save); its length or -1 (a client, not established, still on
 * GnuTLS, a save outstanding, or no room: at most
 * COAP_DTLS_SESSION_SAVED_MAX bytes). _settle_save: |kept| (the bytes are
 * stored for the new process) retires the keys for sending, else the
 * session goes on as before. _restore makes the session again from such
 * bytes in another process: established, no handshake; _check says
 * whether _restore would take them (0, COAP_E_INVALID_ARG,
 * COAP_E_NOMEM) without making anything. */
#define COAP_DTLS_SESSION_SAVED_MAX 300
int coap_dtls_session_save(coap_dtls_session_t *s, uint64_t margin, uint8_t *out, size_t cap);
void coap_dtls_session_settle_save(coap_dtls_session_t *s, int kept);
int coap_dtls_saved_session_check(const uint8_t *in, size_t len);
int coap_dtls_session_restore(coap_dtls_context_t *d, const coap_dtls_session_cb_t *cb, void *user,
                              uint64_t now, const uint8_t *in, size_t len,
                              coap_dtls_session_t **out);
/* The first byte of the Connection ID the client of saved session bytes
 * (from _save) puts on its records, or -1 when it puts none. Byte 0 of
 * our CIDs names the worker the kernel hands those records to. */
int coap_dtls_saved_session_cid_first(const uint8_t *in, size_t len);
/* Is the ClientHello in |data| a copy of the one this (server) session
 * was made from (the same client random)? Such a copy, arriving late
 * (resent before the handshake ended, then reordered), says nothing about
 * a restart. */
int coap_dtls_session_own_hello(const coap_dtls_session_t *s, const uint8_t *data, size_t len);
/* An unfinished server handshake begun without a cookie, and its client's
 * hello that answered a cookie request (message_seq past 0). */
int coap_dtls_session_hello_after_cookie(const coap_dtls_session_t *s, const uint8_t *data,
                                         size_t len);
/* The peer's name for the session's log lines; |name| must outlive it. */
void coap_dtls_session_set_peer_name(coap_dtls_session_t *s, const char *name);
/* Client: |s| replaces a session with the same server (a reconnect), whose
 * late datagrams may still come. Until this handshake's HelloVerifyRequest
 * or ServerHello, a datagram that begins with anything else is one of
 * those and is dropped: GnuTLS would take the old handshake's last
 * messages (a NewSessionTicket with a message_seq the new handshake also
 * reaches) into the new one, whose Finished then fails, or which keeps a
 * message it never uses and drops the server's answers after it. */
void coap_dtls_session_follows_old(coap_dtls_session_t *s);

/* One datagram from the peer. Returns 0, or a negative COAP_E_DTLS_* code
 * when the session failed or was closed (the caller frees it; the reason is
 * in coap_dtls_session_diag). Callbacks run inside. */
int coap_dtls_session_input(coap_dtls_session_t *s, const uint8_t *data, size_t len, uint64_t now);
/* Protect and send one application datagram (session established). */
int coap_dtls_session_write(coap_dtls_session_t *s, const uint8_t *data, size_t len);
/* When coap_dtls_session_handle_timeout is due; UINT64_MAX: never. */
uint64_t coap_dtls_session_next_timeout(const coap_dtls_session_t *s);
/* Retransmit a flight or give up; same returns as _input. */
int coap_dtls_session_handle_timeout(coap_dtls_session_t *s, uint64_t now);
/* End a handshake that is taking too long now (the caller's own deadline):
 * the session fails with a diagnosis of the silence. Returns the code. */
int coap_dtls_session_give_up(coap_dtls_session_t *s, uint64_t now);
/* Send close_notify (best effort). */
void coap_dtls_session_close(coap_dtls_session_t *s);
/* Server: its Finished has gone out and only the client's is missing (an
 * abbreviated handshake's last step): the client, once it has our
 * Finished, believes the session is up. */
int coap_dtls_session_awaits_peer_finished(const coap_dtls_session_t *s);
/* Client: every hello of this handshake was answered once (a cookie
 * request, or the one ServerHello) before another went out: no copy of
 * a hello a server could have begun a second handshake from. */
int coap_dtls_session_clean_hellos(const coap_dtls_session_t *s);
/* Server, ending such a handshake before the client's Finished came: a
 * close_notify under the handshake's keys, so the client starts over at
 * once instead of finding out by silence. Sent within the byte budget of
 * an unverified address (held back otherwise). */
void coap_dtls_session_abandon(coap_dtls_session_t *s);

int coap_dtls_session_established(const coap_dtls_session_t *s);
int coap_dtls_session_is_client(const coap_dtls_session_t *s);
/* Why it failed; NULL while it has not (or the diagnosis could not be
 * allocated). */
const coap_diag_t *coap_dtls_session_diag(const coap_dtls_session_t *s);
/* A client's handshake report (NULL for a server session). */
const coap_handshake_report_t *coap_dtls_session_report(coap_dtls_session_t *s);
/* Records from the peer that authenticated so far (and 1 for the
 * handshake's completion): a datagram that did not raise it proved
 * nothing about the peer (forged, damaged or replayed), and must not
 * count as its activity. */
uint64_t coap_dtls_session_authentic(const coap_dtls_session_t *s);
/* Datagrams received from the peer, and handshake flights sent. */
unsigned coap_dtls_session_rx(const coap_dtls_session_t *s);
unsigned coap_dtls_session_flights(const coap_dtls_session_t *s);
/* Milliseconds since the first flight. */
uint32_t coap_dtls_session_elapsed(const coap_dtls_session_t *s, uint64_t now);
/* "TLS_PSK_WITH_AES_128_CCM_8"-style name of the negotiated suite. */
const char *coap_dtls_session_suite(const coap_dtls_session_t *s);
int coap_dtls_session_resumed(const coap_dtls_session_t *s);
/* Client: its hello offers a session it had with this server (the server
 * listened there before). */
int coap_dtls_session_offers_resumption(const coap_dtls_session_t *s);
/* The peer identity of a server session, for coap_context_end_sessions:
 * the PSK identity ("" when none) and the SHA-256 of its raw public key
 * (NULL when none). */
const char *coap_dtls_session_psk_identity(const coap_dtls_session_t *s);
const uint8_t *coap_dtls_session_peer_rpk_sha256(const coap_dtls_session_t *s);
/* Is the raw key with this SHA-256 in |d|'s trust list (or does a verify
 * callback decide, which is then taken as yes)? */
int coap_dtls_rpk_trusted_sha256(const coap_dtls_context_t *d, const uint8_t sha256[32]);
/* The coap_dtls_mode_t the handshake negotiated (NONE before the
 * ServerHello). */
int coap_dtls_session_mode(const coap_dtls_session_t *s);
/* Who the peer said it was, for failure records: its PSK identity (server
 * side), else its certificate's subject or its raw key's fingerprint; ""
 * when the handshake did not get that far. */
void coap_dtls_session_peer_identity(const coap_dtls_session_t *s, char *buf, size_t cap);

/* Connection ID (RFC 9146). The session's CIDs (negotiated 0 while the
 * handshake has not agreed on one). */
void coap_dtls_session_cid(const coap_dtls_session_t *s, coap_dtls_cid_info_t *out);
/* The CID a server's peers put on their records to it, when |data| is a
 * tls12_cid record long enough to hold one: its length (the server's CID
 * length), with |*cid| pointing into |data|; 0 otherwise. */
size_t coap_dtls_record_cid(const coap_dtls_context_t *d, const uint8_t *data, size_t len,
                            const uint8_t **cid);
/* A server peer moved to a new address (counted in the CID stats), and a
 * datagram held back from an address not confirmed yet. */
/* The worker index the server's CIDs begin with (coap_dtls_set_cid_worker),
 * or -1 when none was given or CID is off: the I/O shell steers tls12_cid
 * records by it only then. */
int coap_dtls_cid_worker(const coap_dtls_context_t *d);
void coap_dtls_note_cid_move(coap_dtls_context_t *d);
void coap_dtls_note_cid_held(coap_dtls_context_t *d);
/* A datagram found by one of our CIDs brought no authentic record. */
void coap_dtls_note_cid_forged(coap_dtls_context_t *d);

/* Is |data| a DTLS ClientHello of epoch 0 (a client starting over from an
 * address that has a session: RFC 6347 §4.2.8)? */
int coap_dtls_is_client_hello(const uint8_t *data, size_t len);
/* Does |data| look like a DTLS record at all (content type 20..25,
 * version 254.x)? Used to tell a CoAP peer from a DTLS one. */
int coap_dtls_looks_like_record(const uint8_t *data, size_t len);
/* A DTLS 1.2 ClientHello to probe whether a DTLS server listens on a port
 * (any DTLS server answers it); its length, or a negative code. */
int coap_dtls_probe_hello(uint8_t *buf, size_t cap);

#endif
