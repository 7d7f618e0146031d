/* Private to src/security: the GnuTLS objects behind coap_dtls_context_t. */
#ifndef COAPS_DTLS_INTERNAL_H
#define COAPS_DTLS_INTERNAL_H

#include <gnutls/dtls.h>
#include <gnutls/gnutls.h>

#include "common/diag.h"
#include "security/dtls_record.h"
#include "security/security.h"

typedef struct psk_entry {
  char *identity;
  uint8_t *key;
  size_t key_len;
} psk_entry_t;

#define SESSION_CACHE_SIZE 16
#define COAP_DTLS_TICKET_NAME_LEN 16 /* GnuTLS's key_name, a ticket's first bytes */
#define COAP_DTLS_TICKET_KEY_LEN 64  /* a GnuTLS session-ticket master key */
#define COAP_DTLS_TICKET_KEYS_MAX 8  /* the current key and previous ones */
/* GnuTLS derives a ticket's key from the master key and the time step
 * unix time / (3 × the session's cache expiration) (lib/stek.c). Every
 * server session is given this expiration (GnuTLS's default) so that the
 * step we derive names for (dtls_ticket_names.c) is GnuTLS's. */
#define COAP_DTLS_TICKET_EXPIRE_S 21600u
#define COAP_DTLS_TICKET_STEP_S (3u * COAP_DTLS_TICKET_EXPIRE_S)

/* A client's last session with one server, for resumption. */
typedef struct session_cache_entry {
  char *server_name;
  gnutls_datum_t data;
} session_cache_entry_t;

/* The key names of the tickets a server can open (dtls_ticket_names.c):
 * for each ticket key, its name at |step| ([0]) and at step - 1 ([1]). */
typedef struct ticket_names {
  uint64_t step;
  unsigned keys; /* rows derived; 0: derive before use */
  uint8_t derived[COAP_DTLS_TICKET_KEYS_MAX];
  uint8_t name[COAP_DTLS_TICKET_KEYS_MAX][2][COAP_DTLS_TICKET_NAME_LEN];
} ticket_names_t;

