/* coaps — CoAP over DTLS 1.2 (coaps://, RFC 7252 §9): the security
 * configuration of a context.
 *
 * One coap_dtls_context_t holds every credential a node uses, as client and
 * as server at once: a pre-shared key (identity + key), an X.509
 * certificate chain with its key and the CAs that verify the peer. Setters
 * check what they are given at once and fail with COAP_E_DTLS_CREDENTIALS
 * and a message (coap_dtls_context_last_error) naming the file and the
 * problem, so a bad key is found at start-up, not at the first handshake.
 */
#ifndef COAPS_DTLS_H
#define COAPS_DTLS_H

#include <stddef.h>
#include <stdint.h>

#include "coaps/context.h"

#include "coaps/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coap_dtls_context coap_dtls_context_t;

/* A configuration owned by |ctx| (freed with it; may be NULL, then the
 * caller frees it with coap_dtls_context_free). The guide's name. */
COAPS_API coap_dtls_context_t *coap_dtls_new_context(coap_context_t *ctx);
/* A configuration holding one reference, the caller's. */
COAPS_API coap_dtls_context_t *coap_dtls_context_new(void);
/* Drop one reference; the last one frees the configuration. */
COAPS_API void coap_dtls_context_free(coap_dtls_context_t *d);
/* Take one more reference to |d| (returned), to share it: one
 * configuration — credentials parsed once, one GnuTLS priority cache —
 * can serve any number of contexts, e.g. a client that opens many
 * contexts, each handing its reference back when it is freed:
 *
 *   coap_dtls_context_t *d = coap_dtls_context_new();   // 1 reference
 *   coap_dtls_set_psk(d, ...);
 *   coap_context_set_dtls_context(ctx1, coap_dtls_context_ref(d));
 *   coap_context_set_dtls_context(ctx2, d);            // hands ours over
 *   coap_context_free(ctx1);                           // ctx2 goes on
 *
 * What a shared configuration holds is shared too: the client session
 * cache (contexts resume each other's sessions to the same server name;
 * coap_dtls_set_resumption(d, 0) to avoid it), the counters the contexts'
 * stats read from it (dtls_compacted is the sum over its contexts), and
 * the logger of whichever context took it last (a context that lets go
 * leaves a copy of it: callback, user pointer and level). Nothing in it is
 * locked: contexts that share a configuration must run on one thread
 * (worker threads each take their own, with coap_dtls_share_keys). */
COAPS_API coap_dtls_context_t *coap_dtls_context_ref(coap_dtls_context_t *d);

/* Make |d| the context's security configuration: coaps:// requests use
 * it and coap_start() serves coaps:// on 5684 with it. The context takes
 * over one reference (the caller's: call coap_dtls_context_ref first to
 * keep using |d| or to give it to several contexts) and drops it when it
 * is freed or given another configuration. Giving a context the
 * configuration it already has changes nothing and takes no reference. */
COAPS_API int coap_context_set_dtls_context(coap_context_t *ctx, coap_dtls_context_t *d);

/* What the last failed setter found, e.g. "server-key.pem: the private key
 * does not match the certificate in server-cert.pem"; "no error" when no
 * setter failed (and for a NULL |d|). */
COAPS_API const char *coap_dtls_context_last_error(const coap_dtls_context_t *d);

/* ---- sessions that survive a restart or an upgrade ---- */

/* Before a server stops: its established DTLS sessions (keys, replay
 * windows, Connection IDs, PSK identities, the peer's next message ID,
 * and the Observe relations on each session; not Block transfers,
 * handshakes in progress or sessions still finishing theirs)
 * sealed into |out| with |key| (16 or 32 bytes, AES-GCM), stamped with
 * |node_id| and |now_ms| (wall-clock milliseconds). Each carried
 * session's next sequence number is advanced by a margin and, once the
 * whole sealed state is in |out|, the session can send no more from this
 * context, not even a close_notify (no nonce is ever used twice: free the
 * context next). All or nothing: on a failure nothing is carried, |out|
 * is cleared and every session goes on as before (end them with
 * coap_context_end_sessions, which sends each a close_notify). Returns
 * the length, or COAP_E_BUFFER_TOO_SMALL, COAP_E_STATE (no DTLS
 * configuration, or an export begun and not ended), COAP_E_NOMEM,
 * COAP_E_INVALID_ARG. With |out| NULL: a size that is always enough,
 * carrying nothing. |carried| (may be NULL): how many were written. */
