/* The CoAP message layer (RFC 7252 §4): CON/NON/ACK/RST, retransmission with
 * exponential back-off, deduplication, message IDs and tokens, NSTART,
 * piggy-backed and separate responses.
 *
 * Sans-I/O: it is given plaintext datagrams and |now| (monotonic ms), it
 * hands datagrams to cb->send and reports events through callbacks. Its
 * timers live in the context's timer heap. Per-peer state (coap_exch_peer_t)
 * is embedded in the peer table's entries; the layer never looks up peers
 * itself.
 */
#ifndef COAPS_EXCHANGE_H
#define COAPS_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>

#include "coaps/context.h"
#include "coaps/wire.h"
#include "common/log.h"
#include "common/timer.h"

typedef struct coap_exch coap_exch_t;
typedef struct coap_exch_in coap_exch_in_t;   /* request awaiting our answer */
typedef struct coap_exch_out coap_exch_out_t; /* our request awaiting answer */
typedef struct coap_exch_dedup coap_exch_dedup_t;

/* Per-peer message-layer state, embedded in the peer entry. Treat as
 * opaque outside src/exchange. */
typedef struct coap_exch_peer {
  uint16_t next_mid;
  uint16_t cons_in_flight;     /* our CON requests not yet ACKed (NSTART) */
  coap_exch_out_t *out_head;   /* requests awaiting a response */
  coap_exch_out_t *queue_head; /* waiting for NSTART */
  coap_exch_out_t *queue_tail;
  coap_exch_in_t *in_head;  /* requests awaiting our response */
  coap_exch_dedup_t *dedup; /* ring of recently seen MIDs, grown on use */
  uint16_t *dedup_heads;    /* MID buckets: first entry's index + 1 */
  uint16_t dedup_len, dedup_cap, dedup_pos, dedup_buckets;
  /* Datagrams that matched an exchange of ours (an ACK or RST to one of
   * our messages, a response or notification to one of our requests):
   * on coap:// the only sign of a server's life a forger cannot give
   * without seeing our traffic. Wraps. */
  uint32_t matched;
} coap_exch_peer_t;

typedef struct coap_exch_callbacks {
  /* Put one datagram on the wire to |peer|. Return 0 or a negative error
   * (logged; retransmission goes on). */
  int (*send)(void *user, coap_exch_peer_t *peer, const uint8_t *data, size_t len);
  /* A new request (duplicates never get here). The upper layer answers with
   * coap_exch_respond(in) exactly once, or coap_exch_drop(in); inside this
   * callback for a piggy-backed response, later for a separate one. */
  void (*on_request)(void *user, coap_exch_peer_t *peer, coap_exch_in_t *in, const coap_msg_t *req,
                     uint64_t now);
  /* A response to one of our requests (|msg| != NULL, err == 0), or its
   * end: err COAP_E_TIMEOUT, COAP_E_RESET, COAP_E_BAD_RESPONSE,
   * COAP_E_UNREACHABLE, COAP_E_CANCELLED (|msg| == NULL). Return 1 to keep
   * the request registered for more responses (Observe), 0 to finish it;
   * after an error it is always finished and freed. */
  int (*on_response)(void *user, coap_exch_out_t *out, const coap_msg_t *msg, int err,
                     uint64_t now);
  /* Every message sent (outgoing = 1) or accepted (0), for tracing; may be
   * NULL. */
  void (*on_trace)(void *user, coap_exch_peer_t *peer, int outgoing, const coap_msg_t *msg);
  /* "[addr:port]" for log lines; may be NULL. */
  const char *(*peer_name)(void *user, const coap_exch_peer_t *peer);
  /* A CON notification (coap_exch_notify) ended: err 0 when ACKed,
   * COAP_E_RESET, COAP_E_TIMEOUT (no ACK after MAX_RETRANSMIT), or the
   * error a peer's requests fail with (coap_exch_peer_fail/clear).
   * |notify_user| is the one given to coap_exch_notify. Never called for
   * coap_exch_cancel. May be NULL. */
  void (*on_notify_done)(void *user, void *notify_user, int err, uint64_t now);
  /* An RST that matches no CON of ours in flight: it may answer a NON
   * (a notification, RFC 7641 §3.6). May be NULL. */
  void (*on_reset)(void *user, coap_exch_peer_t *peer, uint16_t mid, uint64_t now);
} coap_exch_callbacks_t;

