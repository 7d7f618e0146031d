/* The server: resources by path, handler dispatch, the automatic answers
 * (4.04, 4.05, 4.02, 4.12, 4.13, 4.15, 5.05), block-wise transfer (RFC
 * 7959) and /.well-known/core. It turns a request into a response and
 * knows nothing of retransmission or sockets; peers are opaque keys. */
#ifndef COAPS_SERVER_H
#define COAPS_SERVER_H

#include "coaps/context.h"
#include "common/invariant.h"
#include "common/log.h"
#include "common/timer.h"

/* Room for a response's option values and a small payload: a body that
 * does not fit goes to the growable body buffer (coap_body_buf_t). */
#define COAP_RESPONSE_STORE 16384

/* Q-Block2 options one request may carry (a list of missing blocks). */
#define COAP_QB_ASK_MAX 16

/* A buffer grown on demand for bodies larger than the store, kept for
 * reuse: after warm-up a large answer allocates nothing. */
typedef struct coap_body_buf {
  uint8_t *data;
  size_t cap;
} coap_body_buf_t;

/* What the request asked of the response's shape, noted when the response
 * starts so that a deferred answer still knows it. */
typedef struct coap_resp_asked {
  uint8_t block2; /* the request carried Block2 (num, szx below) */
  uint8_t b2_szx;
  uint32_t b2_num;
  uint8_t size2;       /* the request carried Size2 */
  uint8_t block1_echo; /* answer to a Block1 body's last block: echo it */
  coap_block_t b1;
  /* A deferred answer to an unsafe request: the Block1 table's place
   * for it (block1.c; ticket 0: none). */
  uint64_t kept_ticket;
  const void *kept_peer;
  /* Q-Block2 (RFC 9177 §4.4): the blocks asked for, in the request's
   * order (several only when asking for missing blocks); block2, b2_num
   * and b2_szx above then describe the first. qb_bad: not in increasing
   * order, or more than COAP_QB_ASK_MAX (4.00). */
  uint8_t qblock2, qb_n, qb_bad;
  struct {
    uint32_t num;
    uint8_t more, szx;
  } qb[COAP_QB_ASK_MAX];
} coap_resp_asked_t;

struct coap_response {
  coap_msg_t msg;
  uint8_t *store; /* copies of option values and small payloads */
  size_t cap, used;
  coap_body_buf_t *big; /* larger payloads (NULL: the store only) */
  size_t max_body;      /* the most |big| may hold */
  uint8_t szx_max;      /* largest block the server sends on this path */
  int error;            /* a payload could not be kept: answered 5.00 */
  coap_resp_asked_t asked;
  /* Set by coap_response_finish for a Q-Block2 answer: the whole body and
   * the block size, for the NON burst that follows (qblock.c). */
  const uint8_t *qb_body;
  size_t qb_len;
  uint8_t qb_szx;
  /* No answer to send (a Q-Block1 block in the middle of a set, RFC 9177
   * §4.3): the context drops the request (a CON still gets its ACK). */
  int silent;
};

struct coap_request {
  coap_context_t *ctx;
  const coap_msg_t *msg;
  const coap_address_t *peer;
  coap_proto_t proto;
  /* Who asked, as identities only: the peer entry and its DTLS session
   * (NULL for coap://). Block1 bodies are kept per peer and session. */
  const void *peer_key, *session_key;
  uint64_t now; /* when it came (virtual in tests) */
  /* Set by the context: turns this request into a deferred one, whose
   * answer is built in *deferred_resp (the context's storage). */
  coap_deferred_t *(*defer)(const coap_request_t *req, coap_response_t *resp,
                            coap_response_t **deferred_resp);
  void *defer_user;
  coap_deferred_t *deferred; /* set once deferred */
  coap_response_t *deferred_resp;
  int is_notification; /* built for observers (observe.c): no defer */
};

typedef struct coap_b1_entry coap_b1_entry_t;

/* Block1 bodies being reassembled, and answers to unsafe requests kept
 * for their Block2 follow-ups (block1.c). Hashed by peer. */
typedef struct coap_b1_table {
  coap_b1_entry_t **buckets;
  size_t n_buckets, count;
  size_t bytes;   /* charged against max_reassembly */
  uint64_t stamp; /* entries numbered in order of creation */
  int full_logged;
  unsigned check_ops; /* changes since the last invariant walk (block1.c) */
} coap_b1_table_t;

/* ---- Observe (RFC 7641), observe.c ---- */