COAPS_API long coap_context_export_sessions(coap_context_t *ctx, const uint8_t *key, size_t key_len,
                                            uint64_t node_id, uint64_t now_ms, uint8_t *out,
                                            size_t cap, size_t *carried);
/* At start, once the DTLS configuration and endpoints are in place: the
 * sessions of a buffer from coap_context_export_sessions, which must be
 * sealed with |key| for |node_id| no more than |max_age_ms| from |now_ms|
 * and, when |last_sealed_ms| is not NULL, after *|last_sealed_ms| (the
 * time of the last buffer taken, kept by the caller: a buffer read again
 * is refused as replayed; it is set to this buffer's time whenever its
 * seal verified, even if the buffer is then refused: an authentic buffer
 * is never to be read twice, so keep the new value whatever this
 * returns). Their clients carry on with no handshake. All or nothing: a
 * buffer with any malformed part installs no session. Returns the number
 * of sessions taken, or COAP_E_INVALID_ARG with |*why| (may be NULL)
 * saying why the buffer was refused (forged or another key, another node,
 * stale, replayed, malformed); COAP_E_STATE without a DTLS configuration.
 * Register the resources first: a carried Observe relation is attached
 * again when its resource is here, observable, and within the observer
 * limits, and its next notification carries an Observe number past the
 * old ones by a margin (a state whose CON notification was not
 * acknowledged is sent again at once); one to a resource missing ends
 * with a 4.04 notification, the others with the state without Observe
 * (counted and logged). */
COAPS_API long coap_context_import_sessions(coap_context_t *ctx, const uint8_t *key, size_t key_len,
                                            uint64_t node_id, uint64_t now_ms, uint64_t max_age_ms,
                                            uint64_t *last_sealed_ms, const uint8_t *in, size_t len,
                                            const char **why);

/* The same for a server's workers (contexts sharing a port with
 * coap_context_set_reuse_port, |ctxs|[i] being worker i, with
 * coap_dtls_set_cid_worker(i) when there are several): one buffer for
 * all |n| (1 to 255) of them, each session marked with its worker. Call
 * it once every worker's loop has stopped (no other thread may use the
 * contexts meanwhile); the sessions not carried are counted and logged
 * by reason (handshakes in progress, sessions not on exported keys,
 * client sessions, observe relations over coap:// or on sessions not
 * carried, block-wise transfers). */
COAPS_API long coap_contexts_export_sessions(coap_context_t *const *ctxs, size_t n,
                                             const uint8_t *key, size_t key_len, uint64_t node_id,
                                             uint64_t now_ms, uint8_t *out, size_t cap,
                                             size_t *carried);
/* The same in two steps, for a caller that stores the state where it can
 * still fail (a file: written, synced, renamed): _begin seals the state
 * into |out| (|out| must not be NULL) and leaves every session working
 * meanwhile, held below the sequence numbers the state will use; once the
 * state is stored where the next process reads it, _end with |stored| 1
 * retires the carried sessions' keys (as coap_contexts_export_sessions
 * does). If storing it failed, erase every copy of it and call _end with
 * |stored| 0: the sessions are this process's again (end them with a
 * close_notify, or go on serving). Do not run the contexts' loops between
 * the two (their records stay nonce-safe while fewer than the margin,
 * 1024 a session, but Observe numbers and message IDs are carried as at
 * _begin). _begin returns as coap_contexts_export_sessions (on a failure
 * nothing is held: no _end needed); _end returns 0 or COAP_E_INVALID_ARG. */
COAPS_API long coap_contexts_export_sessions_begin(coap_context_t *const *ctxs, size_t n,
                                                   const uint8_t *key, size_t key_len,
                                                   uint64_t node_id, uint64_t now_ms, uint8_t *out,
                                                   size_t cap, size_t *carried);
