/* coaps — the context: one CoAP node (server and client at once).
 *
 * The context is a sans-I/O engine: it is given datagrams and the time, and
 * it hands datagrams to a transport. Two ways to drive it:
 *
 *  1. With the built-in I/O shell (coaps/io.h): coap_context_listen() binds
 *     UDP sockets, coap_run() loops until SIGINT/SIGTERM or
 *     coap_context_stop(); coap_context_fd()/coap_context_process() embed
 *     it into an application's own poll loop.
 *  2. Fully embedded: install a coap_transport_t, feed received datagrams
 *     with coap_context_input() (or coap_context_input_to() with the
 *     address they were sent to, for a wildcard-bound socket), call
 *     coap_context_handle_timeouts() when
 *     coap_context_next_timeout() says so. Tests drive a whole network of
 *     contexts this way with a virtual clock.
 */
#ifndef COAPS_CONTEXT_H
#define COAPS_CONTEXT_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "coaps/diag.h"
#include "coaps/error.h"
#include "coaps/wire.h"

#include "coaps/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coap_context coap_context_t;
typedef struct coap_endpoint coap_endpoint_t;
typedef struct coap_resource coap_resource_t;
typedef struct coap_request coap_request_t;
typedef struct coap_response coap_response_t;
typedef struct coap_deferred coap_deferred_t;

/* ---- addresses ---- */

/* A value type: its layout is frozen (export.h). */
typedef struct coap_address {
  socklen_t size;
  union {
    struct sockaddr sa;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    struct sockaddr_storage st;
  } addr;
} coap_address_t;

/* The IPv6 any-address (dual stack), port 0. */
COAPS_API void coap_address_init(coap_address_t *addr);
/* Set the port (host order), keeping the address. */
COAPS_API void coap_address_set_port(coap_address_t *addr, uint16_t port);
COAPS_API uint16_t coap_address_get_port(const coap_address_t *addr);
/* Parse a numeric IPv4/IPv6 literal (no name resolution). 0 or
 * COAP_E_INVALID_ARG. */
COAPS_API int coap_address_from_string(coap_address_t *addr, const char *host, uint16_t port);
/* "192.0.2.1:5683" or "[2001:db8::1]:5684"; an IPv4-mapped IPv6 address
 * as its IPv4 address ("192.0.2.1:5683"). Returns |buf|. */
COAPS_API const char *coap_address_format(const coap_address_t *addr, char *buf, size_t cap);
COAPS_API int coap_address_equal(const coap_address_t *a, const coap_address_t *b);

/* ---- environment injected into a context ---- */

typedef enum coap_log_level {
  COAP_LOG_NONE = -1, /* nothing; the configuration default (see
                         coap_context_config_t.log_level) */
  COAP_LOG_ERROR = 0,
  COAP_LOG_WARNING = 1,
  COAP_LOG_INFO = 2,
  COAP_LOG_DEBUG = 3
} coap_log_level_t;

typedef void (*coap_log_fn)(void *user, coap_log_level_t level, const char *line);
/* Fill |buf| with |len| unpredictable bytes. */
typedef void (*coap_rand_fn)(void *user, uint8_t *buf, size_t len);
/* Monotonic milliseconds; calls that take no |now| (coap_send_request)
 * ask it. Tests inject a virtual clock. */
typedef uint64_t (*coap_clock_fn)(void *user);
/* Resolve |host| to an address for |port|; used for host names in URIs. */
typedef int (*coap_resolve_fn)(void *user, const char *host, uint16_t port, coap_address_t *out);

/* ---- transmission parameters (RFC 7252 §4.8) ---- */

/* Filled by the program, read by the library: versioned (export.h). */
typedef struct coap_tx_params {
  uint32_t ack_timeout_ms;       /* ACK_TIMEOUT, default 2000 */
  uint32_t ack_random_factor_pm; /* ACK_RANDOM_FACTOR in per mille, 1500 */
  uint8_t max_retransmit;        /* MAX_RETRANSMIT, default 4 */
  uint8_t nstart;                /* NSTART, default 1 */
  uint32_t separate_delay_ms;    /* wait before an empty ACK, default 300 */
  uint32_t response_timeout_ms;  /* wait for a response after the ACK or
                                    for a NON request, default 93000
                                    (MAX_TRANSMIT_WAIT) */
  uint8_t token_len;             /* random token length, 4..8, default 4 */
  uint16_t dedup_capacity;       /* remembered message IDs per peer, 64 */
} coap_tx_params_t;

/* Versions of coap_tx_params_t; each one's layout is frozen. It is also
 * coap_context_config_t's first field: a new field here takes a new
 * COAP_CONTEXT_CONFIG_V.. too (docs/architecture.md, "ABI"). */
#define COAP_TX_PARAMS_V1 1
#define COAP_TX_PARAMS_VERSION COAP_TX_PARAMS_V1

/* Fill |p| (a coap_tx_params_t of |version|) with the RFC 7252 defaults.
 * 0, or COAP_E_INVALID_ARG (nothing written) for a version this library
 * does not know or a NULL |p|. Call it as coap_tx_params_default(p). */
COAPS_API int coap_tx_params_default_versioned(int version, coap_tx_params_t *p);
#define coap_tx_params_default(p) coap_tx_params_default_versioned(COAP_TX_PARAMS_VERSION, (p))

/* ---- context ---- */

