/* The context: composes the message layer, the peer table, the server and
 * the client into one sans-I/O node, and hands datagrams to a transport. */
#ifndef COAPS_CONTEXT_INTERNAL_H
#define COAPS_CONTEXT_INTERNAL_H

#include "coaps/context.h"
#include "client/client.h"
#include "common/log.h"
#include "common/timer.h"
#include "exchange/exchange.h"
#include "peer/peer_table.h"
#include "security/security.h"
#include "context/shell.h"
#include "server/server.h"

struct coap_endpoint {
  coap_endpoint_t *next;
  coap_proto_t proto;
  coap_address_t local;
  void *transport_data;
  int client; /* opened for our own requests */
};

struct coap_deferred {
  coap_deferred_t *prev, *next; /* the context's list, freed with it */
  coap_exch_in_t *in;
  coap_response_t resp;
  uint8_t store[COAP_RESPONSE_STORE];
  coap_body_buf_t body; /* its payload when larger than the store */
  uint8_t no_response;  /* classes the request said not to answer (RFC 7967) */
};

struct coap_context {
  coap_context_config_t cfg;
  coap_logger_t log;
  coap_timer_heap_t timers;
  coap_exch_t *exch;
  coap_peer_table_t peers;
  coap_server_t server;
  coap_endpoint_t *endpoints;
  coap_endpoint_t *retired; /* closed client endpoints, freed at the next input */
  coap_transport_t transport;
  void *transport_user;
  coap_trace_fn trace;
  void *trace_user;
  coap_client_t client; /* our requests (src/client) */
  coap_deferred_t *deferred;
  uint64_t now; /* last time seen */
  uint64_t rx_datagrams, tx_datagrams, peers_rejected, peers_evicted;
  uint64_t dtls_handshakes, dtls_resumed, dtls_failures, dtls_cookies_sent;
  uint64_t dtls_refused;
  unsigned handshakes_in_progress; /* server side */
  /* Those handshakes, oldest first: a full table makes room for a new
   * verified client by ending the oldest (secure.c). */
  struct peer_dtls *half_open_oldest, *half_open_newest;
  uint64_t dtls_half_open_evicted;
  int handshake_limit_logged, half_open_evict_logged;
  int peers_full_logged, peers_evict_logged;
  /* COAP_RESPONSE_STORE bytes where a response is built, made when the
   * first request is served: a client-only context never needs it. */
  uint8_t *resp_store;
  /* Where responses larger than the store are built (up to max_body),
   * grown on first need and kept. */
  coap_body_buf_t resp_body;
  /* Datagrams the I/O shell dropped for being larger than it receives. */
  uint64_t rx_too_large;
  /* DTLS: the active configuration (owned) and one made by
   * coap_dtls_new_context() but not attached yet (owned too). */
  coap_dtls_context_t *dtls, *dtls_spare;
  /* Why the last request failed, in words (DTLS failures). */
  char last_error[640];
  /* The last failure's diagnosis; diag_current while it is being handed
   * to the requests it ends. */
  coap_diag_t last_diag;
  int has_diag, diag_current;
  coap_handshake_report_t last_report; /* of the last client handshake */
  int has_report;
  uint64_t failures_by_cause[COAP_CAUSE_COUNT];
  /* Version 2 counters of coap_stats_t. */
  uint64_t rx_bytes, tx_bytes;
  /* ICMP errors the transport handed in with the bytes they quote: those
   * that quoted a datagram of ours (acted upon) and those that did not
   * (ignored: forged, or for a datagram long gone). */
  uint64_t icmp_vetted, icmp_unvetted;
  uint64_t dtls_handshakes_by_mode[COAP_DTLS_MODE_SLOTS][2];
  uint64_t dtls_failures_by_mode[COAP_DTLS_MODE_SLOTS];
  uint64_t dtls_sessions_by_mode[COAP_DTLS_MODE_SLOTS]; /* established, now */
  /* The last COAP_FAILURE_LOG_SIZE failures, a ring: failure_seq counts
   * every one, failures[(seq - 1) % size] is failure seq. */
  coap_failure_record_t failures[COAP_FAILURE_LOG_SIZE];
  uint64_t failure_seq;
  uint64_t dtls_reconnects;
  /* Failure log lines: at most FAILURE_LOG_BURST per window. */
  uint64_t failure_window_start;
  unsigned failure_lines, failures_unlogged;
  /* What remains of the layers above, each settable before they act:
   * where coap_start() listens (the guide's coap_new_context argument);
   * coap_context_set_reuse_port's flag; the shell's defaults (NULL: the
   * core alone) and, once it drives this context, its state, which the
   * context frees with itself (it owns everything made for it). */
  coap_address_t listen_addr;
  int reuse_port; /* listening sockets join a SO_REUSEPORT group */
  const coap_shell_t *shell;
  void *shell_state;
  void (*shell_state_free)(void *state);
  /* DTLS Connection IDs of the server's sessions (secure.c). */
  coap_cid_map_t cid_map;
  /* Encrypted records from addresses with no session (likely NAT
   * rebinding, diagnosis.c): when the last line about them was logged,
   * and how many came since. */
  uint64_t stranger_logged_at;
  uint64_t strangers_unlogged;
};