COAPS_API int coap_contexts_export_sessions_end(coap_context_t *const *ctxs, size_t n, int stored);
/* Read such a buffer (or one from coap_context_export_sessions) into the
 * |n| contexts of the workers now, before their loops start: each
 * session goes to the worker its client's datagrams reach — the one its
 * Connection ID's first byte names when the kernel steers by it, else
 * the one it was taken from if the number of workers is unchanged; with
 * one worker, every session. The others are left out, counted and logged
 * with the reason (their clients make a new handshake). Arguments and
 * results as coap_context_import_sessions; COAP_E_INVALID_ARG too when
 * steered contexts are not in worker order. */
COAPS_API long coap_contexts_import_sessions(coap_context_t *const *ctxs, size_t n,
                                             const uint8_t *key, size_t key_len, uint64_t node_id,
                                             uint64_t now_ms, uint64_t max_age_ms,
                                             uint64_t *last_sealed_ms, const uint8_t *in,
                                             size_t len, const char **why);

/* ---- pre-shared keys (TLS_PSK_WITH_AES_128_CCM_8 first) ---- */

/* As a client: the identity (NUL-terminated) and key to present. As a
 * server: one identity the server accepts, with its key. Call again to add
 * more identities for the server; the last one is the client's. */
COAPS_API int coap_dtls_set_psk(coap_dtls_context_t *d, const uint8_t *identity, const uint8_t *key,
                                size_t key_len);
/* The same with the key in hex ("00a1ff..."). */
COAPS_API int coap_dtls_set_psk_hex(coap_dtls_context_t *d, const char *identity,
                                    const char *hex_key);
/* Server: look up keys of identities not in the table (e.g. from a
 * device database). Write the key for |identity| into |key| (|cap| bytes)
 * and return its length, or return a negative value for an unknown
 * identity (the handshake fails). */
typedef int (*coap_dtls_psk_lookup_fn)(void *user, const char *identity, uint8_t *key, size_t cap);
COAPS_API int coap_dtls_set_psk_lookup(coap_dtls_context_t *d, coap_dtls_psk_lookup_fn fn,
                                       void *user);

/* Identity hint a server sends (optional). */
COAPS_API int coap_dtls_set_psk_hint(coap_dtls_context_t *d, const char *hint);

/* ---- X.509 certificates (TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 first) ---- */

/* Own chain and private key, PEM or DER; |key_password| may be NULL. */
COAPS_API int coap_dtls_set_cert(coap_dtls_context_t *d, const char *cert_file,
                                 const char *key_file, const char *key_password);
/* CAs that verify the peer: a PEM file, or a directory of them. A client
 * with a CA verifies the server's chain, validity dates and that the
 * certificate names the URI's host; a server with a CA asks clients for a
 * certificate (see coap_dtls_set_client_cert). */
COAPS_API int coap_dtls_set_ca(coap_dtls_context_t *d, const char *ca_file_or_dir);

typedef enum coap_dtls_client_cert {
  COAP_DTLS_CLIENT_CERT_NONE = 0,     /* do not ask */
  COAP_DTLS_CLIENT_CERT_OPTIONAL = 1, /* ask; verify one if sent (default
                                         when a CA is set) */
  COAP_DTLS_CLIENT_CERT_REQUIRED = 2  /* refuse clients without one */
} coap_dtls_client_cert_t;
COAPS_API int coap_dtls_set_client_cert(coap_dtls_context_t *d, coap_dtls_client_cert_t p);

/* Check that the server certificate names the host (default on). */
COAPS_API int coap_dtls_set_verify_peer_name(coap_dtls_context_t *d, int on);

/* ---- session resumption (RFC 5077 tickets) ---- */

/* Servers issue session tickets (on by default); clients keep the last
 * session per server name in memory and resume it on reconnect — an
 * abbreviated handshake, one round trip fewer. With a file, a client also
 * loads the session from |path| before its first handshake and writes it
 * back after each full one, so a new process resumes too. Session data is
 * secret: each save writes a new file of mode 0600 next to |path| (created
 * exclusively), syncs it and renames it over |path|, so an existing file
 * of any mode ends up 0600 and a reader never sees half a session.
 * |path| is checked at once: a symbolic link (never followed nor written
 * through), a directory, a non-empty file that is not a session file (not
 * overwritten), an unreadable file or a directory that cannot be written
 * fail with COAP_E_DTLS_CREDENTIALS and coap_dtls_context_last_error
 * saying why. A later failure to read or save is logged as an error; the
 * handshake then is a full one. */
