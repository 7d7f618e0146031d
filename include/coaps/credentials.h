/* coaps — credentials for many devices: a PSK table loaded from a file,
 * a directory of pinned raw public keys, swapping a context's credentials
 * while it runs, and ending the sessions the new credentials refuse.
 *
 * A fleet server (coaps serve --psk-file, README "Running coaps as a
 * service") does, on start and on each reload:
 *
 *   coap_psk_table_t *t = NULL;
 *   char why[512];
 *   if (coap_psk_table_load_file(path, 0, &t, why, sizeof why) < 0) {
 *     fprintf(stderr, "%s\n", why);      // "psk.txt:12: bad hex in the key"
 *     ... keep the credentials it has ...
 *   }
 *   coap_dtls_context_t *d = coap_dtls_context_new();
 *   coap_dtls_set_psk_table(d, t);       // d takes a reference
 *   coap_psk_table_free(t);              // ours
 *   coap_dtls_share_keys(d, coap_context_dtls(ctx)); // cookies, tickets go on
 *   coap_context_set_dtls_context(ctx, d);   // new handshakes use d
 *   coap_context_end_revoked_sessions(ctx);  // revoked devices are out
 *
 * Sessions established before the swap go on with the configuration they
 * began with (each session holds a reference to it), as do handshakes in
 * progress; only new handshakes see the new one.
 */
#ifndef COAPS_CREDENTIALS_H
#define COAPS_CREDENTIALS_H

#include <stddef.h>
#include <stdint.h>

#include "coaps/context.h"
#include "coaps/dtls.h"
#include "coaps/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest PSK identity and key, in bytes (what a DTLS session keeps, and
 * libcoap's limits too). */
#define COAP_PSK_IDENTITY_MAX 64
#define COAP_PSK_KEY_MAX 64

/* ---- PSK table: identity -> key, O(1) lookup ----
 *
 * Open addressing over one arena: about 40 bytes a device plus its
 * identity and key. Filling it (add, parse) is for one thread; once
 * handed to a DTLS configuration it is read only, and may be shared by
 * any number of configurations and threads (the reference count is
 * atomic). Freeing it zeroises every key. */
typedef struct coap_psk_table coap_psk_table_t;

/* An empty table with room for |expected| identities before it grows
 * (0: a few). NULL when out of memory. One reference, the caller's. */
COAPS_API coap_psk_table_t *coap_psk_table_new(size_t expected);
/* One more reference (returned). */
COAPS_API coap_psk_table_t *coap_psk_table_ref(coap_psk_table_t *t);
/* Drop one reference; the last one zeroises and frees the table. */
COAPS_API void coap_psk_table_free(coap_psk_table_t *t);

/* Add |identity| (|id_len| bytes, 1..COAP_PSK_IDENTITY_MAX, no NUL) with
 * its key (1..COAP_PSK_KEY_MAX bytes). COAP_E_EXISTS for an identity
 * already there (the table is unchanged), COAP_E_INVALID_ARG for a length
 * out of range, COAP_E_NOMEM. */
COAPS_API int coap_psk_table_add(coap_psk_table_t *t, const char *identity, size_t id_len,
                                 const uint8_t *key, size_t key_len);

/* The key of |identity| (NUL-terminated) into |key| (|cap| bytes): its
 * length, or COAP_E_NOT_FOUND, or COAP_E_BUFFER_TOO_SMALL. The identity
 * bytes are compared in constant time once the hash matches. */
COAPS_API int coap_psk_table_lookup(const coap_psk_table_t *t, const char *identity, uint8_t *key,
                                    size_t cap);
/* 1 when |identity| is in the table. */
COAPS_API int coap_psk_table_contains(const coap_psk_table_t *t, const char *identity);
/* Identities in the table. */
COAPS_API size_t coap_psk_table_count(const coap_psk_table_t *t);
/* Bytes the table holds on the heap (slots and arena). */
COAPS_API size_t coap_psk_table_memory(const coap_psk_table_t *t);

/* Parse the PSK file format from memory into |t|:
 *
 *   # a comment: '#' at the start of a line or after whitespace
 *   IDENTITY KEY
 *
 * one pair a line, separated by spaces or tabs; KEY is the key as text,
 * or "hex:" and its hex digits (either case, an even number of them).
 * Blank lines and comments are skipped; CR LF line ends are taken. Neither
 * an identity nor a key can hold whitespace or start with '#' (a key that
 * does is written in hex:). Refused, naming |name| and the line
 * ("psk.txt:12: ..."): an identity without a key, a third field, bad hex,
 * an empty key, an identity or key longer than COAP_PSK_IDENTITY_MAX /
 * COAP_PSK_KEY_MAX bytes, a NUL byte, an identity given twice (naming
 * the line of the first). Returns the number of identities added, or
 * COAP_E_DTLS_CREDENTIALS with the first problem and how many lines have
 * one in |why| (the table then holds what came before it: discard it).
 * Keys never appear in messages. */