/* What the client asks of the context (requests.c). */
const coap_client_ops_t *coap_context_client_ops(void);
/* The peer at (ep, addr) into *out, made if new. Returns 0, or
 * COAP_E_LIMIT when max_peers is reached (counted and logged) or
 * COAP_E_NOMEM when its entry or idle timer cannot be allocated. For
 * requests we send. */
int coap_context_peer(coap_context_t *ctx, coap_endpoint_t *ep, const coap_address_t *addr,
                      uint64_t now, coap_peer_t **out);
/* The same for a datagram just received, where a full table may make room
 * (peer_evict_ms). Only from the input path: the peer evicted must not be
 * one a caller up the stack is using. */
int coap_context_peer_for_input(coap_context_t *ctx, coap_endpoint_t *ep,
                                const coap_address_t *addr, uint64_t now, coap_peer_t **out);
/* Forget |peer| without a word to its address (secure.c: another session
 * moved there by its Connection ID, so a close_notify would reach that
 * one). Not |peer| of a call up the stack. */
void coap_context_peer_forget(coap_context_t *ctx, coap_peer_t *peer);
/* |peer| spoke (or we sent it a request): it is the most recent now. */
void coap_context_peer_active(coap_context_t *ctx, coap_peer_t *peer, uint64_t now);
/* Hand one datagram for |peer| to the transport and count it: through
 * send_from with the peer's local address when it has one and the
 * transport has send_from, through send otherwise. */
int coap_context_send_to_peer(coap_context_t *ctx, coap_peer_t *peer, const uint8_t *data,
                              size_t len);

/* secure.c: coaps:// */
/* |local|: where the datagram arrived (NULL: not known). */
int coap_secure_input(coap_context_t *ctx, coap_endpoint_t *ep, const coap_address_t *from,
                      const coap_address_t *local, const uint8_t *data, size_t len, uint64_t now);
int coap_secure_send(coap_context_t *ctx, coap_peer_t *peer, const uint8_t *data, size_t len);
/* Start a client handshake with |peer| unless one exists. */
int coap_secure_connect(coap_context_t *ctx, coap_peer_t *peer, const char *server_name,
                        uint64_t now);
void coap_secure_peer_free(coap_context_t *ctx, coap_peer_t *peer, int send_close);
/* Sessions carried across a restart (secure.c, sealed by sessions_state.c).
 * Why each session of a context was or was not carried at an export. */
