/* The client's request records, shared by client.c (sending, matching,
 * delivering exactly once) and block.c (block-wise transfers, RFC 7959). */
#ifndef COAPS_CLIENT_H
#define COAPS_CLIENT_H

#include "coaps/context.h"
#include "common/diag.h"
#include "common/log.h"
#include "common/timer.h"
#include "exchange/exchange.h"
#include "peer/peer_table.h"
#include "security/security.h"

typedef struct coap_client_req coap_client_req_t;
typedef struct coap_client_block coap_client_block_t;
typedef struct coap_client_obs coap_client_obs_t;
typedef struct coap_client_qb coap_client_qb_t;

/* What the client asks of the node that embeds it (src/context): the
 * client is below the context and calls it only through these, with
 * |user| the context (dependency inversion, as the message layer's
 * callbacks). */
typedef struct coap_client_ops {
  uint64_t (*now)(void *user);
  /* The endpoint for requests of |proto| to |dest|'s address family,
   * opened (and the default I/O shell installed) when there is none.
   * Returns 0 or a negative error. */
  int (*endpoint)(void *user, coap_proto_t proto, const coap_address_t *dest,
                  coap_endpoint_t **out);
  /* The peer at (ep, addr) into *out, made if new. Returns 0,
   * COAP_E_LIMIT at max_peers or COAP_E_NOMEM out of memory. */
  int (*peer)(void *user, coap_endpoint_t *ep, const coap_address_t *addr, uint64_t now,
              coap_peer_t **out);
  /* coaps://: start a handshake with |peer| unless one exists; end a
   * running one now (returns 1 when it did); is one running? */
  int (*secure_connect)(void *user, coap_peer_t *peer, const char *server_name, uint64_t now);
  int (*secure_give_up)(void *user, coap_peer_t *peer, uint64_t now);
  int (*secure_handshaking)(void *user, const coap_peer_t *peer);
  /* A cancelled request's datagram |data|, if it waits for the handshake
   * with (ep, dest), is not sent after all. */
  void (*unqueue)(void *user, coap_endpoint_t *ep, const coap_address_t *dest, const uint8_t *data,
                  size_t len);
  /* The DTLS configuration attached (NULL: none). */
  const coap_dtls_context_t *(*dtls)(void *user);
  /* Keep, count and log a failure (|peer_name| may be NULL). */
  void (*note_failure)(void *user, const coap_diag_t *g, const char *peer_name, uint64_t now);
  /* The diagnosis for a request ending now with |err|, or NULL. */
  const coap_diag_t *(*current_diag)(void *user, int err);
  /* Mark the failure noted last as the one the replies delivered now
   * carry (on), or no longer (off); is one marked? */
  void (*set_diag_current)(void *user, int on);
  int (*diag_current)(void *user);
} coap_client_ops_t;

/* The client side of a node: its requests and what it uses of the node.
 * The context embeds one and fills it in with coap_client_init. */
typedef struct coap_client {
  coap_client_req_t *requests; /* outstanding client requests */
  coap_client_req_t *req_free; /* finished ones, for reuse (no malloc per request) */
  unsigned n_req_free;
  struct coap_uri_memo *uri_memo; /* the last request URI, parsed */
  coap_request_id_t next_request_id;
  /* The node's, shared: */
  coap_context_t *ctx; /* handed to reply callbacks, opaque here */
  const coap_context_config_t *cfg;
  coap_timer_heap_t *timers;
  coap_exch_t *exch;
  coap_peer_table_t *peers;
  const coap_logger_t *log;
  char *last_error; /* what coap_context_last_error says */
  size_t last_error_size;
  const coap_client_ops_t *ops;
} coap_client_t;

/* Everything shared must outlive the client (|cl| is zeroed first). */
void coap_client_init(coap_client_t *cl, coap_context_t *ctx, const coap_client_ops_t *ops,
                      const coap_context_config_t *cfg, coap_timer_heap_t *timers,
                      coap_exch_t *exch, coap_peer_table_t *peers, const coap_logger_t *log,
                      char *last_error, size_t last_error_size);
/* The public request calls (coaps/client.h), on the client the context holds. */
int coap_client_send(coap_client_t *cl, const coap_request_opts_t *o, coap_reply_fn cb, void *user,
                     coap_request_id_t *id);
int coap_client_cancel(coap_client_t *cl, coap_request_id_t id);
int coap_client_observe_cancel(coap_client_t *cl, coap_request_id_t id);
/* The message layer's on_response for every exchange the client starts. */
int coap_client_on_response(void *user, coap_exch_out_t *out, const coap_msg_t *msg, int err,
                            uint64_t now);
/* Ends every outstanding request (COAP_E_CANCELLED) and frees what the
 * client keeps; for coap_context_free. */
void coap_client_free(coap_client_t *cl);