COAPS_API int coap_psk_table_parse(coap_psk_table_t *t, const char *name, const char *text,
                                   size_t len, char *why, size_t why_cap);

/* Flags of coap_psk_table_load_file. */
#define COAP_KEY_FILE_ALLOW_INSECURE 1u /* take a file group or others may read */

/* Read |path| (a regular file; symbolic links are followed) and parse it
 * into a new table (*out, one reference, the caller's). A file that group
 * or others may read (mode & 077) is refused unless
 * COAP_KEY_FILE_ALLOW_INSECURE, which still leaves a warning in |why|
 * (returned 0 or more then, with |why| not empty). Returns the identities
 * loaded, or COAP_E_DTLS_CREDENTIALS with |why| saying what is wrong:
 * missing, a directory, unreadable, insecure, or the first bad line. The
 * buffer the file was read into is zeroised. */
COAPS_API int coap_psk_table_load_file(const char *path, unsigned flags, coap_psk_table_t **out,
                                       char *why, size_t why_cap);

/* Read the ticket key file |path| (coap_dtls_set_ticket_keys has its
 * format) into |d|, with the checks of coap_psk_table_load_file: a file
 * group or others may read is refused unless COAP_KEY_FILE_ALLOW_INSECURE
 * (then a warning in |why|). Returns the number of keys, or
 * COAP_E_INVALID_ARG, or COAP_E_DTLS_CREDENTIALS with |why| saying what
 * is wrong. The buffer the file was read into is zeroised. */
COAPS_API int coap_dtls_load_ticket_key_file(coap_dtls_context_t *d, const char *path,
                                             unsigned flags, char *why, size_t why_cap);

/* Serve the identities of |t| (a server; a reference is taken, |t| may be
 * NULL to drop it). Looked up after coap_dtls_set_psk's identities and
 * before a coap_dtls_set_psk_lookup callback. */
COAPS_API int coap_dtls_set_psk_table(coap_dtls_context_t *d, coap_psk_table_t *t);

/* ---- raw public keys: a directory ---- */

/* coap_dtls_add_trusted_rpk for each regular file in |dir| whose name
 * does not start with '.', in name order. Returns the number of keys
 * added, or COAP_E_DTLS_CREDENTIALS when |dir| cannot be read or a file
 * in it is not a public key (coap_dtls_context_last_error names it; keys
 * added before it stay: build a fresh configuration and discard it on
 * failure). */
COAPS_API int coap_dtls_add_trusted_rpk_dir(coap_dtls_context_t *d, const char *dir);

/* 1 when |d| accepts the peer raw public key with this fingerprint
 * ("sha256:ab:..", as coap_dtls_rpk_fingerprint writes it): in its trust
 * list, or accepted by its verify callback... which needs the key itself,
 * so only the trust list is consulted here. */
COAPS_API int coap_dtls_trusts_rpk_fingerprint(const coap_dtls_context_t *d,
                                               const char *fingerprint);
/* 1 when |d| has a key for PSK |identity| (coap_dtls_set_psk, the table;
 * the lookup callback is asked with a scratch buffer). */
COAPS_API int coap_dtls_knows_psk_identity(const coap_dtls_context_t *d, const char *identity);

/* ---- ending sessions ---- */

/* What a server knows about a DTLS session's peer. */
typedef struct coap_session_info {
  const char *peer;            /* "[addr]:port" */
  const char *psk_identity;    /* the identity the client sent, or NULL */
  const char *rpk_fingerprint; /* "sha256:.." of the client's raw key, or NULL */
  int established;             /* 0: its handshake is in progress */
  int client;                  /* 1: our own client session (to a server) */
} coap_session_info_t;

/* 1: end this session. */
typedef int (*coap_session_match_fn)(void *user, const coap_session_info_t *info);

/* End every DTLS session of |ctx| for which |match| returns 1 (NULL: all
 * of them): an established one gets a close_notify, and its peer is
 * forgotten (its observations, exchanges and Block1 bodies with it), so
 * its next record is unknown and its next request needs a new handshake.
 * Returns how many ended. Call it on the context's own thread. */
COAPS_API size_t coap_context_end_sessions(coap_context_t *ctx, coap_session_match_fn match,
                                           void *user);

/* End the server sessions whose credentials the context's current DTLS
 * configuration no longer accepts: a PSK identity it does not know
 * (coap_dtls_knows_psk_identity), a raw public key not in its trust list
 * (unless it has a coap_dtls_set_rpk_verify callback, which needs the key
 * itself: then raw-key sessions are left alone, and only resumptions are
 * asked again; nor are PSK identities longer than COAP_PSK_IDENTITY_MAX,
 * which only a lookup callback can accept).
 * Call after coap_context_set_dtls_context with a reloaded configuration.
 * (A certificate chain is not checked again: a CA removed ends nothing
 * until the session ends by itself.) Returns how many ended. */
COAPS_API size_t coap_context_end_revoked_sessions(coap_context_t *ctx);

#ifdef __cplusplus
}
#endif
#endif