typedef struct coap_sessions_tally {
  size_t carried;
  size_t handshaking; /* handshake not finished (or a new one beside the session) */
  size_t on_gnutls;   /* established, but not on exported keys */
  size_t client;      /* our own client sessions: the server side only is carried */
} coap_sessions_tally_t;
/* The established server sessions written as entries into |out|, each
 * marked with |worker| (sequence advanced by |margin|; its keys held below
 * that until coap_secure_export_settle), counted into |tally|; the length
 * or COAP_E_BUFFER_TOO_SMALL (at most coap_secure_export_bound). Call
 * coap_secure_export_settle whatever it returned; none while
 * coap_secure_export_held says an export of |ctx| is not settled. */
long coap_secure_export(coap_context_t *ctx, uint64_t margin, uint8_t worker, uint8_t *out,
                        size_t cap, coap_sessions_tally_t *tally);
/* The end of an export: |kept| (stored for the new process) retires the
 * written sessions' keys (they send nothing more, not even a close_notify,
 * and are no longer listed); otherwise they go on as before it. */
void coap_secure_export_settle(coap_context_t *ctx, int kept);
int coap_secure_export_held(coap_context_t *ctx);
size_t coap_secure_export_bound(coap_context_t *ctx);
/* One entry of an export, as views into it. */
typedef struct coap_saved_entry {
  unsigned worker; /* the worker it was taken from (0 in format 1) */
  uint16_t port;   /* the DTLS endpoint's local port */
  coap_address_t addr;
  const uint8_t *session;
  size_t session_len;
} coap_saved_entry_t;
/* The entry at |*at| of |in| (|with_worker|: format 2, a worker byte
 * first); 0 and |*at| moved past it, or COAP_E_INVALID_ARG. */
int coap_secure_next_entry(const uint8_t *in, size_t len, size_t *at, int with_worker,
                           coap_saved_entry_t *e);
/* Make |e|'s peer and session again in |ctx|: 0, or COAP_E_NOT_FOUND
 * (no DTLS endpoint on its port), COAP_E_EXISTS (the address has a peer),
 * COAP_E_LIMIT, COAP_E_INVALID_ARG (the session bytes). */
int coap_secure_import_entry(coap_context_t *ctx, const coap_saved_entry_t *e, uint64_t now);
/* sessions_end.c: the DTLS session of |peer| in words for a match
 * callback (0), or -1 when it has none. |fp| holds the raw key's
 * fingerprint (112 bytes). */
struct coap_session_info;
int coap_secure_peer_info(const coap_peer_t *peer, struct coap_session_info *info, char *fp);
/* Is |peer|'s session one the configuration |d| would refuse now? */
int coap_secure_peer_revoked(const coap_peer_t *peer, const coap_dtls_context_t *d);
/* Forget |peer| entirely (a close_notify first if it has a session). */
void coap_context_peer_destroy(coap_context_t *ctx, coap_peer_t *peer);
/* A request was cancelled: its datagram, held back until the handshake
 * completes, is not sent (every held copy of those bytes is dropped). */
void coap_secure_unqueue(coap_peer_t *peer, const uint8_t *data, size_t len);

/* End the DTLS handshake with |peer| now if it has not completed (a
 * request's own deadline passed): the session fails with a diagnosis of
 * the silence and its requests end. Returns 1 when it did. */
int coap_secure_give_up(coap_context_t *ctx, coap_peer_t *peer, uint64_t now);
/* How long a server that answered us may keep its port closed before an
 * ICMP error ends our requests: a restart (SIGTERM, the state written, the
 * new process listening) takes 30 to 110 ms in
 * tests/interop/cluster_upgrade.sh; this leaves room for a loaded machine
 * or a service manager, and bounds how long a client of a server that is
 * gone waits to be told. A CON's sends at 0, 2-3 and 6-9 s: a request
 * meets at most two errors before the one that ends it. */
#define COAP_RESTART_GRACE_MS 5000

