/* coaps serve --state-file: the DTLS sessions written at SIGTERM and read
 * at the next start, so clients keep them across a restart or an upgrade
 * without a handshake. */
#ifndef COAPS_TOOL_SERVE_STATE_H
#define COAPS_TOOL_SERVE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "coaps/coaps.h"

#define SERVE_STATE_MAX_AGE_S 60 /* --state-max-age's default */

typedef struct serve_state {
  const char *file;     /* --state-file, or NULL */
  const char *key_file; /* --state-key-file */
  long max_age_s;       /* --state-max-age */
  unsigned node_id;     /* --node-id: a file sealed by another node is refused */
  uint8_t key[32];
  size_t key_len;
} serve_state_t;

/* The key file: 32 (or 16) bytes as hex, readable by its owner only.
 * 0, or an exit code with the reason printed. */
int serve_state_load_key(serve_state_t *st);
/* At start, before the workers' loops: read the state file, delete it,
 * and give its sessions to the |n| workers' contexts |ctxs| (worker i at
 * i), each to the worker its client's datagrams reach. A file that is not there is no error; one
 * refused (forged, another key, stale, readable by others) is said why and the server starts
 * without it. */
void serve_state_restore(serve_state_t *st, coap_context_t *const *ctxs, size_t n);
/* At the stop, once every worker's loop has ended and before the
 * close_notify: write the sessions of all workers to one file (a new
 * 0600 file renamed into place). One sealing over all of them is fast
 * (AES-GCM over at most a few hundred bytes a session), well within the
 * stop's bound. */
void serve_state_save(serve_state_t *st, coap_context_t *const *ctxs, size_t n);

#endif