/* Filled by the program, read by coap_context_new: versioned (export.h). */
typedef struct coap_context_config {
  coap_tx_params_t tx;
  size_t max_peers;      /* default 100000 */
  uint32_t peer_idle_ms; /* forget an idle peer, default 300000 */
  /* With max_peers reached, a datagram from a new peer makes room by
   * forgetting the peer silent longest, if that one has been silent for
   * peer_evict_ms and has no exchange open (a DTLS session gets a
   * close_notify). Clients that vanish without closing (power loss, a
   * new address) then cannot lock new ones out until they expire.
   * Default 30000; 0: never, new peers are refused while the table is
   * full. Only datagrams received make room, never requests sent. */
  uint32_t peer_evict_ms;
  /* Largest request payload a server takes in one message (without
   * Block1), default 1024. A larger one is answered 4.13 with Size1 (and,
   * up to max_body, a Block1 option naming the block size to send it in,
   * RFC 7959 §2.9.3); bodies that come block-wise are bounded by max_body
   * instead. */
  size_t max_payload;
  /* Block-wise transfer (RFC 7959). */
  uint16_t block_size;   /* preferred block size, 16..1024 (a power of
                            two), default 1024: the largest a response
                            or request block this side sends. A server
                            answers in the client's Block2 size when
                            smaller, and over DTLS in no more than a
                            record holds at the MTU (coap_dtls_set_mtu);
                            it asks for it in 2.31 when a client's
                            Block1 blocks are larger (§2.5) */
  size_t max_body;       /* largest body reassembled or served block-wise,
                            as client and server, default 1 MiB: a
                            larger request body (or its Size1) gets
                            4.13 with Size1, a larger response body
                            5.00 */
  size_t max_reassembly; /* all Block1 bodies being reassembled at once
                            (and answers to unsafe requests kept for
                            their later Block2 blocks, and the GET/
                            FETCH copies of coap_handler_fn), in bytes,
                            default 8 MiB; beyond it a new body is
                            answered 5.03. Each peer has at most 4 under
                            way (a fifth replaces its oldest); one
                            expires EXCHANGE_LIFETIME after its last
                            block. As client: the response bodies
                            being fetched (Block2) at once, together;
                            a transfer that would pass it ends with
                            COAP_E_TOO_LARGE and a detail saying so */
  /* Q-Block (RFC 9177), as server: block-wise transfer without lock-step
   * for NON requests. 0 (the default) answers Q-Block1 and Q-Block2 (a
   * server uses them only when a client asks); 1 turns them off, and a
   * request carrying one gets 4.02 like any critical option not acted on.
   * See coap_handler_fn for what the server does. On coap:// nothing
   * proves a request's source address: a forged NON GET with Q-Block2
   * sends a set of blocks (up to qblock_max_payloads x the block size) to
   * whoever it names, ten times what a Block2 answer would; RFC 9177 §11
   * does not recommend Q-Block without security, so a server reachable
   * from untrusted networks on coap:// may turn it off (coaps:// peers
   * have passed the DTLS cookie exchange). */
  uint8_t qblock_server_off;
  uint16_t qblock_max_payloads; /* MAX_PAYLOADS (RFC 9177 §7.2): blocks a
                                 Q-Block2 burst carries (and a Q-Block1 set
                                 holds), default 10 (0: 10); both ends must
                                 use the same value */
  /* Q-Block (RFC 9177), as client: coap_request_opts_t.qblock's default
   * (0, the default: off; 1: every GET, and every PUT or POST whose body
   * goes block-wise, uses Q-Block). Off by default because a server that
   * does not know Q-Block answers 4.02 and the request then goes again the
   * RFC 7959 way, a round trip lost; nothing is remembered per server. The
   * client takes MAX_PAYLOADS from qblock_max_payloads (at most 16: a DTLS
   * session holds 16 datagrams until its handshake is done). */
  uint8_t qblock_client;
  uint32_t qblock_non_timeout_ms; /* NON_TIMEOUT (RFC 9177 §7.2), default
                                 2000 (0: 2000). Sending a body: a quarter
                                 of it without the burst's 2.31 sends the
                                 burst's last block again (the server
                                 answers it with 2.31 or a 4.08 list), then
                                 NON_TIMEOUT between such probes, and every
                                 third silent wait the next burst; 6 silent
                                 waits end the request with
                                 COAP_E_TIMEOUT. Fetching: a set that stops
                                 short is asked for after a quarter of it,
                                 a request unanswered after twice it
                                 (NON_RECEIVE_TIMEOUT), and NON_MAX_
                                 RETRANSMIT (4) waits without a block (12
                                 once blocks came) end the request with
                                 COAP_E_TIMEOUT */
  /* Observe (RFC 7641), as server. */
  size_t max_observers;            /* observations at once in the context,
                                      default 100000; a registration beyond it
                                      is served as a plain GET (no Observe in the
                                      answer: the client knows it is not
                                      registered, §4.1) and the limit is logged
                                      once */
  uint16_t max_observers_per_peer; /* per peer (address and DTLS session),
                                 default 64; beyond it the same */
  uint16_t observe_con_every;      /* every Nth notification to an observer is
                                      CON, to find out whether it is still there
                                      (§4.5); default 20; 1: all CON */
  uint32_t observe_con_interval_s; /* and at least one CON per this many
                                 seconds, default 86400 (24 h) */
  /* The library is silent by default. |log| default NULL: lines go to
   * stderr, but only once |log_level| (or coap_context_set_log_level)
   * is raised above COAP_LOG_NONE. An installed |log| with the level
   * left at COAP_LOG_NONE receives errors and warnings. */
  coap_log_fn log; /* default NULL (stderr, see above) */
  void *log_user;
  coap_log_level_t log_level; /* default COAP_LOG_NONE */
  coap_rand_fn rand;          /* default: the system's CSPRNG */
  void *rand_user;
  coap_resolve_fn resolve; /* default: getaddrinfo */
  void *resolve_user;
  coap_clock_fn clock; /* default: CLOCK_MONOTONIC */
  void *clock_user;
} coap_context_config_t;

/* Versions of coap_context_config_t; each one's layout is frozen. */
#define COAP_CONTEXT_CONFIG_V1 1
#define COAP_CONTEXT_CONFIG_VERSION COAP_CONTEXT_CONFIG_V1

/* Fill |cfg| (of |version|) with the defaults. 0, or COAP_E_INVALID_ARG
 * (nothing written) for an unknown version or a NULL |cfg|. Call it as
 * coap_context_config_default(cfg). */
COAPS_API int coap_context_config_default_versioned(int version, coap_context_config_t *cfg);
#define coap_context_config_default(cfg) \
  coap_context_config_default_versioned(COAP_CONTEXT_CONFIG_VERSION, (cfg))

/* A context configured by |cfg|, a coap_context_config_t of |version|:
 * the fields a newer version has take their defaults. NULL |cfg| means
 * defaults (|version| is checked all the same). Returns NULL when out of memory (errno ENOMEM) or
 * for a version this library does not know (errno EINVAL; there is no logger yet to say so). Call
 * it as coap_context_new(cfg). */
COAPS_API coap_context_t *coap_context_new_versioned(int version, const coap_context_config_t *cfg);
#define coap_context_new(cfg) coap_context_new_versioned(COAP_CONTEXT_CONFIG_VERSION, (cfg))
/* Closes endpoints and sockets, fails outstanding requests with
 * COAP_E_CANCELLED, frees everything. NULL is accepted. */
COAPS_API void coap_context_free(coap_context_t *ctx);

/* |p| is a coap_tx_params_t of |version|: the fields a newer version has
 * keep their values in the context. 0, or COAP_E_INVALID_ARG (a value out
 * of range, an unknown version: logged). Call it as
 * coap_context_set_tx_params(ctx, p). */
COAPS_API int coap_context_set_tx_params_versioned(coap_context_t *ctx, int version,
                                                   const coap_tx_params_t *p);
#define coap_context_set_tx_params(ctx, p) \
  coap_context_set_tx_params_versioned((ctx), COAP_TX_PARAMS_VERSION, (p))
COAPS_API void coap_context_set_log_level(coap_context_t *ctx, coap_log_level_t level);

/* ---- transport (embedding without the I/O shell) ---- */

typedef enum coap_proto {
  COAP_PROTO_UDP = 0, /* coap:// */
  COAP_PROTO_DTLS = 1 /* coaps:// */
} coap_proto_t;