typedef struct coap_observer coap_observer_t;
typedef struct coap_obs_group coap_obs_group_t;

/* What the context does for the observer registry, which has no I/O of
 * its own: it hands over finished notifications. */
typedef struct coap_obs_ops {
  /* Send a notification to |peer_key|: CON when |con|, else NON; |rest|
   * is the message after header and token. For a CON, *|handle| receives
   * what cancel() takes, and coap_observe_con_done(obs) must follow when
   * it ends (ACK, RST, timeout). *|mid| receives its message ID. Returns
   * 0 or a negative error. */
  int (*send)(void *user, const void *peer_key, int con, uint8_t code, const uint8_t *token,
              uint8_t token_len, const uint8_t *rest, size_t rest_len, coap_observer_t *obs,
              void **handle, uint16_t *mid);
  /* Forget a CON notification in flight, with no callback. */
  void (*cancel)(void *user, void *handle);
  /* Put a newer state in place of the CON in flight |handle| if it is
   * being retransmitted (RFC 7641 §4.5.2): 1 when done (*|mid| its new
   * message ID), 0 when its ACK is to be awaited, or a negative error. */
  int (*replace)(void *user, void *handle, uint8_t code, const uint8_t *rest, size_t rest_len,
                 uint16_t *mid);
  /* 1 when replace() would replace |handle| now. */
  int (*retransmitting)(void *user, void *handle);
  /* The peer's address (for coap_request_peer in the handler). */
  const coap_address_t *(*peer_addr)(void *user, const void *peer_key);
  uint64_t (*now)(void *user);
} coap_obs_ops_t;

/* Per resource (embedded in it). */
typedef struct coap_obs_res {
  coap_obs_group_t *groups; /* observers with byte-identical requests
                               (found through coap_obs_table_t.gbuckets) */
  size_t count;
  uint32_t seq; /* the last Observe value given out */
  int observable;
  /* During an import of relations (coap_observe_import): the oldest
   * Observe value one of them carried in, once set. */
  uint32_t carried_low;
  uint8_t carried_set;
} coap_obs_res_t;

/* Every observer of the context, hashed by peer. */
typedef struct coap_obs_table {
  coap_observer_t **buckets;
  size_t n_buckets, count;
  coap_obs_group_t **gbuckets; /* every group, by resource and request */
  size_t n_gbuckets, n_groups;
  size_t bytes;           /* what observers and groups hold (heap) */
  uint64_t sent, removed; /* notifications_sent, observers_removed */
  const coap_obs_ops_t *ops;
  void *user;
  uint8_t *store; /* COAP_RESPONSE_STORE, made on first notification */
  coap_body_buf_t big;
  uint8_t *wire; /* one encoded notification */
  size_t wire_cap;
  int limit_logged, peer_limit_logged;
  int building;        /* a notification is being built: no re-entry */
  coap_context_t *ctx; /* handed to handlers */
  unsigned check_ops;  /* changes since the last invariant walk */
} coap_obs_table_t;

typedef struct coap_server {
  coap_resource_t *first, *last; /* registration order, for discovery */
  coap_resource_t **buckets;     /* by path */
  size_t n_buckets, count;
  size_t max_payload;
  const coap_logger_t *log;
  /* Set by coap_server_configure: the context's limits and timers. */
  const coap_context_config_t *cfg;
  coap_timer_heap_t *timers;
  coap_b1_table_t b1;
  struct coap_b2_cache *b2_cache; /* block2.c, made on first need */
  coap_obs_table_t obs;
  struct coap_qb_peers *qb_peers; /* qblock.c: peers that spoke Q-Block */
  uint64_t qb_blocks_sent;        /* Q-Block2 blocks sent in bursts */
  /* Zeroed memory for a resource and its path: calloc, or a test's
   * allocator that fails on purpose (tests/unit/test_resource_add.c). */
  void *(*zalloc)(size_t size);
  unsigned check_ops; /* registry changes since the last invariant walk */
} coap_server_t;

int coap_server_init(coap_server_t *s, size_t max_payload, const coap_logger_t *log);
/* Block-wise transfer needs the limits of |cfg| (block_size, max_body,
 * max_reassembly, tx for EXCHANGE_LIFETIME) and a heap for its expiry
 * timers; both must outlive |s|. */
void coap_server_configure(coap_server_t *s, const coap_context_config_t *cfg,
                           coap_timer_heap_t *timers);
void coap_server_free(coap_server_t *s);

/* Start |resp| as the answer to |req|: its store, the method's default
 * code, the request's token, and what the request asked of its shape
 * (Block2, Size2). Bodies beyond the store need coap_response_set_limits. */
