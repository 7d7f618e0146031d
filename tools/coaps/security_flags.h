/* DTLS credential flags shared by the client commands and serve. */
#ifndef COAPS_TOOL_SECURITY_FLAGS_H
#define COAPS_TOOL_SECURITY_FLAGS_H

#include <getopt.h>

#include "cli.h"

typedef struct security_flags {
  const char *psk_identity, *psk, *psk_hex;
  const char *cert, *key, *cacert;
  const char *session_file;
  int rpk;
  const char *trust_rpk[8];
  size_t n_trust_rpk;
  long mtu;
  unsigned handshake_timeout_ms;
  int cookie; /* 1 + coap_dtls_cookie_policy_t; 0: not given */
  int client_cert_required;
  const char *psk_file;         /* serve --psk-file */
  int allow_insecure_key_files; /* serve --allow-insecure-key-files */
  const char *ticket_key_file;  /* serve --ticket-key-file */
  coap_psk_table_t *psk_table;  /* psk_file loaded (security_flags_load_psk_file) */
  int cid;                      /* Connection ID: 1 --cid, -1 --no-cid, 0 not given */
  unsigned cid_len;             /* --cid=N */
  int cid_len_given;
  int any;
} security_flags_t;

/* getopt_long entries for the flags (ids from 0x100 up): appended to the
 * |n| entries of |dst| (room for |cap|), then an all-zero entry; the
 * server's (|server|: --cookie, --require-client-cert) or the client's
 * (--session). Returns the entries now in |dst|, the zero one left out. */
#define SECURITY_OPTION_FIRST 0x100
size_t security_options_merge(struct option *dst, size_t n, size_t cap, int server);
/* Handle option |id| if it is one of ours: 1 handled, 0 not ours, -1
 * ours but refused after saying why (a bad value, too many --trust-rpk). */
int security_flags_take(security_flags_t *f, int id, const char *arg);
/* Help text lines for the flags. */
void security_flags_usage(FILE *out, int server);
/* After the options: flags that need others. 0, or -1 after saying what
 * is wrong (a usage error). */
int security_flags_check(const security_flags_t *f, int server);
/* Load --psk-file into f->psk_table (replacing a table there) and say a
 * warning (an insecure file allowed) on stderr. 0, or EXIT_CONFIG after
 * saying why on stderr. Without --psk-file, 0 and nothing changes. */
int security_flags_load_psk_file(security_flags_t *f);
/* The PSK file into a new table (*out) without printing: the number of
 * identities, or a negative code with |why| saying what is wrong ("FILE:
 * LINE: ..."); |why| may hold a warning on success too. */
int security_flags_read_psk_file(const security_flags_t *f, coap_psk_table_t **out, char *why,
                                 size_t cap);
/* Put the credentials of |f| into the configuration |d| (|table|: the
 * PSK file's, or NULL). 0, or a negative code with
 * coap_dtls_context_last_error(d) saying why. */
int security_flags_build(const security_flags_t *f, coap_dtls_context_t *d, int server,
                         coap_psk_table_t *table);
/* Build the DTLS configuration into |ctx| from flags that passed
 * security_flags_check. Returns 0, or the exit code after printing one
 * line (a file or key the library cannot use: EXIT_CONFIG). */
int security_flags_apply(const security_flags_t *f, coap_context_t *ctx, int server);
/* -v after a coaps:// request: whether the handshake agreed on a
 * Connection ID, and both CIDs (nothing without a DTLS handshake). */
void security_print_cid(coap_context_t *ctx);
/* serve, on the way out (with -v): sessions with a Connection ID, address
 * moves and datagrams held back, over the |n| contexts |ctx_of| gives. */
void security_print_cid_stats(int verbose, long n, coap_context_t *(*ctx_of)(const void *, long),
                              const void *arg);

#endif