/* Filled by the program, copied by the library: versioned (export.h). */
typedef struct coap_transport {
  /* Send one datagram from |ep| to |to|. Return 0 or a negative error;
   * -ECONNREFUSED style failures are reported as COAP_E_UNREACHABLE. */
  int (*send)(void *user, coap_endpoint_t *ep, const coap_address_t *to, const uint8_t *data,
              size_t len);
  /* The client needs a local endpoint for |proto| and the address family
   * of |dest|: create one (coap_context_add_endpoint) and return it. */
  int (*open_client_endpoint)(void *user, coap_context_t *ctx, coap_proto_t proto,
                              const coap_address_t *dest, coap_endpoint_t **out);
  /* Optional. Send one datagram from |ep| to |to| with |local| as its
   * source address: the address |to|'s datagrams arrived at, as given to
   * coap_context_input_to() (its port is the endpoint's). A socket bound
   * to a wildcard address must answer from the address it was asked at,
   * or the peer (a connected socket, a DTLS client) drops the answer; the
   * I/O shell uses IP_PKTINFO/IPV6_PKTINFO. Used instead of |send| for
   * every datagram to a peer that has a local address (replies, separate
   * responses, DTLS records, the HelloVerifyRequest); a transport without
   * it (NULL) gets everything through |send|. Same return values. */
  int (*send_from)(void *user, coap_endpoint_t *ep, const coap_address_t *local,
                   const coap_address_t *to, const uint8_t *data, size_t len);
  /* Optional (COAP_TRANSPORT_V2). Close a client endpoint that
   * open_client_endpoint made and the context no longer uses (its socket);
   * |ep| is not passed to coap_context_input again, and the context frees
   * it later. With it, a client that replaces its session with a server
   * (the server closed it, fell silent, or a wrong key is being checked)
   * makes the new one from an endpoint of its own: a new source port, as
   * a new connection would (a server that still holds the old session may
   * ignore a new ClientHello from the same address, and the old session's
   * late datagrams cannot reach the new one), and closes the old endpoint
   * when no other session uses it. Without it (NULL, or a V1 transport)
   * the new session leaves from the same endpoint. */
  void (*close_endpoint)(void *user, coap_context_t *ctx, coap_endpoint_t *ep);
} coap_transport_t;

/* Versions of coap_transport_t; each one's layout is frozen. */
#define COAP_TRANSPORT_V1 1
#define COAP_TRANSPORT_V2 2 /* close_endpoint */
#define COAP_TRANSPORT_VERSION COAP_TRANSPORT_V2

/* Install |t| (copied), a coap_transport_t of |version|: a callback a
 * newer version has is NULL (not used). 0, or COAP_E_INVALID_ARG (NULL
 * |ctx| or |t|, an unknown version: logged; the transport is unchanged).
 * Call it as coap_context_set_transport(ctx, t, user). */
COAPS_API int coap_context_set_transport_versioned(coap_context_t *ctx, int version,
                                                   const coap_transport_t *t, void *user);
#define coap_context_set_transport(ctx, t, user) \
  coap_context_set_transport_versioned((ctx), COAP_TRANSPORT_VERSION, (t), (user))

/* Register a local endpoint (a bound socket, or a simulated one).
 * |local| is informative (logs) and may be NULL. */
COAPS_API coap_endpoint_t *coap_context_add_endpoint(coap_context_t *ctx, coap_proto_t proto,
                                                     const coap_address_t *local);
COAPS_API coap_proto_t coap_endpoint_proto(const coap_endpoint_t *ep);
COAPS_API const coap_address_t *coap_endpoint_address(const coap_endpoint_t *ep);
/* Opaque slot for the transport (e.g. the socket). */
COAPS_API void coap_endpoint_set_transport_data(coap_endpoint_t *ep, void *data);
COAPS_API void *coap_endpoint_transport_data(const coap_endpoint_t *ep);

/* One datagram received on |ep| from |from| at monotonic time |now_ms|. */
COAPS_API int coap_context_input(coap_context_t *ctx, coap_endpoint_t *ep,
                                 const coap_address_t *from, const uint8_t *data, size_t len,
                                 uint64_t now_ms);
/* The same, for an endpoint bound to a wildcard address (or several
 * addresses): |local| is the address the datagram was sent to (its port
 * is ignored). The context remembers it per peer and hands it to the
 * transport's send_from for whatever it sends that peer. A coap:// peer
 * takes the local address of its latest datagram; a coaps:// peer the one
 * its handshake started at (a datagram that may be forged changes
 * nothing), and the HelloVerifyRequest goes from the ClientHello's. NULL
 * |local| is coap_context_input (and leaves what a peer has unchanged). */
COAPS_API int coap_context_input_to(coap_context_t *ctx, coap_endpoint_t *ep,
                                    const coap_address_t *from, const coap_address_t *local,
                                    const uint8_t *data, size_t len, uint64_t now_ms);
/* The transport got an ICMP error (port or host unreachable) for a
 * datagram it sent to |to|, and |quoted| holds the start of that
 * datagram's UDP payload as the error quotes it (|len| bytes, 0 if none;
 * Linux's error queue hands it over: IP_RECVERR). RFC 7252 §4.2/§4.3 let
 * an ICMP error end anything only "after appropriate vetting": anyone who
 * knows the address can forge one. It is acted upon only if the quote is
 * a datagram of ours: for coap:// the header and token (and whatever
 * else it quotes) of a message of ours still in flight to |to|; for
 * coaps:// a record header in an epoch we sent in lately, its sequence
 * number no more than 63 below the highest we sent in it. Then requests to |to| fail at
 * once (COAP_E_UNREACHABLE, cause port-unreachable), unless they go to a
 * coaps:// server we had a session with (established, or the one our
 * handshake resumes) or a coap:// server that answered us (and observes
 * nothing here): it may be restarting, so they are resent as usual (the
 * error is logged) until its port has been closed for 5 s. An error that
 * quotes nothing of ours (forged, or too short to tell: fewer than the 4
 * header bytes and token, or the 11 bytes of a record header) is counted
 * (coap_stats_t.icmp_unvetted) and ignored: the requests go on and end by
 * their own timeouts if the peer is really gone. Returns 1 when acted
 * upon, 0 when ignored, COAP_E_INVALID_ARG (NULL |ctx|, |ep|, |to|, or
 * NULL |quoted| with a nonzero |len|). */
COAPS_API int coap_context_input_icmp(coap_context_t *ctx, coap_endpoint_t *ep,
                                      const coap_address_t *to, const uint8_t *quoted, size_t len,
                                      uint64_t now_ms);
/* The same, unvetted: for a transport that learns of an ICMP error but
 * not what it quotes. Acted upon as a vetted one would be, whoever sent
 * it: prefer coap_context_input_icmp. */
COAPS_API void coap_context_input_unreachable(coap_context_t *ctx, coap_endpoint_t *ep,
                                              const coap_address_t *to, uint64_t now_ms);
/* Earliest time coap_context_handle_timeouts must be called; UINT64_MAX
 * when nothing is pending (and for a NULL |ctx|). */
COAPS_API uint64_t coap_context_next_timeout(const coap_context_t *ctx);
COAPS_API void coap_context_handle_timeouts(coap_context_t *ctx, uint64_t now_ms);

/* ---- server: resources ---- */