COAPS_API int coap_dtls_set_session_file(coap_dtls_context_t *d, const char *path);

/* Client session resumption (default on). Off (|on| = 0): a client
 * neither offers a kept session nor keeps one (nor reads or writes the
 * session file), so every handshake is a full one — for a load generator
 * measuring full handshakes through one shared configuration, or when
 * handshakes must not be linkable to earlier ones. The client asks for
 * no session ticket either (so the server makes none). Servers are not
 * affected: they still issue tickets to clients that ask. */
COAPS_API int coap_dtls_set_resumption(coap_dtls_context_t *d, int on);

/* Servers sharing a port (worker threads with SO_REUSEPORT, a cluster
 * behind one address): use |from|'s cookie and session-ticket keys, so
 * each accepts the others' cookies and resumes the others' sessions. The
 * keys are copied; |from| stays usable. */
COAPS_API int coap_dtls_share_keys(coap_dtls_context_t *d, const coap_dtls_context_t *from);

/* Servers on several machines (behind a load balancer) or across
 * restarts: seal session tickets with the current key of a ticket key
 * file's text (|text|, |len| bytes; the format: lines, '#' comments and
 * blank lines ignored, first "coaps-ticket-keys 1", then one key a line
 * as 128 hex digits, the current key first, then previous ones that
 * `coaps keygen --ticket-key` keeps for a grace period; at most 8), and
 * open them with whichever of its keys sealed them. Every server given
 * the same file resumes the others' sessions, without a cookie round
 * trip under COAP_DTLS_COOKIE_WHEN_NEEDED. GnuTLS derives the key that
 * seals a ticket from the file's key and an 18-hour time step, so the
 * servers' clocks must agree: a ticket from a server whose clock is a
 * step ahead gets a full handshake until the others' clocks catch up
 * (docs/cluster.md). A ticket sealed with a key not in the file gets a
 * full handshake, counted as COAP_CAUSE_TICKET_KEY_UNKNOWN. A
 * configuration given keys here keeps them through coap_dtls_share_keys
 * (which still shares the cookie key). Returns the number of keys,
 * COAP_E_INVALID_ARG (|d| NULL, |text| NULL with |len|), or
 * COAP_E_DTLS_CREDENTIALS with coap_dtls_context_last_error saying which
 * line is wrong (keys never appear in it); the keys in use are then
 * unchanged. */
COAPS_API int coap_dtls_set_ticket_keys(coap_dtls_context_t *d, const char *text, size_t len);

/* ---- raw public keys (RFC 7250) ---- */

/* Authenticate with a bare key instead of a certificate: |key_file| is an
 * unencrypted EC P-256 private key in any format coap_dtls_set_cert takes
 * (PEM "EC PRIVATE KEY" or PKCS#8 "PRIVATE KEY", or DER); its public key
 * is derived from it. A missing file, a directory, an encrypted or
 * unparsable key or another curve fail with COAP_E_DTLS_CREDENTIALS. */
COAPS_API int coap_dtls_set_rpk(coap_dtls_context_t *d, const char *key_file);
/* Trust the peer whose public key is in |spki_file| (a PEM "PUBLIC KEY" or
 * DER SubjectPublicKeyInfo). Repeatable. A server with such a list asks
 * clients for their key (optional unless coap_dtls_set_client_cert says
 * required). A peer presenting any other raw
 * key is refused, and the error shows that key's SHA-256 fingerprint so it
 * can be pinned. */
COAPS_API int coap_dtls_add_trusted_rpk(coap_dtls_context_t *d, const char *spki_file);
/* Decide about a raw public key not in the trust list: |spki| is its DER
 * SubjectPublicKeyInfo, |fingerprint| "sha256:..". Return 1 to accept. */
