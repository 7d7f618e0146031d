/* DTLS sessions carried across a restart: the peer tables' entries
 * (secure.c) of one server's workers in the sealed envelope of
 * src/security/dtls_state.c, one file for all of them.
 *
 * Where a session lands when read back: each worker is a context with
 * its own SO_REUSEPORT socket, and the kernel hands a datagram to a
 * worker by the steering program (src/io/io.c: a tls12_cid record to the
 * worker its CID's first byte names) or, for everything else, by its
 * address hash over the group's sockets in the order they joined, which
 * is the same for the same number of sockets joined in the same order
 * (docs/security.md). So a session goes to the worker its client's
 * datagrams will reach: by its CID where the kernel steers by it, else
 * to the worker it was taken from when the count of workers is the same;
 * with one worker, everything reaches it. Any other session is left out,
 * counted and logged, and its client makes a new handshake. */
#include <stdio.h>
#include <stdlib.h>

#include "coaps/dtls.h"
#include "common/util.h"
#include "context/context_internal.h"
#include "security/dtls_state.h"

/* Sequence numbers skipped at a save: a second line of defence behind
 * retiring the keys (docs/security.md). */
#define RESTART_SEQ_MARGIN 1024
#define WORKERS_MAX 255 /* the worker count is one byte of the envelope */