struct coap_dtls_context {
  session_cache_entry_t cache[SESSION_CACHE_SIZE];
  size_t cache_next; /* slot replaced next when the cache is full */
  char *session_file;
  int session_file_loaded;
  psk_entry_t *psk; /* accepted identities; the last is ours */
  size_t n_psk;
  char *psk_hint;
  gnutls_psk_server_credentials_t psk_server;
  gnutls_psk_client_credentials_t psk_client;
  gnutls_certificate_credentials_t cert;
  int has_cert, has_ca, has_rpk;
  gnutls_datum_t own_spki;     /* DER, for the fingerprint */
  gnutls_datum_t *trusted_rpk; /* DER SubjectPublicKeyInfo each */
  size_t n_trusted_rpk;
  coap_dtls_rpk_verify_fn rpk_verify;
  void *rpk_verify_user;
  coap_dtls_psk_lookup_fn psk_lookup;
  void *psk_lookup_user;
  coap_dtls_client_cert_t client_cert;
  int client_cert_explicit;
  int verify_name;
  unsigned mtu, retransmit_ms, total_ms;
  unsigned max_handshakes;
  gnutls_priority_t priority;
  char *priority_string; /* the same, as text, to extend per session */
  /* GnuTLS 3.7's server picks a certificate suite when it has no
   * certificate credentials at all (and a PSK suite without PSK ones),
   * then fails: so each role gets the priority above narrowed to the key
   * exchanges its credentials can complete. Built on first use and again
   * whenever the credentials it was made for differ (role_made_for), so
   * every setter, in any file, is covered. [0] server, [1] client. */
  gnutls_priority_t role_priority[2];
  unsigned role_made_for[2];
  unsigned cert_kx; /* COAP_DTLS_KX_* the X.509 keys serve */
  gnutls_datum_t cookie_key;
  /* Session-ticket master keys: [0] seals new tickets (random per
   * configuration, or the current key of a key file), the others are the
   * file's previous keys, which still open tickets (the grace period). */
  uint8_t ticket_keys[COAP_DTLS_TICKET_KEYS_MAX][COAP_DTLS_TICKET_KEY_LEN];
  unsigned n_ticket_keys;
  /* The ticket keys came from coap_dtls_set_ticket_keys (a key file
   * shared with other servers): coap_dtls_share_keys keeps them. */
  int ticket_key_from_file;
  ticket_names_t ticket_names;      /* derived from ticket_keys */
  gnutls_dtls_prestate_st prestate; /* of the ClientHello just accepted */
  int prestate_valid;               /* it came with a valid cookie */
  int accepted_ticket;              /* ... and with a session ticket */
  int accepted_key; /* ... sealed with ticket_keys[accepted_key]; -1: none of ours */
  coap_dtls_cookie_policy_t cookie_policy;
  unsigned cookie_load; /* under-load policy: handshakes in progress */
  /* The logger of the context that took this configuration last, or
   * &log_copy: when a context lets go of a configuration others still
   * hold, its logger is copied (by value) so that nothing here points
   * into a freed context. */
  const coap_logger_t *log;
  coap_logger_t log_copy;
  unsigned refs;   /* coap_dtls_context_ref; freed at 0 */
  int no_resume;   /* clients neither resume nor keep sessions */
  int keep_gnutls; /* compact sessions turned off */
  /* The records of the flight being sent, gathered into datagrams of up
   * to mtu bytes (one buffer for all sessions: a configuration is used
   * on one thread, and one session is driven at a time). */
  uint8_t *flight;
  size_t flight_len, flight_cap;
  struct coap_dtls_session *flight_owner; /* NULL: not gathering */
  uint64_t compacted;                     /* sessions moved to exported keys */
  /* Connection ID (RFC 9146, dtls_cid.c): asked for (client) and granted
   * (server) unless turned off; the length of the server's CIDs, the
   * client's own CID (empty by default), the bytes the server's CIDs
   * begin with (worker index, node id), and what happened. cid_steered:
   * a worker index was given (coap_dtls_set_cid_worker), so every CID of
   * ours begins with it whatever its length — the kernel's steering
   * program reads that byte and must never see a random one. cid_node_set:
   * a node id was given (coap_dtls_set_cid_node): byte 1 carries it in any
   * CID of 2 bytes or more, for the balancer in front. */
  int cid_enabled;
  uint8_t cid_len, cid_client_len, cid_worker, cid_node, cid_steered, cid_node_set;
  uint8_t cid_client[COAP_DTLS_CID_MAX];
  coap_dtls_cid_t last_client_cid; /* of the last client handshake */
  uint64_t cid_sessions, cid_moves, cid_held, cid_forged;
  char error[512];
  struct coap_psk_table *psk_table; /* coap_dtls_set_psk_table (psk_table.c) */
};

/* Send times of our Finished flight's copies kept per client session. */
#define COAP_DTLS_FINAL_COPIES_KEPT 8

/* What only a client session keeps: the name it checks and the report of
 * its handshake (a server holds thousands of sessions and keeps neither). */
#define COAP_DTLS_OWN_FLIGHT_MAX 4096
#define COAP_DTLS_OWN_FLIGHT_DATAGRAMS 8

typedef struct client_side {
  char server_name[256];
  coap_handshake_report_t report;
  /* Our last flight as sent, to send again ourselves when GnuTLS will not:
   * once part of the server's next flight has come, it waits for the
   * rest forever (a server that resends only when asked, like libcoap's,
   * then never completes). Made on first use. */
  uint8_t *own_flight;
  size_t own_flight_len;
  uint16_t own_dgram_len[COAP_DTLS_OWN_FLIGHT_DATAGRAMS];
  unsigned own_dgrams;
  int own_resending;      /* sending from the copy: do not copy again */
  uint64_t own_sent_at;   /* the flight last went out */
  unsigned rx_at_send;    /* datagrams received by then */
  uint32_t own_resend_ms; /* our own back-off for such resends */
} client_side_t;

/* Server, full handshake: our last flight (NewSessionTicket,
 * ChangeCipherSpec, Finished) as first sent, to send again when the
 * client's flight comes again and GnuTLS sends nothing (see
 * dtls_final_flight.c). Kept until the client's first application data
 * shows it has our flight. */
#define COAP_DTLS_FINAL_FLIGHT_DATAGRAMS 4
#define COAP_DTLS_FINAL_RESENDS_MAX 6 /* copies sent from it, at most */

typedef struct final_flight {
  uint8_t *bytes;
  size_t len;
  uint16_t dgram_len[COAP_DTLS_FINAL_FLIGHT_DATAGRAMS];
  unsigned dgrams;
  unsigned resends;      /* copies sent from it */
  size_t resent_len;     /* their bytes: at most 3x what the peer sent (peer_in) */
  int answered;          /* a repeat was answered (by GnuTLS or from the copy) */
  uint64_t answered_seq; /* ... the last one's record number */
} final_flight_t;