/* Called for each request to a resource. Fill |resp| with the
 * coap_response_* calls (the code defaults by method, see below), or call
 * coap_request_defer() and answer later.
 *
 * Block-wise transfer (RFC 7959) happens around the handler:
 *  - Block1: the blocks of a request body are gathered (per peer, DTLS
 *    session, method, path and Request-Tag; 2.31 Continue meanwhile) and
 *    the handler runs once, when the last block came, with the whole body
 *    (coap_request_payload, and coap_request_msg's payload, a message
 *    without Block1, as if the body had come in one); a
 *    retransmitted or duplicated block never runs it again. A missing or
 *    out-of-order block gets 4.08, a body over max_body 4.13 with Size1.
 *  - Block2: the handler builds the whole representation (up to max_body);
 *    when it is larger than a block, the client gets the block it asked
 *    for, with Block2, an ETag (a hash of the representation unless the
 *    handler set one) and Size2. A GET or FETCH answer that goes
 *    block-wise is kept for 5 s (less when its Max-Age is shorter; Max-Age
 *    0: not kept), keyed by method, path and every request option that is
 *    part of the cache key (query, Accept, Uri-Host, ...; not Block2, Size2
 *    or Observe) and a FETCH's body: a request for block 1 or later with
 *    the same key is answered from the copy without running the handler,
 *    if the asking peer (and DTLS session) got that same representation
 *    from the handler (at block 0, or at a block the copy did not serve).
 *    A request for block 0 always runs the handler, and so does any other;
 *    a different ETag replaces the copy, so the client sees the change and
 *    starts over. Between, a client gets one consistent snapshot at most
 *    5 s old. The context keeps at most 8 copies (the oldest goes); their
 *    bytes count in max_reassembly and give way to Block1 bodies. The
 *    answer to a POST, PUT, PATCH, iPATCH or DELETE that goes block-wise
 *    is kept instead for the peer that sent it (max_reassembly counts it)
 *    and its later blocks come from the copy, so the handler runs once (a
 *    deferred answer's too, from coap_deferred_send).
 *  - Q-Block (RFC 9177), unless qblock_server_off: a NON GET or FETCH
 *    asking with Q-Block2 (or with a Request-Tag and no block option, from
 *    a peer and session that sent a Q-Block option before: libcoap probes
 *    once, then asks that way) gets the block asked for and, at once, the rest of its
 *    set of qblock_max_payloads blocks, each a NON response with the
 *    request's token and its own message ID, all with Q-Block2, the ETag
 *    and Size2; a 'Continue' (Q-Block2 NUM = a set's first block, M) gets
 *    that set, a list of Q-Block2 options (increasing, else 4.00) the
 *    blocks listed, each once, at most one set per request (from the copy
 *    above: no handler run). The server does not send the next set on a
 *    timer when no 'Continue' comes, nor bursts to a CON request (it gets
 *    the block asked for, with Q-Block2), nor to a deferred answer. A
 *    notification carries its first block only (RFC 9177 §4.5's bursts of
 *    notifications are not built). Q-Block1: the blocks of a NON body
 *    (Request-Tag and Size1 required, else 4.00; Size1 over max_body 4.13)
 *    are gathered in any order in the Block1 table, under its bounds; a
 *    block that completes a set from block 0 gets 2.31 with Q-Block1
 *    naming the set's last block, the first block of a set while an
 *    earlier one has gaps and the last block while any is missing get 4.08
 *    with the missing block numbers (Content-Format 272,
 *    application/missing-blocks+cbor-seq), other blocks nothing; after
 *    NON_RECEIVE_TIMEOUT (2 x ACK_TIMEOUT) without a new block a NON 4.08
 *    goes to the latest block's token, again after 4, 8, 16 s, then the body
 *    is dropped. CON blocks get their ACK only until the body is whole. The
 *    handler runs once, and a later copy of any block gets its answer's code
 *    again. Q-Block and Block options in one request: 4.02.
 *
 * The server answers by itself: 4.02 for a critical option it does not
 * act on (OSCORE, Q-Block1/2 when qblock_server_off, any number it does
 * not know), one repeated
 * though not repeatable, or one whose value length is out of range
 * (elective ones are then ignored, RFC 7252 §5.4); 5.05 for Proxy-Uri and
 * Proxy-Scheme; 4.00 for the reserved block size SZX 7 and for a Block2
 * number past the end; 4.12 when If-Match or If-None-Match fails, judged
 * against what the resource's GET handler answers (its ETag, or the hash
 * above; without a GET handler the handler judges). */
typedef void (*coap_handler_fn)(coap_context_t *ctx, coap_resource_t *res,
                                const coap_request_t *req, coap_response_t *resp, void *user);

/* Register |path| ("temp", "/sensors/temp"; "" is the root; leading and
 * trailing '/' are ignored). Returns 0 with the resource in |*out|, or
 * COAP_E_EXISTS when the path is already registered, COAP_E_NOMEM when
 * out of memory, COAP_E_INVALID_ARG for a NULL argument (|*out| is then
 * NULL). */
COAPS_API int coap_resource_create(coap_context_t *ctx, const char *path, coap_resource_t **out);
/* The same, returning the resource, or NULL for any of those failures
 * (coap_resource_create tells them apart). */
COAPS_API coap_resource_t *coap_resource_add(coap_context_t *ctx, const char *path);
/* The resource at |path| (written as for coap_resource_create), or NULL. */
COAPS_API coap_resource_t *coap_resource_find(coap_context_t *ctx, const char *path);
/* Remove and free |res| (its observers get 4.04). Returns 0,
 * COAP_E_NOT_FOUND when |res| is not one of |ctx|'s resources,
 * COAP_E_STATE from a handler building a notification, or
 * COAP_E_INVALID_ARG. */
COAPS_API int coap_resource_remove(coap_context_t *ctx, coap_resource_t *res);
/* |method| is COAP_GET..COAP_IPATCH; a NULL |fn| removes the handler. */
COAPS_API int coap_resource_set_handler(coap_resource_t *res, uint8_t method, coap_handler_fn fn,
                                        void *user);
/* Link-format attribute for /.well-known/core: "rt", "if", "ct", "sz",
 * "title", "obs" (value NULL for a flag). Values are copied; setting a
 * name again replaces its value. Returns 0, COAP_E_LIMIT (8 attributes),
 * COAP_E_NOMEM, or COAP_E_INVALID_ARG (no name). */
COAPS_API int coap_resource_set_attr(coap_resource_t *res, const char *name, const char *value);
/* Content-Formats accepted in request payloads (POST/PUT/FETCH/PATCH/
 * iPATCH); other formats get 4.15. No list: everything is accepted. */
COAPS_API int coap_resource_set_accepted_formats(coap_resource_t *res, const int *formats,
                                                 size_t n);
/* Hide from /.well-known/core. */
COAPS_API void coap_resource_set_hidden(coap_resource_t *res, int hidden);
COAPS_API const char *coap_resource_path(const coap_resource_t *res);
/* The largest body a handler is given (Block1) or may answer with: the
 * configuration's max_body. */
COAPS_API size_t coap_context_max_body(const coap_context_t *ctx);

/* ---- server: Observe (RFC 7641) ---- */

/* Make |res| observable (or not): a GET (or FETCH) with Observe=0
 * registers its sender, who then gets a notification each time
 * coap_resource_notify() is called, built by calling the resource's GET
 * (FETCH) handler again with the registration request (so Accept, the
 * query and the content format hold per observer). Adds the "obs"
 * link attribute. Turning it off ends every observation: each observer
 * gets a last answer from the GET handler without Observe (RFC 7641
 * §3.2). Returns 0, COAP_E_INVALID_ARG, or COAP_E_STATE when called
 * from a handler building a notification (coap_resource_remove too).
 *
 * Only a 2.xx answered at once registers: a handler that defers a
 * registration answers it as a plain GET (without Observe). Observers
 * whose registrations are byte-identical (options but the token and
 * Observe, a FETCH's body) share one run of the handler per
 * notification; coap_request_peer() then gives one of them, so a handler
 * whose answer depends on the client's address must not be observable.
 * A No-Response option (RFC 7967) in the registration applies to its
 * answer, not to the notifications the client asked for.
 *
 * The server keeps the rules of RFC 7641 by itself: Observe=1 (or an RST
 * to a notification) deregisters; the same token again re-registers (no
 * duplicate); notifications carry a 24-bit sequence number (and the
 * handler's Max-Age, 60 s by default); at most one CON notification is in
 * flight per client (RFC 7641 §4.5.1: another of its observations due
 * for CON waits for the ACK) and a newer state replaces one waiting
 * (the client always ends with the latest state; a CON already
 * retransmitted carries the newer state from its next retransmission on,
 * RFC 7641 §4.5.2); every
 * observe_con_every-th notification, and one at least every
 * observe_con_interval_s, is CON, and a CON that is not acknowledged or
 * an RST removes the observer; a 4.xx/5.xx answer from the handler is
 * sent and ends the observation; removing the resource notifies 4.04. An
 * observer's peer is not evicted while observing, and its DTLS session
 * ending (close_notify, eviction, expiry) ends its observations. A
 * notification larger than a block carries the first block (RFC 7959
 * §3.4). */