typedef int (*coap_dtls_rpk_verify_fn)(void *user, const uint8_t *spki, size_t len,
                                       const char *fingerprint);
COAPS_API int coap_dtls_set_rpk_verify(coap_dtls_context_t *d, coap_dtls_rpk_verify_fn fn,
                                       void *user);
/* "sha256:ab:cd:..." of the own raw public key into |buf|; 0 or an error
 * when no RPK is set. */
COAPS_API int coap_dtls_rpk_fingerprint(const coap_dtls_context_t *d, char *buf, size_t cap);

/* ---- transport tuning ---- */

/* Path MTU for handshake fragmentation (default 1280). */
COAPS_API int coap_dtls_set_mtu(coap_dtls_context_t *d, unsigned mtu);
/* First flight retransmission and total handshake time (defaults 1000 ms
 * and 30000 ms). */
COAPS_API int coap_dtls_set_handshake_timeouts(coap_dtls_context_t *d, unsigned retransmit_ms,
                                               unsigned total_ms);
/* Server handshakes in progress at once (default 256), so a flood of
 * handshakes cannot exhaust memory or CPU. When all places are taken, a
 * ClientHello with a valid cookie takes the place of an unfinished
 * handshake, which ends silently: first one its host took beyond its
 * share (an eighth of the places, at least 4) while places were free,
 * then one begun without a cookie, then the oldest waiting for its
 * client; only its own host's once its host holds its share. Clients that
 * start handshakes and go silent cannot lock others out
 * (coap_stats_t.dtls_half_open_evicted). An abbreviated handshake past
 * the server's Finished (its client believes it is connected) is never
 * ended for a newcomer, unless it took a place beyond its host's share;
 * then its client gets a close_notify and starts over at once. A hello
 * that finds no place it may take, and one without a cookie (see the
 * cookie policy) when all are taken, is dropped (coap_stats_t.
 * dtls_refused) and the client resends it. */
COAPS_API int coap_dtls_set_max_handshakes(coap_dtls_context_t *d, unsigned max);

/* When a server asks a new client for a cookie (the HelloVerifyRequest
 * round trip, RFC 6347 §4.2.1), which proves the client's address before
 * the server keeps anything or sends its larger flight:
 *  - ALWAYS: every new handshake (the default before WHEN_NEEDED);
 *  - UNDER_LOAD: only while |load| or more handshakes are in progress
 *    (0: a quarter of coap_dtls_set_max_handshakes), like QUIC's Retry —
 *    a round trip less per handshake when the server is not flooded;
 *  - NEVER: for networks where spoofed source addresses cannot occur;
 *  - WHEN_NEEDED (default): as UNDER_LOAD, and a hello that resumes a
 *    session (brings a session ticket) is not asked either, in every
 *    mode: the answer to it (ServerHello, ChangeCipherSpec, Finished) is
 *    smaller than the hello (RFC 6347 §4.2.1 lets a server skip the
 *    exchange for resumption). A fresh PSK request then takes 3 round
 *    trips to its first response instead of 4, a resumed one 2 instead
 *    of 3.
 * Whatever the policy, a fresh hello that could get a certificate or
 * raw-key flight (larger than the hello) is asked for a cookie, and so is
 * a hello this server will refuse (not DTLS 1.2, or no AEAD suite): GnuTLS
 * clients ignore an alert that comes before the server's first handshake
 * message, so the handshake_failure reaches them only after a cookie; a
 * handshake begun without one sends its address no more bytes than it
 * received until the client's Finished has been taken (a flight is
 * resent on its own timer only within that bound); and a ClientHello
 * from the address of an
 * established session always needs a cookie before it can replace that
 * session (RFC 6347 §4.2.8). */
typedef enum coap_dtls_cookie_policy {
  COAP_DTLS_COOKIE_ALWAYS = 0,
  COAP_DTLS_COOKIE_UNDER_LOAD = 1,
  COAP_DTLS_COOKIE_NEVER = 2,
  COAP_DTLS_COOKIE_WHEN_NEEDED = 3
} coap_dtls_cookie_policy_t;
COAPS_API int coap_dtls_set_cookie_policy(coap_dtls_context_t *d, coap_dtls_cookie_policy_t policy,
                                          unsigned load);