struct coap_dtls_session {
  gnutls_session_t tls;
  coap_dtls_context_t *d;
  coap_dtls_session_cb_t cb;
  void *user;
  const uint8_t *in; /* the datagram GnuTLS may pull, NULL once taken */
  size_t in_len;
  const uint8_t *cur; /* the datagram being handled (for diagnosis) */
  size_t cur_len;
  int client, established, failed;
  int pushed;                      /* this drive sent a datagram: one more flight */
  uint64_t started;                /* first flight */
  uint64_t now;                    /* last time we were given */
  uint64_t deadline;               /* handshake gives up */
  uint64_t next_retransmit;        /* GnuTLS wants to be called again */
  unsigned flights;                /* flights sent, resends included */
  unsigned rx;                     /* datagrams received from the peer */
  unsigned repeats_after_finished; /* client: server flight seen again */
  /* Client: hellos sent, and the HelloVerifyRequests and ServerHellos
   * that came (each copy). Every hello answered once, before the next
   * went out, is a clean exchange: no copy for a server to mix up. */
  unsigned hellos_sent, hello_verifies_seen, server_hellos_seen;
  int ccs_after_kx; /* server: a ChangeCipherSpec taken after it */
  /* Client: evidence that loss cannot make, for a server that never says
   * "wrong key" (see dtls_diagnose.c). The round trip of a flight sent
   * once, and when each copy of our last flight (with the Finished) went
   * out: a copy counts as lost only once the server's answer to it had
   * time to come back. */
  uint64_t flight_at;           /* our current flight first went out */
  int flight_resent;            /* ... and was sent again since */
  uint32_t rtt_ms;              /* largest clean sample, 0: none yet */
  unsigned final_copies;        /* copies of our Finished flight sent */
  int send_twice;               /* this drive sends each datagram twice */
  int await_hello;              /* client: coap_dtls_session_follows_old, no ServerHello yet */
  unsigned sends;               /* datagrams sent, of every kind */
  size_t peer_in;               /* bytes received from the peer while GnuTLS runs the session */
  final_flight_t *server_final; /* server: NULL when there is none to send again */
  int asked_cookie;             /* client: a HelloVerifyRequest came (our hello went again) */
  int cookieless;               /* server: the handshake began with a hello without a cookie */
  /* Server: a handshake that began without a valid cookie talks to an
   * address nobody has shown to be the sender's. Until the client's
   * Finished proves it, we send it no more bytes than it sent us, and
   * resend nothing on our own timer (no amplification, no reflection). */
  int unverified;
  /* Server: the client's hello brought a session ticket (copied from the
   * configuration's accepted_ticket), so a full handshake means we could
   * not open it (ticket-key-unknown). */
  int offered_ticket, ticket_refused;
  int offered_key; /* the index of the key that sealed it, -1: none of ours */
  size_t unverified_in, unverified_out;
  /* ... and the one datagram it last sent there, to send again when the
   * client resends its hello (GnuTLS resends only on its own timer). */
  uint8_t *unverified_flight;
  size_t unverified_flight_len;
  uint64_t final_at[COAP_DTLS_FINAL_COPIES_KEPT];
  unsigned largest_datagram; /* of what we sent */
  coap_dtls_step_t step;
  char psk_identity[65];       /* server: the identity the client sent (64 bytes at most) */
  uint8_t peer_rpk_sha256[32]; /* server: SHA-256 of the client's raw key ... */
  int has_peer_rpk;            /* ... when it showed one (for revocation) */
  const char *peer_name;       /* "[addr:port]" for log lines (the caller's), or NULL */
  /* Server: the start of the client's random from this session's hello,
   * to tell a late copy of that hello from a restarted client's. */
  uint8_t hello_random[8];
  client_side_t *cs; /* NULL on a server */
  coap_diag_t *diag; /* made when the session fails */
  /* A session, once the peer has sent application data (so it has
   * finished the handshake), drops its GnuTLS session (tls = NULL) and
   * runs on exported keys: a fraction of the memory. */
  coap_dtls_keys_t *keys;
  int slim_wanted, slim_refused, resumed;
  int offers_resumption; /* client: its hello offers a session of this server */
  int mode;              /* coap_dtls_mode_t, once established */
  const char *suite;     /* static storage (GnuTLS's name table) */
  /* Connection ID (dtls_cid.c). The newest epoch and sequence number of
   * an authenticated record: only a newer one may move the peer
   * (RFC 9146 §6). The cipher, read from the ServerHello, for rewriting
   * records while GnuTLS runs the session. */
  coap_dtls_cid_t cid;
  uint8_t cid_asked; /* server: the client sent extension 54 */
  int cid_alg;       /* gnutls_cipher_algorithm_t, 0: not known yet */
  uint64_t rx_newest;
  /* Records from the peer that authenticated on the session's keys
   * (application data and alerts, on GnuTLS or exported keys), and the
   * handshake's completion. */
  uint64_t rx_authentic;
};