typedef struct coap_exch_stats {
  uint64_t rx_malformed, rx_duplicates, rx_unmatched;
  uint64_t retransmissions, timeouts, resets_sent, resets_received;
  uint64_t requests_in, requests_out;
  uint64_t responses_by_class[8]; /* sent, by code class (2, 4, 5) */
} coap_exch_stats_t;

/* Returns NULL when out of memory. |timers| and |log| must outlive it. */
coap_exch_t *coap_exch_new(const coap_tx_params_t *params, const coap_exch_callbacks_t *cb,
                           void *user, coap_timer_heap_t *timers, const coap_logger_t *log,
                           coap_rand_fn rand, void *rand_user);
void coap_exch_free(coap_exch_t *ex);
void coap_exch_set_params(coap_exch_t *ex, const coap_tx_params_t *params);
const coap_exch_stats_t *coap_exch_stats(const coap_exch_t *ex);

void coap_exch_peer_init(coap_exch_t *ex, coap_exch_peer_t *peer);
/* Cancel the peer's timers, end its requests with COAP_E_CANCELLED (or
 * |err| when non-zero, e.g. COAP_E_UNREACHABLE), forget pending incoming
 * requests (their coap_exch_in_t become invalid) and free its caches. */
void coap_exch_peer_clear(coap_exch_t *ex, coap_exch_peer_t *peer, int err);
/* The peer is now reached over a new session (a new DTLS session is a new
 * endpoint, RFC 7252 §9.1.1): the requests still waiting for their ACK
 * start their retransmissions over, from the initial timeout, so a
 * request sent again on it has the whole schedule (its deadline holds).
 * With |new_mids| they also get a new message ID (their bytes too; the
 * token stays): not when copies already went out on the new session
 * under the old one, whose answers must still match. */
void coap_exch_peer_restart(coap_exch_t *ex, coap_exch_peer_t *peer, uint64_t now, int new_mids);
/* Fail the peer's outstanding requests with |err| without clearing the
 * rest (e.g. ICMP unreachable). */
void coap_exch_peer_fail(coap_exch_t *ex, coap_exch_peer_t *peer, int err, uint64_t now);
/* True when nothing is outstanding in either direction (the dedup cache
 * does not count). */
int coap_exch_peer_idle(const coap_exch_peer_t *peer);
/* True when |quoted| (the start of a datagram an ICMP error quotes, |len|
 * bytes) is the start of a message of ours still in flight to |peer|: a
 * request or a CON notification sent and not yet finished, its header and
 * token quoted whole and every byte quoted matching (RFC 7252 §4.2's
 * vetting: an error forged off-path does not know them). */
int coap_exch_peer_sent(const coap_exch_peer_t *peer, const uint8_t *quoted, size_t len);

/* A plaintext datagram from |peer|. Malformed input is answered as RFC 7252
 * §4.2/§4.3 say (RST for a CON, nothing for the rest), counted and logged
 * at debug level. Returns 0 or the codec's error. */
int coap_exch_receive(coap_exch_t *ex, coap_exch_peer_t *peer, const uint8_t *data, size_t len,
                      uint64_t now);

/* Send a request (req->type CON or NON). The layer assigns the message ID
 * and, when req->token_len == 0, a random token unique among the peer's
 * outstanding requests; |req| is encoded at once and may be discarded on
 * return. Subject to NSTART (queued when over). |user| is kept for the
 * caller (coap_exch_out_user). Returns 0, COAP_E_NOMEM,
 * COAP_E_BUFFER_TOO_SMALL. */
int coap_exch_request(coap_exch_t *ex, coap_exch_peer_t *peer, coap_msg_t *req, void *user,
                      coap_exch_out_t **out, uint64_t now);
void *coap_exch_out_user(const coap_exch_out_t *out);
coap_exch_peer_t *coap_exch_out_peer(const coap_exch_out_t *out);
/* The request as encoded and sent (plaintext), |*len| bytes; valid until
 * the request finishes (in on_response too). A block-wise client builds
 * its follow-up requests from it. */