void coap_response_init(coap_response_t *resp, const coap_msg_t *req, uint8_t *store, size_t cap);
/* Let |resp| hold bodies up to |max_body| in |big|, and send blocks of at
 * most 2^(szx_max+4) bytes. */
void coap_response_set_limits(coap_response_t *resp, coap_body_buf_t *big, size_t max_body,
                              uint8_t szx_max);
/* Shape the response for the wire: a body larger than a block (or one
 * asked for with Block2) becomes the block asked for, with Block2, ETag
 * and Size2 (RFC 7959 §2.4, §4); the last block of a Block1 body gets its
 * Block1 echoed; a payload that could not be kept becomes 5.00. */
void coap_response_finish(coap_response_t *resp);

/* Handle |req->msg|: fill |resp| ready to send (finished), or leave it to a
 * deferred answer (req->deferred set). */
void coap_server_dispatch(coap_server_t *s, coap_request_t *req, coap_response_t *resp);

/* Add a Block1/Block2 option (NUM, M, SZX) to |resp|. */
void coap_response_add_block(coap_response_t *resp, uint16_t number, uint32_t num, int more,
                             uint8_t szx);

/* A peer goes away: forget its Block1 bodies and kept answers. */
void coap_server_peer_gone(coap_server_t *s, const void *peer_key);
/* 1 while |peer_key| has a Block1 body or a kept answer: an open exchange,
 * so the peer table must not evict it. */
int coap_server_peer_busy(const coap_server_t *s, const void *peer_key);

/* ---- Observe (observe.c) ---- */

void coap_observe_set_ops(coap_server_t *s, const coap_obs_ops_t *ops, void *user,
                          coap_context_t *ctx);
/* After the GET/FETCH handler of an observable resource answered |req|
 * (not deferred), before coap_response_finish: register, re-register or
 * deregister as the request's Observe option says, and add Observe (and
 * Max-Age 60 when the handler set none) to a registration's answer. */
void coap_observe_request(coap_server_t *s, coap_resource_t *r, const coap_request_t *req,
                          coap_response_t *resp);
/* coap_resource_notify. Returns the observers notified. */
int coap_observe_notify(coap_server_t *s, coap_resource_t *r);
/* End every observation of |r|: a last notification with |code| (4.04
 * when the resource goes) or, with code 0, the GET handler's answer
 * without Observe; then forget them. */
void coap_observe_end_all(coap_server_t *s, coap_resource_t *r, uint8_t code);
/* A CON notification ended: err 0 (ACKed) or why not. */
void coap_observe_con_done(coap_server_t *s, coap_observer_t *obs, int err);
/* An RST with |mid| from |peer_key| that matched no CON: if it answers a
 * NON notification, its observer goes. Returns 1 when it did. */
int coap_observe_reset(coap_server_t *s, const void *peer_key, uint16_t mid);
/* The peer (or its DTLS session) is gone: forget its observers, no
 * message. */
void coap_observe_peer_gone(coap_server_t *s, const void *peer_key);
/* 1 while |peer_key| observes something: an open exchange. */
int coap_observe_peer_busy(const coap_server_t *s, const void *peer_key);
void coap_observe_free_all(coap_server_t *s);

/* Observe relations carried across a restart with their DTLS session
 * (src/context/sessions_state.c seals them). A relation is written as
 * what a new process needs to go on notifying the same observer: the
 * token, the registration as kept (path, query, Accept, a FETCH body),
 * the resource's last Observe value, the block size, where the CON/NON
 * rhythm stands, and whether the newest state may not have arrived (a CON
 * unacknowledged or a state waiting behind one). */
/* Bytes coap_observe_export writes at most for all the relations of |s|,
 * beyond the 2 of each peer's count. */
size_t coap_observe_export_bound(const coap_server_t *s);
/* |peer_key|'s relations on |session_key|: a count (2 bytes), then each.
 * The length, or -1 when |cap| is too small. |*n| counts them. */
long coap_observe_export(const coap_server_t *s, const void *peer_key, const void *session_key,
                         uint8_t *out, size_t cap, size_t *n);
/* What became of the relations read by coap_observe_import. */
typedef struct coap_obs_import_tally {
  size_t carried;
  size_t no_session;     /* their session was not taken over: nothing to send them on */
  size_t resource_gone;  /* no such resource now: a 4.04 ended each */
  size_t not_observable; /* the resource is no longer observable: ended without Observe */
  size_t over_limit;     /* max_observers(_per_peer): ended without Observe */
  size_t seq_apart;      /* Observe values too far from the others carried into the resource */
  size_t duplicate;      /* the same token on the same resource twice */
  size_t no_memory;
} coap_obs_import_tally_t;
/* Before the first coap_observe_import of an import: each resource starts
 * with no carried Observe value. */