/* The PSK identity a client sent (the server's lookup callback). */
void coap_dtls_session_note_identity(gnutls_session_t tls, const char *identity);

/* dtls_cid.c: register extension 54 on a new session (when CID is on). */
int coap_dtls_cid_register(coap_dtls_session_t *s);
/* Note the suite of a ServerHello passing by (ours or the peer's). */
void coap_dtls_cid_watch_hello(coap_dtls_session_t *s, const uint8_t *rec, size_t len);
/* A record GnuTLS pushes: 0 send it as it is, > 0 send the |out| bytes
 * (its tls12_cid form), < 0 drop it (never send the old format). */
int coap_dtls_cid_push_rewrite(coap_dtls_session_t *s, const uint8_t *rec, size_t len, uint8_t *out,
                               size_t cap);
/* A record from the peer before GnuTLS sees it: 0 as it is, > 0 the
 * |out| bytes (GnuTLS's form of a tls12_cid record), < 0 drop it. */
int coap_dtls_cid_pull_rewrite(coap_dtls_session_t *s, const uint8_t *rec, size_t len, uint8_t *out,
                               size_t cap);
/* dtls_final_flight.c (server): keep a datagram of the flight being sent
 * when it is the full handshake's last; is |data| the client's flight
 * again (an epoch-0 handshake record other than a ClientHello, on an
 * established session with a kept flight); the |repeat| datagram was
 * handled: when GnuTLS sent nothing for it, send the kept flight again
 * (within its bounds: one answer per record number, by GnuTLS or us);
 * drop the kept flight. */
void coap_dtls_keep_server_final(coap_dtls_session_t *s, const void *data, size_t len);
int coap_dtls_client_flight_again(const coap_dtls_session_t *s, const uint8_t *data, size_t len);
void coap_dtls_answer_client_repeat(coap_dtls_session_t *s, const uint8_t *repeat,
                                    int gnutls_answered);
void coap_dtls_forget_server_final(coap_dtls_session_t *s);

/* dtls_session.c: a record with this epoch and sequence authenticated. */
void coap_dtls_note_authentic(coap_dtls_session_t *s, uint64_t seq64);

/* Key exchanges, as credentials allow them (role_made_for, cert_kx). */
#define COAP_DTLS_KX_PSK 1u   /* PSK, ECDHE-PSK */
#define COAP_DTLS_KX_ECDSA 2u /* ECDHE-ECDSA: an EC or EdDSA key, or a raw key */
#define COAP_DTLS_KX_RSA 4u   /* ECDHE-RSA: an RSA key */

/* The priority for a new session of |client| or a server: the configured
 * one narrowed to what the credentials can complete (cached in |d|). */
gnutls_priority_t coap_dtls_role_priority(coap_dtls_context_t *d, int client);

/* Certificate credentials (with our verify callback), made on first use. */
int coap_dtls_ensure_cert_credentials(coap_dtls_context_t *d);

/* The certificate verify callback installed on the credentials. */
int coap_dtls_verify_peer(gnutls_session_t tls);

/* dtls_diagnose.c: the diagnosis of a failed session (allocated on first
 * use; NULL when out of memory — callers then report the bare code). */
coap_diag_t *coap_dtls_diag_start(coap_dtls_session_t *s, coap_cause_t cause, coap_detector_t by);
/* A fatal GnuTLS error from the handshake: diagnose it, tell the peer with
 * the fitting alert, return the COAP_E code. */
int coap_dtls_diagnose_failure(coap_dtls_session_t *s, int gnutls_rc, uint64_t now);
/* The handshake ran out of time: say what the silence most likely means. */
int coap_dtls_diagnose_stall(coap_dtls_session_t *s, uint64_t now);
/* Look at a datagram before GnuTLS does (repeated flights); returns a
 * COAP_E code when it shows the handshake cannot succeed. */