const uint8_t *coap_exch_out_bytes(const coap_exch_out_t *out, size_t *len);
/* 1 once a CON request was acknowledged (the peer has it), else 0. */
int coap_exch_out_acked(const coap_exch_out_t *out);
/* Forget the request: no further callback. */
void coap_exch_cancel(coap_exch_t *ex, coap_exch_out_t *out);

/* Answer |in|. The layer sets type, message ID and token: a piggy-backed
 * ACK while the CON has not been acknowledged yet, otherwise a separate
 * response (NON when resp->type is preset to NON, CON when preset to CON
 * — allowed for a NON request, RFC 7252 §5.2.3 —, else CON, or NON when
 * the request was NON). The answer is remembered so that a duplicate request
 * gets it again. |in| is gone afterwards. */
int coap_exch_respond(coap_exch_t *ex, coap_exch_in_t *in, coap_msg_t *resp, uint64_t now);
/* Send a response that answers no request of |in|'s kind: an Observe
 * notification (RFC 7641 §4.2). |rest| is the message as encoded after
 * the header and token (options, payload marker, payload), so that one
 * encoding serves many observers; the layer writes the header (|type|
 * CON or NON, |code|, a new message ID, stored in |*mid|) and |token|.
 * NON is sent and forgotten. CON is retransmitted like a separate
 * response until ACKed, reset or timed out, and then on_notify_done gets
 * |user|; |*out| lets the caller cancel it silently (coap_exch_cancel).
 * Returns 0, COAP_E_INVALID_ARG, COAP_E_NOMEM or COAP_E_BUFFER_TOO_SMALL. */
int coap_exch_notify(coap_exch_t *ex, coap_exch_peer_t *peer, uint8_t type, uint8_t code,
                     const uint8_t *token, uint8_t token_len, const uint8_t *rest, size_t rest_len,
                     void *user, coap_exch_out_t **out, uint16_t *mid, uint64_t now);

/* A CON notification not acknowledged after at least one retransmission
 * gets a newer state in its place (RFC 7641 §4.5.2): |rest| as for
 * coap_exch_notify, the same token, a new message ID (in |*mid|); the
 * retransmission counter and timer go on, so the next retransmission
 * carries it and no datagram more is sent. Returns 1 when replaced, 0
 * when |out| has not been retransmitted yet (its ACK is awaited first),
 * or COAP_E_INVALID_ARG, COAP_E_NOMEM, COAP_E_BUFFER_TOO_SMALL. */
int coap_exch_notify_replace(coap_exch_t *ex, coap_exch_out_t *out, uint8_t code,
                             const uint8_t *rest, size_t rest_len, uint16_t *mid);
/* 1 when coap_exch_notify_replace would replace |out| now. */
int coap_exch_notify_retransmitting(const coap_exch_out_t *out);

/* Forget |in| without answering (still deduplicated). */
void coap_exch_drop(coap_exch_t *ex, coap_exch_in_t *in);
coap_exch_peer_t *coap_exch_in_peer(const coap_exch_in_t *in);
/* Opaque slot for the upper layer (e.g. its deferred-response object). */
void coap_exch_in_set_user(coap_exch_in_t *in, void *user);
void *coap_exch_in_user(const coap_exch_in_t *in);

/* NULL when |peer|'s message-layer state is sound, else which invariant
 * is broken: the in-flight list doubly linked, each request on exactly
 * one of it and the NSTART queue, cons_in_flight the number of requests
 * counted in flight, the queue's tail its last entry, each pending
 * incoming request and its dedup entry pointing at each other, the dedup
 * ring within its bounds with every entry once in the chain of its MID's
 * bucket. O(n); common/invariant.h says when it runs. */
const char *coap_exch_peer_broken(const coap_exch_peer_t *peer);
/* The same for the layer's own state: the free lists (object pools) hold
 * as many objects as they count, at most their bound, none with a timer
 * armed. */
const char *coap_exch_broken(const coap_exch_t *ex);

#endif