struct coap_client_req {
  coap_client_req_t *prev, *next;
  coap_client_t *cl;
  coap_request_id_t id;
  coap_reply_fn cb;
  void *user;
  coap_exch_out_t *out; /* the exchange in flight: a block-wise transfer moves on */
  coap_timer_t deadline;
  coap_endpoint_t *ep; /* where it went: to find its peer again */
  coap_proto_t proto;  /* the endpoint's */
  coap_address_t dest;
  uint64_t sent_at;
  /* Block-wise state, made only when a transfer needs it: a request that
   * fits one datagram and gets one back costs no allocation. */
  coap_client_block_t *blk;
  size_t payload_len;  /* of the request, for a 4.13 that asks for Block1 */
  uint16_t block_size; /* preferred block size in bytes */
  uint8_t method;
  uint8_t no_response; /* the No-Response value sent (RFC 7967), 0: none */
  /* Observe (observe.c): the observation, NULL for a plain request. */
  coap_client_obs_t *obs;
  /* Set for a fetch of a notification's further blocks: the observation
   * it completes, which owns it. It has no id and no callback of its own. */
  coap_client_req_t *parent;
  /* Q-Block (RFC 9177, qblock.c): the transfer's state and exchanges;
   * r->out is NULL while it runs. */
  coap_client_qb_t *qb;
};

/* Every response class suppressed (RFC 7967): nothing will come back. */
#define COAP_NO_RESPONSE_ALL (COAP_NO_RESPONSE_2XX | COAP_NO_RESPONSE_4XX | COAP_NO_RESPONSE_5XX)

/* Give the caller the outcome and forget |r|: |msg| the response (status
 * 0) or NULL with |err|; |detail| (may be NULL) says more. A block-wise
 * body is handed over from |r|'s block state. */
void coap_client_req_finish(coap_client_req_t *r, const coap_msg_t *msg, int err,
                            const char *detail);

/* A reply describing |msg| (status 0) with nothing else set, for a
 * notification the observation hands over while it goes on. */
void coap_client_reply_init(coap_reply_t *reply, const coap_msg_t *msg);

/* The response path of a request that is no observation (any more):
 * block-wise transfers, No-Response silence, the final reply. Returns
 * what the message layer's on_response returns. */
int coap_client_plain_response(coap_client_req_t *r, coap_exch_out_t *out, const coap_msg_t *msg,
                               int err, uint64_t now);

/* A record for fetching the rest of a notification of observation
 * |parent|: in the context's list (its blocks count in
 * coap_client_reassembly_bytes) with no id and no callback. NULL when out
 * of memory. */
coap_client_req_t *coap_client_req_child(coap_client_req_t *parent);
/* Forget it, its block state, and (|cancel|) its exchange. */
void coap_client_req_child_free(coap_client_req_t *f, int cancel);

/* The largest message worth sending |proto|'s way: a DTLS record at the
 * configured MTU, or RFC 7252 §4.6's 1152 bytes for coap://. |hard| is
 * set when a larger one cannot be sent at all (DTLS). */
size_t coap_client_room(const coap_client_t *cl, coap_proto_t proto, int *hard);

/* block.c */

/* The block size for sending |len| payload bytes with |msg| (every option
 * built, no payload) block-wise: the largest at most |pref| whose block
 * messages fit the datagram room of |proto|. Returns the szx, or
 * COAP_E_TOO_LARGE with the reason in cl->last_error when none fits a
 * DTLS record or the body needs more than 2^20 blocks. Nothing is sent. */
int coap_client_block1_plan(coap_client_t *cl, coap_proto_t proto, const coap_msg_t *msg,
                            size_t len, uint16_t pref);
/* Send |payload| with |msg|'s options in Block1 blocks of |szx| (from
 * coap_client_block1_plan), the first one now. Returns 0, or
 * COAP_E_NOMEM or an exchange error, and then nothing was sent and |r|
 * has no block state. */
int coap_client_block1_start(coap_client_req_t *r, coap_exch_peer_t *peer, const coap_msg_t *msg,
                             const uint8_t *payload, size_t len, uint8_t szx, uint64_t now);
/* Does |msg|, the answer to |r| (which has no block state), call for
 * block-wise work: Block2 with more to come, or a 4.13 hinting at Block1? */
int coap_client_block_wanted(const coap_client_req_t *r, const coap_msg_t *msg);
/* A response in a block-wise transfer (or one that starts it), to the
 * request |out|. Returns 1 when the next request went out (|r| may be
 * gone already: touch nothing), 0 when |msg| is the final response to
 * deliver, or a negative error to end the request with. |*detail| is
 * NULL or the words for the caller (in cl->last_error). */
int coap_client_block_response(coap_client_req_t *r, coap_exch_out_t *out, const coap_msg_t *msg,
                               uint64_t now, const char **detail);
/* For the reply: the reassembled body (|*body| NULL when the last
 * response's payload is the body) and the requests the transfer sent. */