int coap_dtls_watch_input(coap_dtls_session_t *s, const uint8_t *data, size_t len, uint64_t now);
/* After GnuTLS took one record of a datagram: a server notices a Finished
 * it could not decrypt under keys it has switched to (wrong PSK). */
int coap_dtls_watch_discards(coap_dtls_session_t *s, const uint8_t *record, size_t len,
                             unsigned discarded_before, int last_in_before, uint64_t now);
/* Client: our Finished flight went out again (|copies| datagrams). */
void coap_dtls_note_final_copy(coap_dtls_session_t *s, unsigned copies, uint64_t now);
/* The peer certificate checks of the verify callback (X.509). */
int coap_dtls_check_x509(coap_dtls_session_t *s, const gnutls_datum_t *peers, unsigned n);
/* Record the chain in the client's report. */
void coap_dtls_note_chain(coap_dtls_session_t *s, const gnutls_datum_t *peers, unsigned n);
/* "PSK (TLS_PSK_WITH_AES_128_CCM_8, ...), ECDHE-ECDSA (...)" from a ClientHello. */
/* dtls_cookie.c: the index in d->ticket_keys of the key that sealed the
 * session ticket a ClientHello brings, by its name, at |unix_now|
 * (seconds); -1 when it brings none or none of ours. */
int coap_dtls_hello_ticket_key(coap_dtls_context_t *d, const uint8_t *data, size_t len,
                               uint64_t unix_now);
/* Whether a hello brings a session ticket at all (not an empty extension,
 * which asks for a new one). */
int coap_dtls_hello_has_ticket(const uint8_t *data, size_t len);
/* dtls_ticket_names.c: GnuTLS's time step at |unix_now|; the name of the
 * tickets |key| (COAP_DTLS_TICKET_KEY_LEN bytes) seals in |step| (0, or
 * -1 when GnuTLS has no SHA3-512); the index of the key whose tickets are
 * named |name| now, or -1; forget the table when the keys change. */
uint64_t coap_dtls_ticket_step(uint64_t unix_now);
int coap_dtls_ticket_name(const uint8_t *key, uint64_t step,
                          uint8_t name[COAP_DTLS_TICKET_NAME_LEN]);
int coap_dtls_ticket_key_named(coap_dtls_context_t *d, const uint8_t *name, uint64_t unix_now);
void coap_dtls_ticket_keys_changed(coap_dtls_context_t *d);
void coap_dtls_hello_offer(const uint8_t *data, size_t len, char *out, size_t cap);
/* What this configuration can do as |client| or server, in words. */
void coap_dtls_describe_modes(const coap_dtls_context_t *d, int client, char *out, size_t cap);

/* "sha256:aa:bb:..." of a DER SubjectPublicKeyInfo. */
void coap_dtls_spki_fingerprint(const gnutls_datum_t *spki, char *buf, size_t cap);
void coap_dtls_rpk_clear(coap_dtls_context_t *d);
int coap_dtls_rpk_trusted(const coap_dtls_context_t *d, const uint8_t *spki, size_t len);

/* Resumption data for |server_name| (NULL when none), and storing it. */
const gnutls_datum_t *coap_dtls_cache_find(coap_dtls_context_t *d, const char *server_name);
void coap_dtls_cache_clear(coap_dtls_context_t *d);
void coap_dtls_cache_store(coap_dtls_context_t *d, const char *server_name,
                           const gnutls_datum_t *data);

/* Look up the key of |identity| (server side). NULL when unknown. */
const psk_entry_t *coap_dtls_psk_find(const coap_dtls_context_t *d, const char *identity);

/* psk_table.c: the key of |identity| in the configuration's PSK table
 * (its length, or a negative code), and making the PSK credentials the
 * table needs (dtls_config.c). */
int coap_dtls_psk_table_key(const coap_dtls_context_t *d, const char *identity, uint8_t *key,
                            size_t cap);
int coap_dtls_psk_table_install(coap_dtls_context_t *d);
/* credentials.c: a server session just completed: note the peer's PSK
 * identity and raw key, and refuse a resumed session whose credentials a
 * reload removed. 0 or a negative code (alert sent, diagnosis made). */
int coap_dtls_server_check_peer(coap_dtls_session_t *s);

#endif
