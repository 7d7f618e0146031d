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
 * counted and logged, and its client makes a new handshake.
 *
 * Inside the seal (format 3): the entries' length (4 bytes), the entries
 * (secure.c), then for each entry in the same order what its peer
 * carries besides the keys (write_extra, read_extra): the next message ID, the
 * local address its datagrams came to, and its Observe relations
 * (observe.c), so that an observer keeps being notified on its session
 * with no handshake and no new registration. Formats 1 and 2 are read
 * as before (no relations in them). */
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coaps/dtls.h"
#include "common/util.h"
#include "context/context_internal.h"
#include "security/dtls_state.h"

/* Sequence numbers skipped at a save: a second line of defence behind
 * retiring the keys (docs/security.md). */
#define RESTART_SEQ_MARGIN 1024
#define WORKERS_MAX 255 /* the worker count is one byte of the envelope */
#define ENTRIES_LEN 4   /* format 3: the entries' length first */
/* A peer's extra, before its relations: next message ID (2), local
 * address family (1: 0, 4 or 6), address (16), IPv6 scope (4), and the
 * relations' count (2, written by coap_observe_export). */
#define EXTRA_FIXED 23
#define EXTRA_BOUND (EXTRA_FIXED + 2)

static void put_u32(uint8_t *p, size_t v) {
  for (int i = 3; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

static size_t get_u32(const uint8_t *p) {
  return (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
}

static int contexts_valid(coap_context_t *const *ctxs, size_t n) {
  if (!ctxs || n < 1 || n > WORKERS_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if (!ctxs[i]) return 0;
  return 1;
}

/* What was left behind, in words, on the first context's log. */
static void log_left(coap_context_t *const *ctxs, size_t n, const coap_sessions_tally_t *t,
                     size_t relations) {
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
  if (relations)
    coap_logf(log, COAP_LOG_INFO, NULL,
              "%zu observe relation(s) carried with their sessions (notifications go on "
              "without a new registration)",
              relations);
  if (observers > relations)
    coap_logf(log, COAP_LOG_WARNING, NULL,
              "%llu observe relation(s) not carried (over coap://, or their session is not "
              "carried): their clients must register again (coaps observe does when Max-Age "
              "passes without a notification)",
              (unsigned long long)(observers - relations));
  if (block_bytes)
    coap_logf(log, COAP_LOG_WARNING, NULL,
              "%llu bytes of block-wise transfers under way not carried: those transfers "
              "fail and are started again by their clients",
              (unsigned long long)block_bytes);
}

/* The DTLS endpoint of |ctx| on |port| and, on it, the peer at |addr|. */
static coap_endpoint_t *dtls_server_endpoint(coap_context_t *ctx, uint16_t port) {
  for (coap_endpoint_t *ep = ctx->endpoints; ep; ep = ep->next)
    if (ep->proto == COAP_PROTO_DTLS && !ep->client && coap_address_get_port(&ep->local) == port)
      return ep;
  return NULL;
}

static coap_peer_t *entry_peer(coap_context_t *ctx, const coap_saved_entry_t *e) {
  coap_endpoint_t *ep = dtls_server_endpoint(ctx, e->port);
  return ep ? coap_peer_table_find(&ctx->peers, ep, &e->addr) : NULL;
}

/* |peer|'s extra (EXTRA_FIXED bytes, then its relations): the length, or
 * -1 when |cap| is too small. |*relations| counts what it carries. */
static long write_extra(coap_context_t *ctx, coap_peer_t *peer, uint8_t *out, size_t cap,
                        size_t *relations) {
  if (cap < EXTRA_FIXED) return -1;
  memset(out, 0, EXTRA_FIXED);
  coap_address_t local;
  if (peer) {
    out[0] = (uint8_t)(peer->exch.next_mid >> 8);
    out[1] = (uint8_t)peer->exch.next_mid;
  }
  if (peer && coap_peer_get_local(peer, 0, &local)) {
    int v6 = local.addr.sa.sa_family == AF_INET6;
    out[2] = v6 ? 6 : 4;
    memcpy(out + 3,
           v6 ? (const void *)&local.addr.sin6.sin6_addr : (const void *)&local.addr.sin.sin_addr,
           v6 ? 16 : 4);
    if (v6) put_u32(out + 19, local.addr.sin6.sin6_scope_id);
  }
  size_t n = 0;
  long rel = peer ? coap_observe_export(&ctx->server, peer, peer->security, out + EXTRA_FIXED,
                                        cap - EXTRA_FIXED, &n)
             : cap - EXTRA_FIXED >= 2 ? (out[EXTRA_FIXED] = out[EXTRA_FIXED + 1] = 0, 2)
                                      : -1;
  if (rel < 0) return -1;
  *relations += n;
  return EXTRA_FIXED + rel;
}

/* The extras of the entries of worker |ctx| at [|at|, |end|) of |entries|
 * into |out|: the length, or -1. */
static long write_extras(coap_context_t *ctx, const uint8_t *entries, size_t at, size_t end,
                         uint8_t *out, size_t cap, size_t *relations) {
  size_t used = 0;
  while (at < end) {
    coap_saved_entry_t e;
    if (coap_secure_next_entry(entries, end, &at, 1, &e) < 0) return -1;
    long k = write_extra(ctx, entry_peer(ctx, &e), out + used, cap - used, relations);
    if (k < 0) return -1;
    used += (size_t)k;
  }
  return (long)used;
}

/* Room for the extras of |ctx|'s peers. */
static size_t extras_bound(coap_context_t *ctx) {
  return ctx->peers.count * EXTRA_BOUND + coap_observe_export_bound(&ctx->server);
}

/* Every worker's entries, then their extras, into |plain| (format 3):
 * the length, or a negative error. */
static long export_plain(coap_context_t *const *ctxs, size_t n, uint8_t *plain, size_t bound,
                         size_t extra_bound, coap_sessions_tally_t *tally, size_t *relations) {
  uint8_t *extras = malloc(extra_bound ? extra_bound : 1);
  if (!extras) return COAP_E_NOMEM;
  uint8_t *entries = plain + ENTRIES_LEN;
  long len = 0, extra_len = 0;
  for (size_t i = 0; i < n && len >= 0; i++) {
    long part = coap_secure_export(ctxs[i], RESTART_SEQ_MARGIN, (uint8_t)i, entries + len,
                                   bound - (size_t)len, tally);
    if (part < 0) {
      len = part;
      break;
    }
    long x = write_extras(ctxs[i], entries, (size_t)len, (size_t)(len + part), extras + extra_len,
                          extra_bound - (size_t)extra_len, relations);
    if (x < 0) {
      len = COAP_E_BUFFER_TOO_SMALL;
      break;
    }
    len += part;
    extra_len += x;
  }
  if (len >= 0) {
    put_u32(plain, (size_t)len);
    memcpy(entries + len, extras, (size_t)extra_len);
    len += ENTRIES_LEN + extra_len;
  }
  coap_memzero(extras, extra_bound);
  free(extras);
  return len;
}

/* Every session of |ctxs| written and sealed into |out|, their keys held
 * (coap_secure_export_settle ends the hold); on a failure none is held and
 * |out| is cleared. */
static long export_sealed(coap_context_t *const *ctxs, size_t n, const uint8_t *key, size_t key_len,
                          uint64_t node_id, uint64_t now_ms, uint8_t *out, size_t cap,
                          size_t *carried) {
  if (!contexts_valid(ctxs, n) || !key) return COAP_E_INVALID_ARG;
  if (key_len != 16 && key_len != 32) return COAP_E_INVALID_ARG;
  size_t bound = 0, extra_bound = 0;
  for (size_t i = 0; i < n; i++) {
    if (!ctxs[i]->dtls) return COAP_E_STATE;
    bound += coap_secure_export_bound(ctxs[i]);
    extra_bound += extras_bound(ctxs[i]);
  }
  size_t total = ENTRIES_LEN + bound + extra_bound;
  if (!out) return (long)(total + COAP_DTLS_STATE_OVERHEAD);
  for (size_t i = 0; i < n; i++)
    if (coap_secure_export_held(ctxs[i])) return COAP_E_STATE; /* the last one not ended */
  uint8_t *plain = malloc(total);
  if (!plain) return COAP_E_NOMEM;
  coap_sessions_tally_t tally = {0};
  size_t relations = 0;
  long len = export_plain(ctxs, n, plain, bound, extra_bound, &tally, &relations);
  if (len >= 0) {
    len = coap_dtls_state_seal(key, key_len, node_id, now_ms, (unsigned)n, ctxs[0]->cfg.rand,
                               ctxs[0]->cfg.rand_user, plain, (size_t)len, out, cap);
    if (len < 0) len = COAP_E_BUFFER_TOO_SMALL;
  }
  coap_memzero(plain, total);
  free(plain);
  if (len < 0) {
    /* Nothing handed back: every session goes on as before. */
    for (size_t i = 0; i < n; i++) coap_secure_export_settle(ctxs[i], 0);
    coap_memzero(out, cap);
    coap_logf(&ctxs[0]->log, COAP_LOG_WARNING, NULL,
              "DTLS sessions not saved for a restart (%s): they stay with this process",
              coap_strerror((int)len));
    return len;
  }
  coap_logf(&ctxs[0]->log, COAP_LOG_INFO, NULL,
            "%zu DTLS session(s) of %zu worker(s) saved for a restart", tally.carried, n);
  log_left(ctxs, n, &tally, relations);
  if (carried) *carried = tally.carried;
  return len;
}

long coap_contexts_export_sessions(coap_context_t *const *ctxs, size_t n, const uint8_t *key,
                                   size_t key_len, uint64_t node_id, uint64_t now_ms, uint8_t *out,
                                   size_t cap, size_t *carried) {
  long len = export_sealed(ctxs, n, key, key_len, node_id, now_ms, out, cap, carried);
  /* Handed back whole: the caller has it, the sessions are its now. */
  if (len >= 0 && out)
    for (size_t i = 0; i < n; i++) coap_secure_export_settle(ctxs[i], 1);
  return len;
}

long coap_contexts_export_sessions_begin(coap_context_t *const *ctxs, size_t n, const uint8_t *key,
                                         size_t key_len, uint64_t node_id, uint64_t now_ms,
                                         uint8_t *out, size_t cap, size_t *carried) {
  if (!out) return COAP_E_INVALID_ARG;
  return export_sealed(ctxs, n, key, key_len, node_id, now_ms, out, cap, carried);
}

int coap_contexts_export_sessions_end(coap_context_t *const *ctxs, size_t n, int stored) {
  if (!contexts_valid(ctxs, n)) return COAP_E_INVALID_ARG;
  for (size_t i = 0; i < n; i++) coap_secure_export_settle(ctxs[i], stored != 0);
  if (!stored)
    coap_logf(&ctxs[0]->log, COAP_LOG_WARNING, NULL,
              "the saved DTLS sessions were not stored: they stay with this process (end "
              "them with a close_notify, or go on serving)");
  return 0;
}

long coap_context_export_sessions(coap_context_t *ctx, const uint8_t *key, size_t key_len,
                                  uint64_t node_id, uint64_t now_ms, uint8_t *out, size_t cap,
                                  size_t *carried) {
  if (!ctx) return COAP_E_INVALID_ARG;
  return coap_contexts_export_sessions(&ctx, 1, key, key_len, node_id, now_ms, out, cap, carried);
}

static int local_is_wildcard(const coap_address_t *a) {
  if (a->addr.sa.sa_family == AF_INET) return a->addr.sin.sin_addr.s_addr == htonl(INADDR_ANY);
  if (a->addr.sa.sa_family == AF_INET6)
    return memcmp(&a->addr.sin6.sin6_addr, &in6addr_any, sizeof in6addr_any) == 0;
  return 0;
}

/* Why the sessions of a buffer did not all land. */
typedef struct import_tally {
  coap_obs_import_tally_t obs; /* and their Observe relations */
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

/* What became of the Observe relations, one line per outcome. */
static void log_relations(const coap_logger_t *log, const coap_obs_import_tally_t *o) {
  if (o->carried)
    coap_logf(log, COAP_LOG_INFO, NULL,
              "%zu observe relation(s) taken over: their observers are notified on their "
              "sessions as before",
              o->carried);
  static const struct {
    size_t offset;
    const char *what;
  } dropped[] = {
      {offsetof(coap_obs_import_tally_t, no_session),
       "their session was not taken over (the client registers again after its new "
       "handshake)"},
      {offsetof(coap_obs_import_tally_t, resource_gone),
       "the resource is gone: each observer was sent 4.04, which ends the relation"},
      {offsetof(coap_obs_import_tally_t, not_observable),
       "the resource is no longer observable: each observer was sent its state without "
       "Observe, which ends the relation"},
      {offsetof(coap_obs_import_tally_t, over_limit),
       "over max_observers or max_observers_per_peer: each observer was sent the state "
       "without Observe, which ends the relation (raise the limits)"},
      {offsetof(coap_obs_import_tally_t, seq_apart),
       "their Observe numbers lie too far from the others of their resource for one next "
       "number to be newer to all (workers merged): ended with the state without Observe"},
      {offsetof(coap_obs_import_tally_t, duplicate), "the same token on the same resource twice"},
      {offsetof(coap_obs_import_tally_t, no_memory),
       "out of memory (the client registers again when Max-Age passes)"},
  };
  for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++) {
    size_t k = *(const size_t *)((const char *)o + dropped[i].offset);
    if (k)
      coap_logf(log, COAP_LOG_WARNING, NULL, "%zu observe relation(s) not taken over: %s", k,
                dropped[i].what);
  }
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
  log_relations(log, &t->obs);
}

/* The extra at |*at| of |plain| for an entry whose peer is |peer| in
 * |ctx| (NULL: not taken over, read only): 0, or -1 when malformed. */
static int read_extra(coap_context_t *ctx, coap_peer_t *peer, const uint8_t *plain, size_t len,
                      size_t *at, coap_obs_import_tally_t *t) {
  if (*at > len || len - *at < EXTRA_FIXED) return -1;
  const uint8_t *p = plain + *at;
  if (p[2] != 0 && p[2] != 4 && p[2] != 6) return -1;
  if (peer) {
    peer->exch.next_mid = (uint16_t)(p[0] << 8 | p[1]);
    /* Answers leave from the address the client wrote to (a wildcard
     * socket); an endpoint bound to one address has no choice. */
    if (p[2] && local_is_wildcard(&peer->ep->local)) {
      coap_address_t local;
      memset(&local, 0, sizeof local);
      if (p[2] == 4) {
        local.addr.sin.sin_family = AF_INET;
        memcpy(&local.addr.sin.sin_addr, p + 3, 4);
        local.size = sizeof local.addr.sin;
      } else {
        local.addr.sin6.sin6_family = AF_INET6;
        memcpy(&local.addr.sin6.sin6_addr, p + 3, 16);
        local.addr.sin6.sin6_scope_id = (uint32_t)get_u32(p + 19);
        local.size = sizeof local.addr.sin6;
      }
      coap_peer_set_local(peer, &local);
    }
  }
  *at += EXTRA_FIXED;
  return coap_observe_import(&ctx->server, peer, peer ? peer->security : NULL, COAP_PROTO_DTLS,
                             plain, len, at, t) < 0
             ? -1
             : 0;
}

/* Where the entries and (format 3) their extras lie in an opened buffer:
 * 0, or COAP_E_INVALID_ARG. */
static int entries_span(unsigned version, const uint8_t *plain, size_t len, size_t *at,
                        size_t *end) {
  *at = 0;
  *end = len;
  if (version < 3) return 0;
  if (len < ENTRIES_LEN || get_u32(plain) > len - ENTRIES_LEN) return COAP_E_INVALID_ARG;
  *at = ENTRIES_LEN;
  *end = ENTRIES_LEN + get_u32(plain);
  return 0;
}

/* Is every entry of an opened buffer, its session bytes and (format 3)
 * its extra well formed, with nothing left over? Read only: 0, or
 * COAP_E_INVALID_ARG (COAP_E_NOMEM). */
static int entries_well_formed(coap_context_t *ctx, unsigned version, const uint8_t *plain,
                               size_t len) {
  size_t at, end;
  if (entries_span(version, plain, len, &at, &end) < 0) return COAP_E_INVALID_ARG;
  size_t extra = end;
  coap_obs_import_tally_t ignored = {0};
  while (at < end) {
    coap_saved_entry_t e;
    if (coap_secure_next_entry(plain, end, &at, version >= 2, &e) < 0) return COAP_E_INVALID_ARG;
    int rc = coap_dtls_saved_session_check(e.session, e.session_len);
    if (rc < 0) return rc;
    if (version >= 3 && read_extra(ctx, NULL, plain, len, &extra, &ignored) < 0)
      return COAP_E_INVALID_ARG;
  }
  return version >= 3 && extra != len ? COAP_E_INVALID_ARG : 0;
}

/* The entries of an opened buffer into |ctxs|, with (format 3) their
 * peers' extras: all or nothing, so every byte is checked first
 * (entries_well_formed); 0 or COAP_E_INVALID_ARG (nothing taken). */
static int import_entries(coap_context_t *const *ctxs, size_t n, unsigned version, unsigned was,
                          const uint8_t *plain, size_t len, import_tally_t *t) {
  int rc = entries_well_formed(ctxs[0], version, plain, len);
  if (rc < 0) return rc;
  int steered = n > 1 && coap_dtls_cid_worker(ctxs[0]->dtls) == 0;
  size_t at, end;
  (void)entries_span(version, plain, len, &at, &end);
  size_t extra = end;
  for (size_t i = 0; i < n; i++) coap_observe_import_begin(&ctxs[i]->server);
  while (at < end) {
    coap_saved_entry_t e;
    (void)coap_secure_next_entry(plain, end, &at, version >= 2, &e);
    long w = entry_worker(&e, was, n, steered, t);
    coap_peer_t *peer = NULL;
    if (w >= 0 && coap_secure_import_entry(ctxs[w], &e, coap_context_now(ctxs[w])) == 0) {
      t->carried++;
      t->to_worker[w]++;
      peer = entry_peer(ctxs[w], &e);
    } else if (w >= 0) {
      t->failed++;
    }
    if (version >= 3) (void)read_extra(ctxs[w >= 0 ? w : 0], peer, plain, len, &extra, &t->obs);
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
  int authentic = got >= 0 || got == COAP_DTLS_STATE_STALE || got == COAP_DTLS_STATE_OTHER_NODE;
  if (got >= 0 && last_sealed_ms && sealed_at <= *last_sealed_ms) got = COAP_DTLS_STATE_REPLAYED;
  /* Once its seal verified, a buffer is never to be taken again, whatever
   * follows (refused, or malformed inside): the caller records it. */
  if (authentic && last_sealed_ms && sealed_at > *last_sealed_ms) *last_sealed_ms = sealed_at;
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