/* Established sessions, client and server, leave GnuTLS once the peer has
 * sent application data and protect their records on exported keys
 * (src/security/dtls_record.c): about 2 KB a session instead of more than
 * 10 KB, and less CPU a record. On by default; 0 keeps every session in
 * GnuTLS (to compare, or to rule the record layer out). */
COAPS_API int coap_dtls_set_compact_sessions(coap_dtls_context_t *d, int on);

/* ---- Connection ID (RFC 9146) ----
 *
 * A Connection ID lets a session survive a change of the peer's address
 * (a NAT rebinding the port of a sleeping device): records carry an
 * identifier chosen by their receiver, so the server finds the session by
 * it, not by the address. On by default in both roles: a client asks for
 * one (offering an empty CID of its own, so only its records to the
 * server carry one, or |coap_dtls_set_client_cid|'s), and a server grants
 * every client that asks a CID of |length| bytes (8 by default; from 1 to
 * 32; the first two bytes of a CID of 4 bytes or more are reserved for a
 * worker index and a node id, the rest random). |on| 0 turns it off: the
 * client does not ask, the server does not grant. A peer moves to a new
 * address only on a record that authenticates and is newer than any seen,
 * and the new address gets at most 3 times the bytes it sent until the
 * peer answers a CoAP ping sent there. */
COAPS_API int coap_dtls_set_cid(coap_dtls_context_t *d, int on, unsigned length);
/* Server workers sharing a port (coap_context_set_reuse_port, one
 * context each): this configuration belongs to worker |index| (0 to
 * COAP_DTLS_CID_WORKER_MAX), which must be the order in which the
 * workers' coaps:// sockets were bound — worker 0 first. Every CID it
 * grants then begins with |index| (so keep CIDs of 4 bytes or more: the
 * rest stays random), and when a context with this configuration listens
 * for DTLS with reuse_port on, the I/O shell attaches a classic BPF
 * program to the port (SO_ATTACH_REUSEPORT_CBPF) that hands each
 * tls12_cid record to the worker its first CID byte names: a client whose
 * address changed (a NAT rebinding) reaches the worker holding its
 * session, with no hop between workers. Other datagrams are spread by
 * the kernel's address hash as before. Each worker needs its own
 * configuration (coap_dtls_share_keys shares the keys, not the index).
 * Call before coap_context_listen. Returns 0 or COAP_E_INVALID_ARG. */
#define COAP_DTLS_CID_WORKER_MAX 255
COAPS_API int coap_dtls_set_cid_worker(coap_dtls_context_t *d, unsigned index);
/* Server: the node id (0 to COAP_DTLS_CID_NODE_MAX) of this server among
 * several behind one UDP load balancer. Every CID it grants of 2 bytes or
 * more then carries |node| in byte 1 (byte 0 is the worker index, the
 * rest random), so the balancer can send a client whose address changed
 * (a NAT rebinding) to the node that holds its session: it reads the
 * tls12_cid record's second CID byte (docs/cluster.md has an nftables
 * rule). Each node needs an id of its own; a node cannot see another's,
 * so a clash goes unnoticed here (the balancer's map is the place to
 * check). Without this call byte 1 is 0 (CIDs of 4 bytes or more) or
 * random (shorter ones). Call before coap_context_listen. Returns 0 or
 * COAP_E_INVALID_ARG. */
#define COAP_DTLS_CID_NODE_MAX 255
COAPS_API int coap_dtls_set_cid_node(coap_dtls_context_t *d, unsigned node);
/* Client: the CID we ask the server to put on its records to us (|len| 0
 * to 32; 0, the default, means none). */
COAPS_API int coap_dtls_set_client_cid(coap_dtls_context_t *d, const uint8_t *cid, size_t len);

/* Allocated by the program, filled by the library: versioned
 * (coaps/export.h). */