void coap_client_block_result(const coap_client_block_t *b, const uint8_t **body, size_t *len,
                              unsigned *exchanges);
void coap_client_block_free(coap_client_block_t *b);
/* Keep the printf-style reason in cl->last_error and log it at INFO,
 * prefixed by |what| ("block-wise", "q-block"). Returns cl->last_error. */
const char *coap_client_say(coap_client_req_t *r, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Bytes held now for response bodies being fetched (Block2), bounded by
 * the configuration's max_reassembly (coap_stats_t.reassembly_bytes). */
size_t coap_client_reassembly_bytes(const coap_client_t *cl);

/* qblock.c (RFC 9177) */

/* Does request |o| go the Q-Block way? |block1|: its body goes block-wise. */
int coap_client_qb_wanted(const coap_client_t *cl, const coap_request_opts_t *o, int block1);
/* Start it: |len| > 0 sends |payload| in Q-Block1 blocks of |szx| (from
 * coap_client_block1_plan), else asks for the response with Q-Block2.
 * |msg| has every option but the payload. Returns 0, or an error and then
 * |r| has no Q-Block state. */
int coap_client_qb_start(coap_client_req_t *r, coap_exch_peer_t *peer, const coap_msg_t *msg,
                         const uint8_t *payload, size_t len, uint8_t szx, uint64_t now);
/* An answer (or an exchange's end) during the transfer; what the message
 * layer's on_response returns. */
int coap_client_qb_response(coap_client_req_t *r, coap_exch_out_t *out, const coap_msg_t *msg,
                            int err, uint64_t now);
/* Cancel its timer and exchanges (not the one whose answer is being
 * handled); then coap_client_qb_free. */
void coap_client_qb_stop(coap_client_t *cl, coap_client_qb_t *q);
void coap_client_qb_result(const coap_client_qb_t *q, const uint8_t **body, size_t *len,
                           unsigned *exchanges);
size_t coap_client_qb_bytes(const coap_client_qb_t *q);
void coap_client_qb_free(coap_client_qb_t *q);

/* observe.c (RFC 7641) */

/* Make |r|, not sent yet, an observation waiting for its registration's
 * answer. Returns 0 or COAP_E_NOMEM. */
int coap_client_obs_new(coap_client_req_t *r);
/* Forget |r|'s observation: its timer, a fetch of blocks in progress
 * (cancelled, silently). |r| itself and r->out are the caller's. */
void coap_client_obs_free(coap_client_req_t *r);
/* An answer (or the end, |err|) for the exchange of observation |r|, or
 * of a block fetch whose parent is an observation. Return what the
 * message layer's on_response returns (1: keep the exchange). */
int coap_client_obs_response(coap_client_req_t *r, coap_exch_out_t *out, const coap_msg_t *msg,
                             int err, uint64_t now);
int coap_client_obs_fetch_response(coap_client_req_t *f, coap_exch_out_t *out,
                                   const coap_msg_t *msg, int err, uint64_t now);
/* The DTLS session with |peer| was made anew (the server lost ours, or
 * closed it): its observations re-register now (from the timer heap, not
 * from inside the caller). */
void coap_client_observe_reconnected(coap_client_t *cl, coap_peer_t *peer, uint64_t now);
/* |peer| moved from the endpoint |from| to its own (a replacement session
 * from a fresh source port): its requests go with it. */
void coap_client_peer_moved(coap_client_t *cl, const coap_endpoint_t *from,
                            const coap_peer_t *peer);
/* A client session with |peer| is established: requests whose every
 * response class is suppressed (No-Response) have gone out and end now. */
void coap_client_session_up(coap_client_t *cl, coap_peer_t *peer, uint64_t now);
/* Observations held as a client now (coap_stats_t.observations). */
size_t coap_client_observations(const coap_client_t *cl);
/* Does request |r| go to |peer|? */
int coap_client_req_to_peer(const coap_client_req_t *r, const coap_peer_t *peer);

/* ---- invariants (common/invariant.h) ----
 * NULL when sound, else a line naming the broken invariant; compiled in
 * every build, called through COAPS_INVARIANT_HOLDS. */

/* block.c: the request list (links both ways, each request's block-wise,
 * Q-Block and Observe state) and the response bodies it holds within
 * max_reassembly. Checked where a body's buffer grows (which walks the
 * list anyway to count them). */
const char *coap_client_transfers_broken(const coap_client_t *cl);
/* A transfer's state on its own: block.c, qblock.c (|r| its request),
 * observe.c (the observation of |r|, if any). */
const char *coap_client_block_broken(const coap_client_block_t *b, const coap_client_t *cl);
const char *coap_client_qb_broken(const coap_client_qb_t *q, const coap_client_req_t *r);
const char *coap_client_obs_broken(const coap_client_req_t *r);

#endif