COAPS_API int coap_resource_set_observable(coap_resource_t *res, int observable);
/* The state of |res| changed: notify every observer. Returns the number
 * of observers sent a notification now (0 with none; one that waits for
 * a CON's ACK, §4.5.1, gets the newest state then), or a
 * negative error (COAP_E_STATE from a handler building a notification).
 * Must be called from the thread that drives the context; a handler may
 * call it (a PUT that changes the state). */
COAPS_API int coap_resource_notify(coap_resource_t *res);
/* Observations of |res| at this moment. */
COAPS_API size_t coap_resource_observer_count(const coap_resource_t *res);

/* ---- server: reading a request ---- */

COAPS_API const coap_msg_t *coap_request_msg(const coap_request_t *req);
COAPS_API uint8_t coap_request_method(const coap_request_t *req);
COAPS_API const coap_address_t *coap_request_peer(const coap_request_t *req);
COAPS_API coap_proto_t coap_request_proto(const coap_request_t *req);
/* 1 when the handler runs to build a notification for an observer (the
 * request is the observer's registration; coap_request_defer is then
 * refused), 0 for a request that came from the network. */
COAPS_API int coap_request_is_notification(const coap_request_t *req);
/* The request body: for a Block1 transfer the whole body, reassembled.
 * Valid during the handler only (a deferring handler copies it). |len|
 * may be NULL. */
COAPS_API const uint8_t *coap_request_payload(const coap_request_t *req, size_t *len);
/* Value of query parameter |name| ("name=value" or bare "name" → "").
 * Returns the length, COAP_E_NOT_FOUND, COAP_E_BUFFER_TOO_SMALL or
 * COAP_E_INVALID_ARG. */
COAPS_API int coap_request_query(const coap_request_t *req, const char *name, char *buf,
                                 size_t cap);

/* ---- server: writing a response ---- */

/* Values are copied into the response; the default code is 2.05 for GET
 * and FETCH, 2.04 for PUT/POST/PATCH/iPATCH, 2.02 for DELETE. */
COAPS_API void coap_response_set_code(coap_response_t *resp, uint8_t code);
/* |format| COAP_FORMAT_NONE omits Content-Format. The body is copied: up
 * to the context's max_body bytes (a large one into a buffer the context
 * keeps for reuse); larger than a block, it goes block-wise (see
 * coap_handler_fn). Over max_body, or out of memory, it returns
 * COAP_E_LIMIT or COAP_E_NOMEM and the client gets 5.00, never a cut
 * body. */
COAPS_API int coap_response_set_payload(coap_response_t *resp, int format, const void *data,
                                        size_t len);
COAPS_API int coap_response_add_option(coap_response_t *resp, uint16_t number, const void *value,
                                       size_t len);
COAPS_API int coap_response_add_uint(coap_response_t *resp, uint16_t number, uint32_t value);
COAPS_API int coap_response_set_max_age(coap_response_t *resp, uint32_t seconds);
COAPS_API int coap_response_set_etag(coap_response_t *resp, const void *etag, size_t len);
COAPS_API int coap_response_add_location_path(coap_response_t *resp, const char *segment);

/* Answer later (separate response, RFC 7252 §5.2.2): the context sends an
 * empty ACK if the answer takes longer than separate_delay_ms. Returns NULL
 * when called outside a handler or twice. */
COAPS_API coap_deferred_t *coap_request_defer(const coap_request_t *req, coap_response_t *resp);
/* The response to fill for a deferred request: a fresh one with the
 * method's default code (what the handler put in |resp| is not kept). */
COAPS_API coap_response_t *coap_deferred_response(coap_deferred_t *d);
/* Send it; |d| is gone afterwards. */
COAPS_API int coap_deferred_send(coap_context_t *ctx, coap_deferred_t *d);

/* ---- client ---- */

/* Block-wise transfers (RFC 7959) are the client's business, not the
 * caller's: a response with Block2 "more" makes the client fetch the
 * following blocks (the same request with Block2 num n, in the block size
 * the server chose, a fresh token each; a FETCH carries its body again,
 * RFC 8132 §2, in Block1 blocks with Block2 on the last when the body
 * took blocks) and the callback gets one reply
 * with the whole body; a request payload larger than the block size (or
 * than a DTLS record holds) goes out in Block1 blocks, following a smaller
 * block size the server asks for (2.31 Continue), and the callback gets
 * the final response (itself reassembled when it is block-wise). A body
 * sent while another of the context goes to the same server and path
 * carries a Request-Tag of its own (RFC 9175 §3), so the server keeps the
 * two apart; a lone body carries none (a server that knows no Request-Tag
 * would refuse it as a critical option). Blocks of a representation whose
 * ETag changes are fetched again from block 0 (at most 3 times, then
 * COAP_E_BLOCKWISE); a body over max_body (Size2 tells early) ends with
 * COAP_E_TOO_LARGE, and so does one for which the bodies the context is
 * fetching at once leave no room within max_reassembly; a request that
 * fits no datagram even in 16-byte blocks is refused by coap_send_request
 * at once.
 *
 * Made by the library and handed to the callback by pointer: fields are
 * only ever appended (export.h), so it carries no version; a program
 * built against an older header reads the fields it knows. */
typedef struct coap_reply {
  int status;         /* 0, or COAP_E_TIMEOUT, COAP_E_RESET, ... */
  uint8_t code;       /* response code when status == 0; 0 when no
                         response came and No-Response made that
                         legitimate (coap_request_opts_t.no_response) */
  int content_format; /* COAP_FORMAT_NONE when absent */
  /* The response (valid in the callback only); of a block-wise body, the
   * last block's response. */
  const coap_msg_t *msg;
  /* The response body, valid in the callback only: the whole body
   * reassembled from its blocks when the response was block-wise. */
  const uint8_t *payload;
  size_t payload_len;
  /* For a failure, why in words (e.g. the DTLS handshake's reason), or
   * NULL. Also set with status 0 when a block-wise request ended with the
   * server's 4.08 or 4.13 (what it said: the size it takes, the block it
   * missed) or with an error code in the middle of the transfer. Valid in
   * the callback only. */
  const char *detail;
  /* For a failure with a diagnosis (DTLS, unreachable, wrong protocol,
   * no answer): the cause, step and fix. NULL otherwise. */
  const coap_diag_t *diag;
  /* Request/response exchanges the reply took: 1, or more for a
   * block-wise transfer (each block sent or fetched, restarts included). */
  unsigned exchanges;
  /* Observe (coap_request_opts_t.observe): 1 while the observation goes
   * on, so the callback will be called again (the registration's answer
   * carried Observe, and each notification); 0 on the last call, which
   * says why it ended: status 0 with the server's answer without Observe
   * (not registered, its last notification) or with an error code, or
   * with the answer to coap_observe_cancel's deregistration;
   * COAP_E_CANCELLED after coap_context_free, or after
   * coap_observe_cancel when the server did not answer it;
   * COAP_E_TIMEOUT when the first answer did not come within timeout_ms
   * or a re-registration got no answer; another error when a block-wise
   * notification could not be fetched (e.g. COAP_E_TOO_LARGE) or the
   * DTLS session failed. There is exactly one last call. Always 0 for a
   * request without observe. */
  int observing;
  /* The notification's Observe sequence number (24 bits) when
   * has_observe is 1. Notifications older than one already delivered
   * (RFC 7641 §3.4) are never delivered. */
  int has_observe;
  uint32_t observe;
} coap_reply_t;