void coap_observe_import_begin(coap_server_t *s);
/* The relations at |*at| of |in| (as coap_observe_export wrote them),
 * attached to |peer_key| and |session_key| (a |proto| peer); with |peer_key| NULL (the session was
 * not taken over) read and counted only. A relation that cannot go on is ended with a last message
 * where one can be made. 0 and |*at| past them, or COAP_E_INVALID_ARG (|in| is not such a record:
 * those before it are kept). */
int coap_observe_import(coap_server_t *s, const void *peer_key, const void *session_key,
                        coap_proto_t proto, const uint8_t *in, size_t len, size_t *at,
                        coap_obs_import_tally_t *tally);

/* ---- between the server's files ---- */
coap_obs_res_t *coap_resource_obs(coap_resource_t *r);
coap_server_t *coap_resource_server(const coap_resource_t *r);
coap_resource_t *coap_server_lookup(const coap_server_t *s, const char *path, size_t len);
/* dispatch.c: |req|'s Uri-Path segments joined with '/' into |buf|; the
 * length, or -1 when it does not fit. */
int coap_server_request_path(const coap_msg_t *req, char *buf, size_t cap);
/* coap_resource_add/find/remove (coaps/context.h) on the context's server. */
/* 0 with the new resource in |*out|, COAP_E_EXISTS (|path| is taken),
 * COAP_E_NOMEM or COAP_E_INVALID_ARG; |*out| is NULL on failure. */
int coap_server_resource_add(coap_server_t *s, const char *path, coap_resource_t **out);
coap_resource_t *coap_server_resource_find(const coap_server_t *s, const char *path);
int coap_server_resource_remove(coap_server_t *s, coap_resource_t *res);
coap_handler_fn coap_resource_handler(const coap_resource_t *r, uint8_t method, void **user);
int coap_resource_accepts_format(const coap_resource_t *r, int format);
int coap_server_write_links(const coap_server_t *s, const char *query, char *buf, size_t cap,
                            size_t *len);

/* Replace whatever |resp| holds by the error |code| with a diagnostic
 * payload (RFC 7252 §5.5.2). */
void coap_response_error(coap_response_t *resp, uint8_t code, const char *diagnostic);
/* Back to a fresh answer to |req| (the method's code, no options, no
 * payload), keeping the store, the body buffer and the limits. */
void coap_response_reset(coap_response_t *resp, const coap_msg_t *req);
/* Note what |req| asks of the response's shape (Block2, Size2). */
void coap_response_note_request(coap_response_t *resp, const coap_msg_t *req);

/* options.c: RFC 7252 §5.4 on a request. Returns 0 when every option can
 * be acted upon as the server does, with |clean| set to |req| or, when
 * elective options must be ignored (unrecognised, repeated or out of
 * their length range), to |scratch| holding a copy without them;
 * otherwise the error code to answer (4.02, 5.05, 4.00) with |why| set. */
int coap_server_check_options(const coap_msg_t *req, coap_msg_t *scratch, const coap_msg_t **clean,
                              char *why, size_t why_cap);

/* The same with Q-Block1/Q-Block2 (RFC 9177) acted on when |qblock|:
 * Q-Block2 may then repeat (a request for missing blocks, §4.1), and a
 * mix of Q-Block and Block options is 4.02 (§4.1). */
int coap_server_check_options_qb(const coap_msg_t *req, int qblock, coap_msg_t *scratch,
                                 const coap_msg_t **clean, char *why, size_t why_cap);

/* ---- Q-Block (RFC 9177), qblock.c ---- */

/* Peers known to speak Q-Block: a small direct-mapped table, slot by the
 * peer's hash (a peer that loses its slot to another is answered with
 * Block2 again until it sends a Q-Block option once more: slower, never
 * wrong). */
#define QB_PEER_SLOTS 256
struct coap_qb_peers {
  struct coap_qb_peer {
    const void *peer, *session;
  } slot[QB_PEER_SLOTS];
  unsigned check_ops; /* changes since the last invariant walk */
};