/* ICMP unreachable for a DTLS peer: a client's handshake with a server it
 * never had a session with ends with that cause; its established session,
 * or a handshake resuming one, is kept with its requests (a server
 * restart, logged); a server ignores it in a handshake. Returns 1 when
 * dealt with, 0 when the peer's requests are to fail. */
int coap_secure_unreachable(coap_context_t *ctx, coap_peer_t *peer, uint64_t now);
/* True when |quoted| (the start of a datagram an ICMP error quotes, |len|
 * bytes) starts with a record header of ours to |peer|: an epoch we sent
 * in lately and a sequence number at most ICMP_RECORD_WINDOW - 1 below
 * the highest we sent in it. */
int coap_secure_sent(const coap_peer_t *peer, const uint8_t *quoted, size_t len);
/* Handshake still running with |peer| (client side). */
int coap_secure_handshaking(const coap_peer_t *peer);
/* A datagram on a client's coap:// endpoint from |from|: the answer to the
 * CoAP ping a coaps:// client sent to that address's port (see
 * probe_plain_coap)? Returns 1 when it was, and ends the handshake with
 * the diagnosis if it is still running. */
int coap_secure_probe_answer(coap_context_t *ctx, const coap_address_t *from, const uint8_t *data,
                             size_t len, uint64_t now);

/* requests.c: a client endpoint of |proto| for |dest|'s address family:
 * the context's own, or a new one from the transport. */
int coap_context_client_endpoint(coap_context_t *ctx, coap_proto_t proto,
                                 const coap_address_t *dest, coap_endpoint_t **out);
/* requests.c: a client |peer| whose session is being replaced moves to a
 * client endpoint of its own from the transport (a new source port), and
 * its old endpoint closes when no other peer uses it. Returns 1 when it
 * moved, 0 when it stays (the transport cannot open and close endpoints,
 * or opening failed: logged). Before the new session sends anything. */
int coap_context_peer_to_fresh_endpoint(coap_context_t *ctx, coap_peer_t *peer);
/* requests.c: free the endpoints closed since the last call (none of them
 * may be up the stack: from the top of the input path only). */
void coap_context_free_retired(coap_context_t *ctx);

/* diagnosis.c: keep, count and log a failure. |peer_name| may be NULL. */
void coap_context_note_failure(coap_context_t *ctx, const coap_diag_t *g, const char *peer_name,
                               uint64_t now);
/* The same with who the peer said it was and the mode negotiated (a
 * coap_dtls_mode_t), known for DTLS handshakes. |identity| may be NULL. */
void coap_context_note_failure_of(coap_context_t *ctx, const coap_diag_t *g, const char *peer_name,
                                  const char *identity, int mode, uint64_t now);
/* Fail every request to |peer| with |err| and the diagnosis |g| (already
 * noted), so their callbacks see it. */
void coap_context_fail_peer(coap_context_t *ctx, coap_peer_t *peer, int err, uint64_t now);
/* The diagnosis for a request ending now with |err|, or NULL. */
const coap_diag_t *coap_context_current_diag(const coap_context_t *ctx, int err);
/* coap:// datagrams: a DTLS record from a peer we sent requests to means a
 * DTLS server listens there. Returns 1 when the datagram was handled. */
int coap_context_plain_sees_dtls(coap_context_t *ctx, coap_endpoint_t *ep,
                                 const coap_address_t *from, const uint8_t *data, size_t len,
                                 uint64_t now);
/* A coap:// request went out again unanswered: once per peer, also send a
 * DTLS ClientHello to find out whether a DTLS server listens there. */
void coap_context_plain_probe(coap_context_t *ctx, coap_peer_t *peer);
/* Server: an encrypted application-data record (DTLS, epoch >= 1, no CID)
 * from |from|, an address with no session. Counted as
 * COAP_CAUSE_NAT_REBINDING and logged at most once a minute. */
void coap_context_note_stranger_record(coap_context_t *ctx, const coap_address_t *from,
                                       uint64_t now);

#endif