typedef void (*coap_reply_fn)(coap_context_t *ctx, const coap_reply_t *reply, void *user);

/* Filled by the program, read by the library: versioned (export.h). */
typedef struct coap_request_opts {
  uint8_t method;      /* COAP_GET .. COAP_IPATCH */
  const char *uri;     /* coap://host[:port]/path?query */
  int confirmable;     /* 1: CON (default), 0: NON */
  int content_format;  /* COAP_FORMAT_NONE: omitted */
  int accept;          /* COAP_FORMAT_NONE: omitted */
  const void *payload; /* copied: the buffer may go once
                          coap_send_request returns */
  size_t payload_len;
  const coap_option_t *options; /* extra options (copied) */
  size_t n_options;
  uint32_t timeout_ms; /* 0: the context's tx parameters decide; a
                          block-wise transfer must end within it */
  /* Preferred block size for this request (RFC 7959): 0 takes the
   * context's block_size; else 16..1024, a power of two (anything else is
   * COAP_E_INVALID_ARG). Request payloads larger than it go out in Block1
   * blocks of that size (smaller when the server asks, or when a DTLS
   * record cannot hold it); below 1024 a GET or FETCH also asks for
   * response blocks of that size from the first request (Block2 num 0). */
  uint16_t block_size;
  /* Observe (RFC 7641), GET and FETCH only (else COAP_E_INVALID_ARG, as
   * with no_response set too): 1 registers (Observe=0) and the callback
   * is called for the answer and for every newer notification
   * (coap_reply_t.observing) until the observation ends; reordered and
   * repeated ones are dropped (RFC 7641 §3.4). A notification in blocks
   * (Block2, RFC 7959 §3.4) is delivered whole once its other blocks
   * were fetched (GETs without Observe); a newer one arriving meanwhile
   * replaces it; one whose rest does not come is skipped (the next one
   * brings a newer state). timeout_ms bounds the first answer only. The
   * client registers again, with the same token, when the last
   * notification's Max-Age (60 s without one) plus 2 s passes without a
   * new one, and at once after the DTLS session with the server was made
   * again (the server lost or closed it); coap_observe_cancel()
   * deregisters. */
  int observe;
  /* No-Response (RFC 7967): the response classes the server should not
   * send, an OR of COAP_NO_RESPONSE_2XX, _4XX and _5XX (0: the option is
   * not sent; other bits, or a body that would go in Block1 blocks, are
   * COAP_E_INVALID_ARG). A request whose every class is suppressed is
   * sent NON and its callback is called as soon as it has gone out (on
   * coaps:// once the handshake let it out: a failed handshake still
   * ends it with the error) with status 0, code 0. Otherwise an answer
   * of a class not suppressed is delivered as usual, and when none comes
   * the request ends with status 0 and code 0 instead of COAP_E_TIMEOUT
   * (at the response timeout, or at timeout_ms) provided the silence can
   * be the one asked for: a NON's (loss cannot be told from it), a CON's
   * only once it was acknowledged (the server got it); a CON never
   * acknowledged still ends with COAP_E_TIMEOUT. */
  uint8_t no_response;
  /* Q-Block (RFC 9177): 1 uses it, -1 does not, 0 takes the context's
   * qblock_client. Used by a GET without payload (the request asks with
   * Q-Block2 and the server sends the body in bursts of MAX_PAYLOADS NON
   * responses; the client asks for the next set and for missing blocks)
   * and by a PUT or POST whose body goes block-wise (bursts of
   * MAX_PAYLOADS NON Q-Block1 requests with one Request-Tag, following the
   * server's 2.31 Continue and the missing blocks its 4.08 lists). The
   * first request goes as |confirmable| says and is the probe: a CON GET
   * asks for block 0 alone, then the body from block 0 in NON sets; a
   * CON first block of a body goes with the NON rest of its burst. Every
   * later request is NON; the client's timers (qblock_non_timeout_ms) make
   * the transfer reliable. A 4.02 answer to the CON (the server does not
   * know Q-Block) sends the request again with Block1/Block2 (RFC 7959),
   * once; with |confirmable| 0 there is no probe, and a server without
   * Q-Block (which answers a NON with RST or not at all, RFC 7252
   * §5.4.1) ends the request with COAP_E_TIMEOUT. Ignored with observe or
   * no_response, and for other methods. A response to a PUT or POST that
   * itself comes in Q-Block2 blocks ends with COAP_E_BLOCKWISE (not
   * built). Without Q-Block, an answer carrying a Q-Block1/Q-Block2
   * option the request did not carry is rejected (critical, RFC 7252
   * §5.4.1): COAP_E_BAD_RESPONSE, never one block taken for the body. */
  int qblock;
} coap_request_opts_t;

/* Versions of coap_request_opts_t; each one's layout is frozen. */
#define COAP_REQUEST_OPTS_V1 1
#define COAP_REQUEST_OPTS_VERSION COAP_REQUEST_OPTS_V1

/* Fill |o| (of |version|) with the defaults, |method| and |uri|. 0, or
 * COAP_E_INVALID_ARG (nothing written) for an unknown version or a NULL
 * |o|. Call it as coap_request_opts_init(o, method, uri). */
COAPS_API int coap_request_opts_init_versioned(int version, coap_request_opts_t *o, uint8_t method,
                                               const char *uri);
#define coap_request_opts_init(o, method, uri) \
  coap_request_opts_init_versioned(COAP_REQUEST_OPTS_VERSION, (o), (method), (uri))

typedef uint64_t coap_request_id_t;

/* Start a request; |cb| is called exactly once with the reply or the error
 * (also on coap_context_free, with COAP_E_CANCELLED) — an observation's
 * callback once per notification and exactly once with observing 0 —
 * unless coap_cancel_request() ends the request first: then it is not
 * called again. Errors found before anything is sent (bad URI,
 * unresolvable host, no credentials for coaps://) are returned here and
 * |cb| is not called. |cb| may be NULL (nobody is told); |id| may be NULL
 * (the request cannot be cancelled). */
/* |o| is a coap_request_opts_t of |version| (the fields a newer version
 * has take coap_request_opts_init's defaults; an unknown version is
 * COAP_E_INVALID_ARG, logged). Call it as
 * coap_send_request(ctx, o, cb, user, id). */
COAPS_API int coap_send_request_versioned(coap_context_t *ctx, int version,
                                          const coap_request_opts_t *o, coap_reply_fn cb,
                                          void *user, coap_request_id_t *id);