/* 1 when the server answers Q-Block options (coap_context_config_t). */
int coap_qblock_enabled(const coap_server_t *s);
/* MAX_PAYLOADS: blocks a burst carries, blocks a Q-Block1 set holds. */
uint32_t coap_qblock_max_payloads(const coap_server_t *s);
/* |req| carried a Q-Block option: its peer (and session) knows Q-Block,
 * so a large answer to a later NON GET/FETCH of its with a Request-Tag
 * goes Q-Block2 even without the option (libcoap probes once, then asks
 * that way; dispatch.c). */
void coap_qblock_peer_note(coap_server_t *s, const coap_request_t *req);
int coap_qblock_peer_known(const coap_server_t *s, const coap_request_t *req);
/* After the first block of a Q-Block2 answer to the NON request |req_msg|
 * went out: send the rest of what it asked for (the rest of the
 * MAX_PAYLOADS set, the next set for a 'Continue', the missing blocks
 * listed) as NON responses with its token, each with its own message ID,
 * through the observe ops' send (the server does no I/O). Nothing for a
 * CON request (one block per request, as RFC 7959) or a non-Q-Block
 * answer. Returns the blocks sent. */
unsigned coap_qblock2_burst(coap_server_t *s, const void *peer_key, const coap_msg_t *req_msg,
                            coap_response_t *resp);
void coap_qblock_peer_gone(coap_server_t *s, const void *peer_key);
void coap_qblock_free(coap_server_t *s);

/* block2.c: an ETag for a representation that has none (8 bytes). */
void coap_body_etag(const uint8_t *data, size_t len, uint8_t out[8]);
/* The representation's entity tag: the one set, else the hash; returns
 * its length (0 when |resp| is no 2.xx with a body). */
size_t coap_response_etag(const coap_response_t *resp, uint8_t out[8]);

/* precondition.c: If-Match / If-None-Match (RFC 7252 §5.10.8). Before
 * an unsafe method's handler: the GET handler (when the resource has one)
 * tells whether a representation exists and its ETag. Returns 1 when
 * |resp| holds the 4.12 answer, 0 to go on. */
int coap_server_precondition_before(coap_server_t *s, coap_resource_t *r, coap_request_t *req,
                                    coap_response_t *resp);
/* After a safe method's handler: its own answer is the representation.
 * Replaces |resp| by 4.12 when a condition fails. */
void coap_server_precondition_after(const coap_request_t *req, coap_response_t *resp);

/* block1.c: a request with Block1 (RFC 7959 §2.3, §2.5). */
typedef enum coap_b1_result {
  COAP_B1_ANSWERED, /* |resp| holds the answer (2.31, 4.00, 4.08, 4.13, 5.03) */
  COAP_B1_COMPLETE, /* the whole body is in |body|, |len|: run the handler */
  COAP_B1_SILENT    /* Q-Block1: nothing to answer to this block */
} coap_b1_result_t;
/* block1.c: a request with Q-Block1 (RFC 9177 §4.3): blocks in any
 * order, kept in the same table and bounds as Block1 bodies (key: peer,
 * session, method, path, Request-Tag; Request-Tag and Size1 required,
 * else 4.00). A NON block that completes a MAX_PAYLOADS set (from block
 * 0) gets 2.31; the first block of a later set while an earlier one has
 * gaps gets 4.08 listing them (application/missing-blocks+cbor-seq); the
 * rest get nothing, and NON_RECEIVE_TIMEOUT after the last block (doubled
 * each time, NON_MAX_RETRANSMIT times) a 4.08 goes to the latest token
 * (through the observe ops' send). A block of a body already handled gets
 * the handler's answer code again, never a second run. */
coap_b1_result_t coap_qb1_receive(coap_server_t *s, const coap_request_t *req, const char *path,
                                  size_t path_len, const coap_block_t *b, coap_response_t *resp,
                                  const uint8_t **body, size_t *len);
/* After the handler of a Q-Block1 body: remember that it ran (and its
 * code) for the body's key, until EXCHANGE_LIFETIME. */
void coap_qb1_answered(coap_server_t *s, const coap_request_t *req, const char *path,
                       size_t path_len, const coap_response_t *resp);
/* qblock.c: send |m| (its code, options and payload) as a NON response
 * with |token| to |peer_key|. Returns 0 or a negative error. */
int coap_qblock_send_non(coap_server_t *s, const void *peer_key, const uint8_t *token,
                         uint8_t token_len, const coap_msg_t *m);
coap_b1_result_t coap_b1_receive(coap_server_t *s, const coap_request_t *req, const char *path,
                                 size_t path_len, const coap_block_t *b, coap_response_t *resp,
                                 const uint8_t **body, size_t *len);