#define COAP_DTLS_CID_INFO_V1 1
#define COAP_DTLS_CID_INFO_VERSION COAP_DTLS_CID_INFO_V1
typedef struct coap_dtls_cid_info {
  int negotiated; /* both sides agreed on Connection IDs */
  size_t own_len; /* our CID: on the records we receive (0: none) */
  uint8_t own[32];
  size_t peer_len; /* the peer's: on the records we send (0: none) */
  uint8_t peer[32];
} coap_dtls_cid_info_t;
/* The CIDs of the last client handshake of |d| into |out|, a
 * coap_dtls_cid_info_t of |version| (negotiated 0 when there was none,
 * or CID was not agreed). Returns 0, or COAP_E_INVALID_ARG (NULL
 * arguments, an unknown version: nothing written). Call it as
 * coap_dtls_last_cid(d, out). */
COAPS_API int coap_dtls_last_cid_versioned(const coap_dtls_context_t *d, int version,
                                           coap_dtls_cid_info_t *out);
#define coap_dtls_last_cid(d, out) \
  coap_dtls_last_cid_versioned((d), COAP_DTLS_CID_INFO_VERSION, (out))

/* Allocated by the program, filled by the library: versioned. */
#define COAP_DTLS_CID_STATS_V1 1
#define COAP_DTLS_CID_STATS_V2 2 /* forged */
#define COAP_DTLS_CID_STATS_VERSION COAP_DTLS_CID_STATS_V2
typedef struct coap_dtls_cid_stats {
  uint64_t sessions; /* handshakes that agreed on Connection IDs */
  uint64_t moves;    /* server peers moved to a new address by their CID */
  uint64_t held;     /* datagrams not sent to an address not confirmed yet */
  /* ---- version 2 ---- */
  uint64_t forged; /* datagrams naming one of our CIDs in which no record
                      authenticated (forged, damaged or replayed): dropped,
                      and no sign of the peer's life (no move, no idle
                      timer or eviction order refreshed) */
} coap_dtls_cid_stats_t;
/* The counters of |d| (summed over the contexts that share it) into
 * |out|, a coap_dtls_cid_stats_t of |version|. Returns 0, or
 * COAP_E_INVALID_ARG as above. Call it as coap_dtls_cid_stats(d, out). */
COAPS_API int coap_dtls_cid_stats_versioned(const coap_dtls_context_t *d, int version,
                                            coap_dtls_cid_stats_t *out);
#define coap_dtls_cid_stats(d, out) \
  coap_dtls_cid_stats_versioned((d), COAP_DTLS_CID_STATS_VERSION, (out))

/* A GnuTLS priority string replacing the default (AEAD suites, DTLS 1.2,
 * CCM_8 first). Checked at once.
 *
 * Each session narrows it to the key exchanges its own credentials can
 * complete, by removals appended to the string, so the order it gives
 * (and %SERVER_PRECEDENCE, which the default has) is kept. A server keeps
 * the PSK exchanges if it has PSK identities or a lookup callback,
 * ECDHE-ECDSA for an EC or EdDSA certificate or a raw public key, and
 * ECDHE-RSA for an RSA certificate; a client keeps PSK if it has a key,
 * and the certificate exchanges if it can authenticate a server (a CA,
 * trusted raw keys or a raw-key callback), asking only for raw keys when
 * those are all it can check and showing only its raw key when it has
 * no certificate. Without this, GnuTLS's server would pick a suite it has
 * no credentials for, then fail. A string with no key exchange the
 * credentials can complete is used whole, with a warning logged, and the
 * handshake then names the mismatch. The narrowing follows the
 * credentials as they are set, in any order; a new string applies to
 * sessions started after this call, not to ones already under way. */
COAPS_API int coap_dtls_set_priority(coap_dtls_context_t *d, const char *priority);

/* True when |d| has something to authenticate a server with (a PSK, a CA,
 * or a trusted raw public key) — what a coaps:// request needs. */
COAPS_API int coap_dtls_can_connect(const coap_dtls_context_t *d);
/* (A context whose only trust is an RPK verify callback can connect too.) */
/* True when |d| can serve coaps:// (a PSK table, a certificate or a raw
 * public key). */
COAPS_API int coap_dtls_can_serve(const coap_dtls_context_t *d);

#ifdef __cplusplus
}
#endif
#endif