#define coap_send_request(ctx, o, cb, user, id) \
  coap_send_request_versioned((ctx), COAP_REQUEST_OPTS_VERSION, (o), (cb), (user), (id))
/* Forget request |id| now, whatever it is doing (waiting for an answer or
 * a separate response, for its DTLS handshake — its datagram is then not
 * sent —, in the middle of a block-wise or Q-Block transfer, observing,
 * fetching a block-wise notification): its callback is never called after
 * this returns 0, and an answer that still comes is dropped (a CON or NON
 * with its token gets RST, which also ends an observation at the server,
 * RFC 7641 §3.6). It may be called from any callback, its own included.
 * Returns 0, or COAP_E_NOT_FOUND when |id| is no running request (unknown,
 * cancelled before, or over: its last call has been made or is being
 * made), COAP_E_INVALID_ARG for a NULL |ctx|. */
COAPS_API int coap_cancel_request(coap_context_t *ctx, coap_request_id_t id);
/* End the observation |id| politely: a GET with Observe=1 and the
 * observation's token deregisters at the server (RFC 7641 §3.6) and the
 * callback is called a last time (observing 0) with that answer (status
 * 0). Notifications that cross it are not delivered. When the server
 * does not answer (the message layer's retransmissions and response
 * timeout) the last call has status COAP_E_CANCELLED and the observation
 * is forgotten all the same (a later notification gets RST). Calling it
 * again while it runs changes nothing. Returns 0, COAP_E_NOT_FOUND, or
 * COAP_E_INVALID_ARG when |id| is no observation (or |ctx| is NULL).
 * coap_cancel_request() instead forgets it at once, without a callback:
 * the server's next notification is answered with RST, which
 * deregisters too. */
COAPS_API int coap_observe_cancel(coap_context_t *ctx, coap_request_id_t id);

/* Blocking convenience (needs the I/O shell): send and run the loop until
 * the reply. |out| receives a copy of the response (free with
 * coap_response_copy_clear). Returns 0 or the error; COAP_E_INVALID_ARG
 * for an observation (o->observe), whose callback outlives the call.
 *
 * coap_response_copy_t is allocated by the program and filled by the
 * library: versioned (export.h). */
typedef struct coap_response_copy {
  uint8_t code;
  int content_format;
  uint8_t *payload; /* NUL terminated for convenience */
  size_t payload_len;
  uint8_t *raw; /* the response datagram */
  size_t raw_len;
} coap_response_copy_t;
/* Versions of coap_response_copy_t; each one's layout is frozen. */
#define COAP_RESPONSE_COPY_V1 1
#define COAP_RESPONSE_COPY_VERSION COAP_RESPONSE_COPY_V1

/* |o| is a coap_request_opts_t of |opts_version|, |out| a
 * coap_response_copy_t of |copy_version| (only its bytes are written). An
 * unknown version is COAP_E_INVALID_ARG (logged; nothing sent). Call it as
 * coap_request_blocking(ctx, o, out). */
COAPS_API int coap_request_blocking_versioned(coap_context_t *ctx, int opts_version,
                                              const coap_request_opts_t *o, int copy_version,
                                              coap_response_copy_t *out);
#define coap_request_blocking(ctx, o, out)                               \
  coap_request_blocking_versioned((ctx), COAP_REQUEST_OPTS_VERSION, (o), \
                                  COAP_RESPONSE_COPY_VERSION, (out))
/* Free what |r| (of |version|) holds and empty it. 0, or
 * COAP_E_INVALID_ARG (nothing freed nor written) for an unknown version.
 * NULL |r| is accepted. Call it as coap_response_copy_clear(r). */
COAPS_API int coap_response_copy_clear_versioned(int version, coap_response_copy_t *r);
#define coap_response_copy_clear(r) \
  coap_response_copy_clear_versioned(COAP_RESPONSE_COPY_VERSION, (r))

/* Called for every message the context sends or receives, after DTLS
 * decryption (for verbose tools). |outgoing| is 1 for sent messages.
 * A NULL |fn| turns tracing off. */
typedef void (*coap_trace_fn)(void *user, int outgoing, const coap_address_t *peer,
                              const coap_msg_t *msg);
COAPS_API void coap_context_set_trace(coap_context_t *ctx, coap_trace_fn fn, void *user);

/* The DTLS configuration attached to |ctx| (NULL when none): e.g. to
 * share its keys with another context (coap_dtls_share_keys). */
COAPS_API struct coap_dtls_context *coap_context_dtls(coap_context_t *ctx);

/* Why the most recent failure of this context's requests happened, in
 * words ("" when there is nothing more to say than coap_strerror, or no
 * request has failed). It is kept until the next failure: a request that
 * succeeds does not clear it, so read it when a request has just failed
 * (a reply's own |detail| is the reliable one). */
COAPS_API const char *coap_context_last_error(const coap_context_t *ctx);
/* The diagnosis of the most recent failure (as client or server) into
 * |out|, a coap_diag_t of |version| (only its bytes are written): 0, or
 * COAP_E_NOT_FOUND when nothing has failed, COAP_E_INVALID_ARG for an
 * unknown version (logged). Call it as coap_context_last_diag(ctx, out). */
COAPS_API int coap_context_last_diag_versioned(const coap_context_t *ctx, int version,
                                               coap_diag_t *out);
#define coap_context_last_diag(ctx, out) \
  coap_context_last_diag_versioned((ctx), COAP_DIAG_VERSION, (out))
/* The report of the most recent client handshake (finished or failed)
 * into |out|, a coap_handshake_report_t of |version|: 0, or
 * COAP_E_NOT_FOUND when there was none, COAP_E_INVALID_ARG for an unknown
 * version (logged). Call it as coap_context_last_handshake(ctx, out). */
COAPS_API int coap_context_last_handshake_versioned(const coap_context_t *ctx, int version,
                                                    coap_handshake_report_t *out);
#define coap_context_last_handshake(ctx, out) \
  coap_context_last_handshake_versioned((ctx), COAP_HANDSHAKE_REPORT_VERSION, (out))

/* ---- statistics ---- */

/* The security mode a handshake settled on (index of the per-mode
 * counters; new modes only at the end, within COAP_DTLS_MODE_SLOTS). */
typedef enum coap_dtls_mode {
  COAP_DTLS_MODE_NONE = 0, /* not negotiated yet */
  COAP_DTLS_MODE_PSK = 1,
  COAP_DTLS_MODE_RPK = 2,
  COAP_DTLS_MODE_X509 = 3,
  COAP_DTLS_MODE_COUNT
} coap_dtls_mode_t;
#define COAP_DTLS_MODE_SLOTS 4
/* "none", "psk", "rpk", "x509" ("none" out of range). */
COAPS_API const char *coap_dtls_mode_name(coap_dtls_mode_t mode);

/* Room for this many causes in coap_stats_t.failures_by_cause: a new
 * coap_cause_t value takes a slot without moving any field (the library
 * checks COAP_CAUSE_COUNT fits). Slots past COAP_CAUSE_COUNT read 0. */
#define COAP_STATS_CAUSE_SLOTS 32