/* After the handler of a completed body (or of any unsafe request):
 * forget the body, and keep the answer when it goes block-wise, so that
 * its later blocks come without running the handler again. */
void coap_b1_answered(coap_server_t *s, const coap_request_t *req, const char *path,
                      size_t path_len, const coap_response_t *resp);
/* An unsafe request asking for a later block of a kept answer: fill
 * |resp| from it. Returns 1 when it did, 0 when there is none. */
int coap_b1_serve_kept(coap_server_t *s, const coap_request_t *req, const char *path,
                       size_t path_len, coap_response_t *resp);
/* The handler of |req| deferred: forget the body, and hold a place for
 * the answer |later| (an unsafe method's) so that, sent block-wise, its
 * later blocks come from a copy as a synchronous answer's do. */
void coap_b1_deferred(coap_server_t *s, const coap_request_t *req, const char *path,
                      size_t path_len, coap_response_t *later);
/* coap_deferred_send, before finishing |resp|: keep it in its place when
 * it goes block-wise. */
void coap_b1_deferred_answered(coap_server_t *s, const coap_response_t *resp, uint64_t now);
void coap_b1_free_all(coap_server_t *s);

/* block2.c: the last few block-wise representations of GET and FETCH
 * answers, kept a few seconds so that their later blocks do not run the
 * handler again (the rules are in block2.c). Their bytes count in
 * max_reassembly (b1.bytes) and give way to Block1 bodies. */
typedef struct coap_b2_cache coap_b2_cache_t;
/* A GET/FETCH asking for a block after the first: fill |resp| (not
 * finished) from a fresh copy made for this peer. Returns 1 when it did. */
int coap_b2_cache_serve(coap_server_t *s, const coap_request_t *req, coap_response_t *resp);
/* After a GET/FETCH handler answered |req| (before finishing |resp|):
 * keep the representation when it goes block-wise (adds its ETag). */
void coap_b2_cache_keep(coap_server_t *s, const coap_request_t *req, coap_response_t *resp);
/* Free copies (oldest first) until |need| more bytes fit max_reassembly;
 * returns 1 when they do. */
int coap_b2_cache_make_room(coap_server_t *s, size_t need);
void coap_b2_cache_peer_gone(coap_server_t *s, const void *peer_key);
void coap_b2_cache_free(coap_server_t *s);

/* ---- invariants (common/invariant.h) ----
 * Each returns NULL when its structure is sound, else a line naming the
 * broken invariant; compiled in every build (the unit tests corrupt the
 * structures), called through COAPS_INVARIANT_HOLDS, sampled. */

/* resource.c: the registry's list and hash agree with count, every
 * resource in its path's bucket, no path twice, paths normalised. */
const char *coap_server_registry_broken(const coap_server_t *s);
/* The resource after |r| in registration order (NULL: the first). */
coap_resource_t *coap_server_resource_next(const coap_server_t *s, const coap_resource_t *r);
/* observe.c: observers and groups against their counts, buckets, lists
 * and back-pointers, each resource's count, the limits (max_observers,
 * max_observers_per_peer), keys unique, bytes as counted. */
const char *coap_obs_table_broken(const coap_server_t *s);
/* block1.c: the Block1/Q-Block1 table (counts, buckets, keys, the
 * per-peer bound, each entry's charge and Q-Block1 bitmap), with the
 * Block2 copies, against bytes and max_reassembly. */
const char *coap_b1_table_broken(const coap_server_t *s);
/* After a change of the Block1 table or the Block2 copies: the walk
 * above now and then, at a cost of about the entries (each compared with
 * its bucket's others), the buckets and the Q-Block1 bitmaps, whose bytes
 * are at most 1/128 of the bodies' (blocks of 16 bytes at the least).
 * Nothing where invariants are not checked. */
static inline void coap_b1_table_check(coap_server_t *s) {
  coap_b1_table_t *t = &s->b1;
  if (coap_invariant_walk_due(&t->check_ops, t->count * 8 + t->n_buckets + t->bytes / 128))
    COAPS_INVARIANT_HOLDS(coap_b1_table_broken(s));
}
/* block2.c: the Block2 copies (layout, charge, max_body, keys unique,
 * peer lists); |*bytes| receives what they charge. */
const char *coap_b2_cache_broken(const coap_server_t *s, size_t *bytes);
/* qblock.c: every peer known to speak Q-Block is in its own slot. */
const char *coap_qblock_peers_broken(const coap_server_t *s);

#endif