static int contexts_valid(coap_context_t *const *ctxs, size_t n) {
  if (!ctxs || n < 1 || n > WORKERS_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if (!ctxs[i]) return 0;
  return 1;
}

/* What was left behind, in words, on the first context's log. */
static void log_left(coap_context_t *const *ctxs, size_t n, const coap_sessions_tally_t *t) {
  const coap_logger_t *log = &ctxs[0]->log;
  if (t->handshaking)
    coap_logf(log, COAP_LOG_WARNING, NULL,
              "%zu DTLS session(s) not carried: handshake not finished (the client starts "
              "it again)",
              t->handshaking);
  if (t->on_gnutls)
    coap_logf(log, COAP_LOG_WARNING, NULL,
              "%zu DTLS session(s) not carried: not on exported keys (records still through "
              "GnuTLS); their clients make a new handshake",
              t->on_gnutls);
  if (t->client)
    coap_logf(log, COAP_LOG_WARNING, NULL,
              "%zu DTLS session(s) not carried: this server's own client sessions (only "
              "the server side is carried)",
              t->client);
  uint64_t observers = 0, block_bytes = 0;
  for (size_t i = 0; i < n; i++) {
    coap_stats_t st;
    coap_context_get_stats(ctxs[i], &st);
    observers += st.observers;
    block_bytes += st.reassembly_bytes;
  }
  if (observers)
    coap_logf(log, COAP_LOG_WARNING, NULL,
              "%llu observe relation(s) not carried: their clients must register again "
              "(coaps observe does when Max-Age passes without a notification)",
              (unsigned long long)observers);
  if (block_bytes)
    coap_logf(log, COAP_LOG_WARNING, NULL,
              "%llu bytes of block-wise transfers under way not carried: those transfers "
              "fail and are started again by their clients",
              (unsigned long long)block_bytes);
}

long coap_contexts_export_sessions(coap_context_t *const *ctxs, size_t n, const uint8_t *key,
                                   size_t key_len, uint64_t node_id, uint64_t now_ms, uint8_t *out,
                                   size_t cap, size_t *carried) {
  if (!contexts_valid(ctxs, n) || !key) return COAP_E_INVALID_ARG;
  if (key_len != 16 && key_len != 32) return COAP_E_INVALID_ARG;
  size_t bound = 0;
  for (size_t i = 0; i < n; i++) {
    if (!ctxs[i]->dtls) return COAP_E_STATE;
    bound += coap_secure_export_bound(ctxs[i]);
  }
  if (!out) return (long)(bound + COAP_DTLS_STATE_OVERHEAD);
  uint8_t *plain = malloc(bound ? bound : 1);
  if (!plain) return COAP_E_NOMEM;
  coap_sessions_tally_t tally = {0};
  long len = 0;
  for (size_t i = 0; i < n && len >= 0; i++) {
    long part = coap_secure_export(ctxs[i], RESTART_SEQ_MARGIN, (uint8_t)i, plain + len,
                                   bound - (size_t)len, &tally);
    len = part < 0 ? part : len + part;
  }
  if (len >= 0) {
    len = coap_dtls_state_seal(key, key_len, node_id, now_ms, (unsigned)n, ctxs[0]->cfg.rand,
                               ctxs[0]->cfg.rand_user, plain, (size_t)len, out, cap);
    if (len < 0) len = COAP_E_BUFFER_TOO_SMALL;
  }
  coap_memzero(plain, bound);
  free(plain);
  if (len >= 0) {
    coap_logf(&ctxs[0]->log, COAP_LOG_INFO, NULL,
              "%zu DTLS session(s) of %zu worker(s) saved for a restart", tally.carried, n);
    log_left(ctxs, n, &tally);
    if (carried) *carried = tally.carried;
  }
  return len;
}

long coap_context_export_sessions(coap_context_t *ctx, const uint8_t *key, size_t key_len,
                                  uint64_t node_id, uint64_t now_ms, uint8_t *out, size_t cap,
                                  size_t *carried) {
  if (!ctx) return COAP_E_INVALID_ARG;
  return coap_contexts_export_sessions(&ctx, 1, key, key_len, node_id, now_ms, out, cap, carried);
}

/* Why the sessions of a buffer did not all land. */
typedef struct import_tally {
  size_t carried;
  size_t cid_elsewhere; /* its CID names a worker that is not there now */
  size_t hashed;        /* no steering, and the worker count changed */
  size_t failed;        /* no endpoint on its port, address taken, peer limit */
  size_t to_worker[WORKERS_MAX];
} import_tally_t;

/* The worker (index into the contexts) whose socket |e|'s client's
 * datagrams reach now, or -1 (counted in |t|). */
static long entry_worker(const coap_saved_entry_t *e, unsigned was, size_t n, int steered,
                         import_tally_t *t) {
  if (n == 1) return 0; /* one socket: every datagram reaches it */
  int cid_first = coap_dtls_saved_session_cid_first(e->session, e->session_len);
  if (steered && cid_first >= 0) {
    if ((size_t)cid_first < n) return cid_first;
    t->cid_elsewhere++;
    return -1;
  }
  if (was == n && e->worker < n) return (long)e->worker;
  t->hashed++;
  return -1;
}

static void log_import(coap_context_t *const *ctxs, size_t n, unsigned was,
                       const import_tally_t *t) {
  const coap_logger_t *log = &ctxs[0]->log;
  char per_worker[256] = "";
  size_t used = 0;
  for (size_t i = 0; n > 1 && i < n && used < sizeof per_worker; i++) {
    int k = snprintf(per_worker + used, sizeof per_worker - used, "%sworker %zu: %zu",
                     i ? ", " : "; ", i, t->to_worker[i]);
    if (k > 0) used += (size_t)k;
  }
  coap_logf(log, COAP_LOG_INFO, NULL,
            "%zu DTLS session(s) taken over from before the restart (%u worker(s) then, %zu "
            "now%s)",
            t->carried, was, n, per_worker);
  if (t->cid_elsewhere)
    coap_logf(log, COAP_LOG_WARNING, NULL,
              "%zu DTLS session(s) not taken over: their Connection ID names a worker "
              "beyond the %zu there are now; their clients make a new handshake",
              t->cid_elsewhere, n);
  if (t->hashed)
    coap_logf(log, COAP_LOG_WARNING, NULL,
              "%zu DTLS session(s) not taken over: no Connection ID steers them and the "
              "workers went from %u to %zu, so the kernel's address hash sends their "
              "clients to other workers now; they make a new handshake",
              t->hashed, was, n);
  if (t->failed)
    coap_logf(log, COAP_LOG_WARNING, NULL,
              "%zu DTLS session(s) not taken over: no coaps:// endpoint on their port, "
              "their address already has a peer, or the peer limit is reached",
              t->failed);
}

/* The entries of an opened buffer into |ctxs|; 0 or COAP_E_INVALID_ARG
 * (the entries before the broken one are kept). */
static int import_entries(coap_context_t *const *ctxs, size_t n, unsigned version, unsigned was,
                          const uint8_t *plain, size_t len, import_tally_t *t) {
  int steered = n > 1 && coap_dtls_cid_worker(ctxs[0]->dtls) == 0;
  size_t at = 0;
  while (at < len) {
    coap_saved_entry_t e;
    if (coap_secure_next_entry(plain, len, &at, version >= 2, &e) < 0) return COAP_E_INVALID_ARG;
    long w = entry_worker(&e, was, n, steered, t);
    if (w < 0) continue;
    if (coap_secure_import_entry(ctxs[w], &e, coap_context_now(ctxs[w])) == 0) {
      t->carried++;
      t->to_worker[w]++;
    } else
      t->failed++;
  }
  return 0;
}

/* With steering, the kernel hands worker i the records whose CID begins
 * with i: the contexts must be given in that order. */
static int workers_in_order(coap_context_t *const *ctxs, size_t n) {
  if (n == 1 || coap_dtls_cid_worker(ctxs[0]->dtls) < 0) return 1;
  for (size_t i = 0; i < n; i++)
    if (coap_dtls_cid_worker(ctxs[i]->dtls) != (int)i) return 0;
  return 1;
}

long coap_contexts_import_sessions(coap_context_t *const *ctxs, size_t n, const uint8_t *key,
                                   size_t key_len, uint64_t node_id, uint64_t now_ms,
                                   uint64_t max_age_ms, uint64_t *last_sealed_ms, const uint8_t *in,
                                   size_t len, const char **why) {
  const char *ignored;
  if (!why) why = &ignored;
  *why = "invalid argument";
  if (!contexts_valid(ctxs, n) || !key || !in) return COAP_E_INVALID_ARG;
  *why = "no DTLS configuration";
  for (size_t i = 0; i < n; i++)
    if (!ctxs[i]->dtls) return COAP_E_STATE;
  *why = "the workers' contexts are not in the order of their Connection ID worker index";
  if (!workers_in_order(ctxs, n)) return COAP_E_INVALID_ARG;
  uint8_t *plain = malloc(len ? len : 1);
  *why = "out of memory";
  if (!plain) return COAP_E_NOMEM;
  uint64_t sealed_at = 0;
  long got = coap_dtls_state_open(key, key_len, node_id, now_ms, max_age_ms, in, len, plain, len,
                                  &sealed_at);
  /* Sequence numbers go on from where the buffer left them: a buffer
   * taken twice would use them twice (docs/security.md). */
  if (got >= 0 && last_sealed_ms && sealed_at <= *last_sealed_ms) got = COAP_DTLS_STATE_REPLAYED;
  unsigned version = 0, was = 0;
  if (got >= 0 && coap_dtls_state_format(in, len, &version, &was) < 0)
    got = COAP_DTLS_STATE_MALFORMED;
  long rc = COAP_E_INVALID_ARG;
  import_tally_t tally = {0};
  if (got < 0) {
    *why = coap_dtls_state_refusal(got);
  } else if (import_entries(ctxs, n, version, was, plain, (size_t)got, &tally) < 0) {
    *why = "malformed inside its seal";
  } else {
    *why = "accepted";
    rc = (long)tally.carried;
    if (last_sealed_ms) *last_sealed_ms = sealed_at;
    log_import(ctxs, n, was, &tally);
  }
  coap_memzero(plain, len);
  free(plain);
  return rc;
}

long coap_context_import_sessions(coap_context_t *ctx, const uint8_t *key, size_t key_len,
                                  uint64_t node_id, uint64_t now_ms, uint64_t max_age_ms,
                                  uint64_t *last_sealed_ms, const uint8_t *in, size_t len,
                                  const char **why) {
  if (!ctx) {
    if (why) *why = "invalid argument";
    return COAP_E_INVALID_ARG;
  }
  return coap_contexts_import_sessions(&ctx, 1, key, key_len, node_id, now_ms, max_age_ms,
                                       last_sealed_ms, in, len, why);
}