/* Allocated by the program, filled by the library: versioned (export.h). */
typedef struct coap_stats {
  uint64_t rx_datagrams, tx_datagrams;
  uint64_t rx_malformed;  /* rejected by the codec */
  uint64_t rx_duplicates; /* CON/NON seen before */
  uint64_t retransmissions;
  uint64_t requests_handled, requests_sent;
  uint64_t timeouts, resets_received, resets_sent;
  uint64_t peers;                  /* current */
  uint64_t peers_rejected;         /* over max_peers, nobody silent enough to evict */
  uint64_t peers_evicted;          /* forgotten to make room (peer_evict_ms) */
  uint64_t dtls_handshakes;        /* completed, as client or server */
  uint64_t dtls_resumed;           /* of those, abbreviated (resumed) ones */
  uint64_t dtls_failures;          /* handshakes that failed */
  uint64_t dtls_cookies_sent;      /* HelloVerifyRequests (no state kept) */
  uint64_t dtls_refused;           /* ClientHellos dropped: too many handshakes
                                      in progress */
  uint64_t dtls_reconnects;        /* client: fresh handshakes after the server
                                      lost the session */
  uint64_t dtls_compacted;         /* sessions that, once the peer sent data,
                                      dropped their GnuTLS state for exported
                                      keys (a few hundred bytes) */
  uint64_t dtls_half_open_evicted; /* server handshakes ended unfinished to
                                      make room for a new verified client
                                      (coap_dtls_set_max_handshakes says
                                      which) */
  uint64_t observers;              /* observations held as server, current */
  uint64_t notifications_sent;
  uint64_t observers_removed; /* ended by an RST, an unacknowledged CON
                                 notification, the session's or the
                                 peer's end or an ICMP unreachable (not
                                 by the client's Observe=1, an error
                                 notification or the resource's removal;
                                 a limit refuses, it removes nobody) */
  uint64_t observations;      /* as client, current */
  uint64_t reassembly_bytes;  /* held now for block-wise transfers (Block1
                                 bodies and kept answers as server, bodies
                                 being fetched as client) */
  uint64_t rx_too_large;      /* datagrams the I/O shell dropped for being
                                 larger than it receives (65535 bytes, the
                                 largest UDP payload: none on UDP) */
  /* Failed handshakes and connections per cause, as client and server
   * (index: coap_cause_t; COAP_CAUSE_COUNT of them are in use). */
  uint64_t failures_by_cause[COAP_STATS_CAUSE_SLOTS];
  /* ---- version 2 ---- */
  uint64_t rx_bytes, tx_bytes; /* UDP payload bytes of those datagrams */
  /* Responses sent as server by code class (index: 2 for 2.xx, 4, 5;
   * piggy-backed, separate and automatic ones alike). */
  uint64_t responses_by_class[8];
  /* Handshakes completed as client or server, by security mode and kind
   * (index: coap_dtls_mode_t, then 0 full, 1 resumed). */
  uint64_t dtls_handshakes_by_mode[COAP_DTLS_MODE_SLOTS][2];
  /* Handshakes that failed, by the mode they had negotiated (NONE: not
   * that far). */
  uint64_t dtls_failures_by_mode[COAP_DTLS_MODE_SLOTS];
  /* Established DTLS sessions now, by mode (as client and server). */
  uint64_t dtls_sessions_by_mode[COAP_DTLS_MODE_SLOTS];
  /* ---- version 3 ---- */
  /* ICMP errors handed in with their quote (coap_context_input_icmp):
   * those that quoted a datagram of ours (acted upon) and those that did
   * not (ignored). */
  uint64_t icmp_vetted, icmp_unvetted;
} coap_stats_t;

/* Versions of coap_stats_t; each one's layout is frozen. */
#define COAP_STATS_V1 1
#define COAP_STATS_V2 2 /* rx_bytes .. dtls_sessions_by_mode */
#define COAP_STATS_V3 3 /* icmp_vetted, icmp_unvetted */
#define COAP_STATS_VERSION COAP_STATS_V3

/* The counters into |out|, a coap_stats_t of |version| (only its bytes
 * are written). 0, or COAP_E_INVALID_ARG (NULL arguments, an unknown
 * version: logged, nothing written). Call it as
 * coap_context_get_stats(ctx, out). */
COAPS_API int coap_context_get_stats_versioned(const coap_context_t *ctx, int version,
                                               coap_stats_t *out);
#define coap_context_get_stats(ctx, out) \
  coap_context_get_stats_versioned((ctx), COAP_STATS_VERSION, (out))

/* ---- recent failures (for a status page) ---- */

/* One failed handshake or connection, as the context keeps the last
 * COAP_FAILURE_LOG_SIZE of them. Allocated by the program, filled by the
 * library: versioned (export.h). */
typedef struct coap_failure_record {
  uint64_t seq;   /* 1, 2, ... in the order they happened (per context) */
  uint64_t at_ms; /* when, on the context's clock (monotonic ms) */
  coap_cause_t cause;
  coap_dtls_mode_t mode; /* what the handshake had negotiated (NONE: not that far) */
  int is_server;         /* we were the server of the handshake */
  char peer[64];         /* "192.0.2.1:5684", "[2001:db8::1]:5684" */
  /* Who the peer said it was: the PSK identity, the certificate's
   * subject, or "sha256:<hex>" of its raw public key; "" when it did not
   * get that far. Attacker-controlled text: escape it for display. */
  char identity[160];
  char explanation[640];
  char fix[320];
} coap_failure_record_t;

#define COAP_FAILURE_RECORD_V1 1
#define COAP_FAILURE_RECORD_VERSION COAP_FAILURE_RECORD_V1
/* How many failures a context keeps (the oldest is overwritten). */
#define COAP_FAILURE_LOG_SIZE 32

/* The failure |index| places before the newest (0: the newest) into
 * |out|, a coap_failure_record_t of |version|: 0, COAP_E_NOT_FOUND past
 * the oldest one kept, COAP_E_INVALID_ARG (NULL arguments, an unknown
 * version: logged). Call it as coap_context_failure(ctx, index, out). */
COAPS_API int coap_context_failure_versioned(const coap_context_t *ctx, int version, size_t index,
                                             coap_failure_record_t *out);
#define coap_context_failure(ctx, index, out) \
  coap_context_failure_versioned((ctx), COAP_FAILURE_RECORD_VERSION, (index), (out))

/* ---- structured log events ---- */

/* A log line with its fields kept apart (for JSON logs). Made by the
 * library and valid during the call only: fields are only ever appended
 * (export.h), no version. Strings are never NULL ("" when absent). */
typedef struct coap_log_event {
  coap_log_level_t level;
  const char *line;     /* the text line a coap_log_fn gets (peer prefix included) */
  const char *message;  /* the same without the peer prefix */
  const char *peer;     /* "[192.0.2.1]:5684", or "" */
  const char *identity; /* failures: as coap_failure_record_t.identity */
  const char *cause;    /* failures: the cause's name ("psk-key-mismatch") */
  const char *fix;      /* failures: what to do */
} coap_log_event_t;

typedef void (*coap_log_event_fn)(void *user, const coap_log_event_t *event);

/* Hand |ctx|'s log lines to |fn| as events instead of to the configured
 * coap_log_fn (the same levels pass; with neither installed the default
 * is warnings and errors). NULL restores the line handler. */
COAPS_API void coap_context_set_log_event_handler(coap_context_t *ctx, coap_log_event_fn fn,
                                                  void *user);

#ifdef __cplusplus
}
#endif
#endif
