/* coaps:// in the context: DTLS endpoints, the stateless cookie before any
 * peer state, one session per peer with its timer in the context's heap,
 * requests held back until the handshake completes, and handshake failures
 * handed to the waiting requests with their reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "coaps/credentials.h"
#include "client/client.h"
#include "common/diag.h"
#include "common/util.h"
#include "context/context_internal.h"

/* Requests a client may queue while its handshake is running. */
#define PENDING_MAX 16
/* A full handshake with a cookie takes the client 3 flights (hello, hello
 * with the cookie, Finished); more means some were resent: loss. */
#define CLEAN_HANDSHAKE_FLIGHTS 3

typedef struct peer_dtls {
  coap_context_t *ctx;
  coap_peer_t *peer;
  coap_dtls_session_t *session;
  coap_timer_t timer;
  int counted;      /* a server handshake counted as in progress */
  int mode_counted; /* 1 + the coap_dtls_mode_t counted in dtls_sessions_by_mode, 0: none */
  /* Client: detecting a server that lost our session (it restarted). */
  uint64_t unanswered_since; /* first send of a message that wants an answer
                              * since the peer last spoke, 0: none */
  unsigned sends_unanswered; /* sends after that one, in the same silence */
  int reconnected;           /* a fresh handshake was tried for this silence */
  uint64_t last_rx, last_tx; /* when the peer last sent us anything, and we it */
  uint64_t woke_at;          /* our first send after both were quiet (EARLY_IDLE) */
  uint64_t loss_at;          /* when the path last showed loss, 0: never */
  unsigned clean_answers;    /* answers on this session without a resend, since */
  /* An early handshake beside the established session (see
   * start_beside): the old session, kept for answers still coming on it
   * until the new one is up; set while a datagram is fed to it, and when
   * that gave data (the old path works: loss, not a move). No early one
   * again before early_hold_until. */
  coap_dtls_session_t *old;
  uint8_t feeding_old, old_spoke;
  uint64_t early_hold_until;
  int probed;         /* a CoAP ping went to the port (probe_plain_coap) */
  uint16_t probe_mid; /* its message ID */
  int carried;        /* written for a restart (coap_secure_export): ours no more */
  int export_held;    /* written, its keys held until coap_secure_export_settle */
  /* Client: ICMP port-unreachable errors since the server last sent
   * anything (a restart: coap_secure_unreachable), and when the first
   * came (0: none). */
  unsigned unreachable_seen;
  uint64_t unreachable_since;
  /* The first record of each datagram we sent it, by epoch (the latest
   * and the one before: a flight may start in the old one): the highest
   * sequence number, for vetting the record an ICMP error quotes
   * (coap_secure_sent). */
  struct sent_epoch {
    uint64_t seq;
    uint16_t epoch;
    uint8_t used;
  } sent[2];
  /* Client: the verdict of a handshake that called the key wrong from
   * what the network showed, while a second handshake checks it (see
   * confirm_key_mismatch); it stands unless that one completes by
   * confirm_by. */
  coap_diag_t *suspect;
  uint64_t confirm_by;
  char *server_name; /* client: for SNI and the name check */
  /* Client: datagrams held back until the handshake completes (a server
   * never has any: it answers established sessions only). */
  struct pending *pending, **pending_tail;
  size_t n_pending;
  /* Server: while its handshake is in progress, its place in the
   * context's list of half-open handshakes, oldest first. */
  struct peer_dtls *half_open_older, *half_open_newer;
  /* Server, the same while its handshake is in progress: its hello came
   * with a valid cookie (the address is the client's), and it took a place
   * beyond its host's share (make_room_for_handshake). */
  uint8_t verified, borrowed;
  /* Server, Connection ID (RFC 9146): its entry in the context's CID map;
   * while a datagram is handled, where it came from (a record that
   * authenticates and is newer than any before moves the peer there);
   * after a move, the bytes received from and sent to the new address
   * until the peer answers the CoAP ping sent there (at most 3 times as
   * many sent). */
  coap_cid_entry_t cid;
  const coap_address_t *rx_from, *rx_local;
  size_t rx_len;
  uint64_t unconfirmed_in, unconfirmed_out;
  uint16_t ping_mid;
  uint8_t unconfirmed;
} peer_dtls_t;

typedef struct pending {
  struct pending *next;
  size_t len;
  uint8_t data[];
} pending_t;

/* ---- configuration ---- */

coap_dtls_context_t *coap_dtls_new_context(coap_context_t *ctx) {
  coap_dtls_context_t *d = coap_dtls_context_new();
  if (!d || !ctx) return d;
  coap_dtls_context_set_logger(d, &ctx->log);
  if (ctx->dtls_spare) coap_dtls_context_free(ctx->dtls_spare);
  ctx->dtls_spare = d;
  return d;
}

int coap_context_set_dtls_context(coap_context_t *ctx, coap_dtls_context_t *d) {
  if (!ctx || !d) return COAP_E_INVALID_ARG;
  if (d == ctx->dtls) return 0;
  if (d == ctx->dtls_spare) ctx->dtls_spare = NULL;
  if (ctx->dtls) coap_dtls_context_free(ctx->dtls);
  ctx->dtls = d;
  coap_dtls_context_set_logger(d, &ctx->log);
  return 0;
}

coap_dtls_context_t *coap_context_dtls(coap_context_t *ctx) {
  return ctx ? ctx->dtls : NULL;
}

int coap_context_dtls_ready(const coap_context_t *ctx) {
  return coap_dtls_can_serve(ctx->dtls);
}

const char *coap_context_last_error(const coap_context_t *ctx) {
  return ctx ? ctx->last_error : "";
}

/* ---- per-peer session ---- */

/* The session's timer at its next deadline. Returns 0, or COAP_E_NOMEM
 * when it was not armed and the heap could not grow (see reserve_timer):
 * then nothing would ever end the handshake, and the caller ends it. */
static int arm_timer(peer_dtls_t *pd) {
  uint64_t t = pd->session ? coap_dtls_session_next_timeout(pd->session) : UINT64_MAX;
  if (pd->suspect && pd->confirm_by < t) t = pd->confirm_by;
  if (t == UINT64_MAX) {
    coap_timer_cancel(&pd->ctx->timers, &pd->timer);
    return 0;
  }
  return coap_timer_arm(&pd->ctx->timers, &pd->timer, t);
}

/* Before a handshake starts (a first flight goes out, or a hello is
 * taken in), its timer takes its place in the heap: moving an armed timer
 * cannot fail, so once this succeeded every later arm_timer does, and a
 * heap that cannot grow (out of memory) refuses the handshake before it
 * exists rather than leaving one that never times out. Armed for |now|:
 * fired before its real deadline is set, it finds nothing to do. Returns
 * 0 or COAP_E_NOMEM. */
static int reserve_timer(peer_dtls_t *pd, uint64_t now) {
  if (coap_timer_armed(&pd->timer)) return 0;
  return coap_timer_arm(&pd->ctx->timers, &pd->timer, now);
}

static void drop_pending(peer_dtls_t *pd) {
  while (pd->pending) {
    pending_t *next = pd->pending->next;
    free(pd->pending);
    pd->pending = next;
  }
  pd->pending_tail = &pd->pending;
  pd->n_pending = 0;
}

static void half_open_append(peer_dtls_t *pd) {
  coap_context_t *ctx = pd->ctx;
  pd->counted = 1;
  ctx->handshakes_in_progress++;
  pd->half_open_older = ctx->half_open_newest;
  pd->half_open_newer = NULL;
  if (ctx->half_open_newest)
    ctx->half_open_newest->half_open_newer = pd;
  else
    ctx->half_open_oldest = pd;
  ctx->half_open_newest = pd;
}

static void handshake_done(peer_dtls_t *pd) {
  if (!pd->counted) return;
  coap_context_t *ctx = pd->ctx;
  ctx->handshakes_in_progress--;
  if (pd->half_open_older)
    pd->half_open_older->half_open_newer = pd->half_open_newer;
  else
    ctx->half_open_oldest = pd->half_open_newer;
  if (pd->half_open_newer)
    pd->half_open_newer->half_open_older = pd->half_open_older;
  else
    ctx->half_open_newest = pd->half_open_older;
  pd->half_open_older = pd->half_open_newer = NULL;
  pd->counted = 0;
}

/* The established session leaves the per-mode count of sessions. */
static void session_uncount(peer_dtls_t *pd) {
  if (pd->mode_counted) pd->ctx->dtls_sessions_by_mode[pd->mode_counted - 1]--;
  pd->mode_counted = 0;
}

/* A new handshake beside a server's established session (a ClientHello
 * with a valid cookie came from its peer's address): the established
 * session is pd->old and keeps working (its records are fed to it, our
 * answers go out on it) until the new one, pd->session, completes; then
 * it is replaced (server_replace_old). A new handshake that fails, times
 * out or is evicted costs the old one nothing (end_server_beside). It
 * counts among the half-open handshakes, bounded and evicted like any. */
static int server_beside(const peer_dtls_t *pd) {
  return pd->old && !coap_dtls_session_is_client(pd->old);
}

/* The new handshake beside the old session ends without completing: the
 * old session goes on as before. */
static void end_server_beside(peer_dtls_t *pd) {
  handshake_done(pd);
  coap_dtls_session_free(pd->session);
  pd->session = pd->old;
  pd->old = NULL;
  arm_timer(pd); /* established: cancelled */
}

void coap_secure_peer_free(coap_context_t *ctx, coap_peer_t *peer, int send_close) {
  peer_dtls_t *pd = peer->security;
  if (!pd) return;
  session_uncount(pd);
  coap_cid_map_remove(&ctx->cid_map, &pd->cid);
  /* Block1 bodies and kept answers belong to the session that carried
   * them; a later session (a pointer that may even be the same) must not
   * continue them. */
  if (!coap_dtls_session_is_client(pd->session)) coap_server_peer_gone(&ctx->server, peer);
  handshake_done(pd);
  coap_timer_cancel(&ctx->timers, &pd->timer);
  if (send_close) coap_dtls_session_close(pd->session);
  coap_dtls_session_free(pd->session);
  coap_dtls_session_free(pd->old);
  drop_pending(pd);
  free(pd->suspect);
  free(pd->server_name);
  free(pd);
  peer->security = NULL;
}

/* ---- ending sessions by who the peer is (sessions_end.c) ---- */

int coap_secure_peer_info(const coap_peer_t *peer, coap_session_info_t *info, char *fp) {
  const peer_dtls_t *pd = peer->security;
  if (!pd || !pd->session || pd->carried) return -1;
  /* Beside a new handshake, the session is the established one. */
  const coap_dtls_session_t *s = server_beside(pd) ? pd->old : pd->session;
  const char *id = coap_dtls_session_psk_identity(s);
  const uint8_t *h = coap_dtls_session_peer_rpk_sha256(s);
  info->peer = peer->name;
  info->psk_identity = id && *id ? id : NULL;
  info->rpk_fingerprint = NULL;
  if (h) {
    size_t n = (size_t)snprintf(fp, 112, "sha256");
    for (int i = 0; i < 32; i++) n += (size_t)snprintf(fp + n, 112 - n, ":%02x", h[i]);
    info->rpk_fingerprint = fp;
  }
  info->established = coap_dtls_session_established(s);
  info->client = coap_dtls_session_is_client(pd->session);
  return 0;
}

int coap_secure_peer_revoked(const coap_peer_t *peer, const coap_dtls_context_t *d) {
  const peer_dtls_t *pd = peer->security;
  if (!pd || !pd->session || coap_dtls_session_is_client(pd->session)) return 0;
  const coap_dtls_session_t *s = server_beside(pd) ? pd->old : pd->session;
  const char *id = coap_dtls_session_psk_identity(s);
  if (id && *id && !coap_dtls_knows_psk_identity(d, id)) return 1;
  const uint8_t *h = coap_dtls_session_peer_rpk_sha256(s);
  return h && !coap_dtls_rpk_trusted_sha256(d, h);
}

static void keep_report(peer_dtls_t *pd) {
  const coap_handshake_report_t *rep = coap_dtls_session_report(pd->session);
  if (!rep) return;
  pd->ctx->last_report = *rep;
  pd->ctx->has_report = 1;
}

/* Keep, count and log a session's failure with who the peer said it was
 * and the mode it got to; |counted|: a failed handshake (per mode). */
static void note_session_failure(peer_dtls_t *pd, const coap_diag_t *g, int counted, uint64_t now) {
  char identity[160];
  coap_dtls_session_peer_identity(pd->session, identity, sizeof identity);
  int mode = coap_dtls_session_mode(pd->session);
  if (counted) pd->ctx->dtls_failures_by_mode[mode]++;
  coap_context_note_failure_of(pd->ctx, g, pd->peer->name, identity, mode, now);
}

static void session_ended_with(peer_dtls_t *pd, const coap_diag_t *g, uint64_t now);
static void end_unreachable(peer_dtls_t *pd, uint64_t now);

/* A wrong key inferred from the network (the server went on as if our
 * Finished had not come) looks the same as every copy of our Finished
 * lost, and as our address changing in the middle of the handshake (a
 * NAT rebinding: the server drops our Finished as a stranger's and
 * resends its flight to the old address, which may still reach us). A
 * second handshake, from wherever we are now, tells them apart: it
 * completes on a moved or merely lossy path, and it cannot on a wrong
 * key. It is given CONFIRM_ACK_TIMEOUTS ACK timeouts, not a whole
 * handshake timeout: a server that keeps the first handshake for our
 * address may not answer a new hello from it at all (libcoap's), so
 * waiting for its own verdict doubled the time to name a real wrong key. */
#define CONFIRM_ACK_TIMEOUTS 3
static int inferred_key_mismatch(const coap_diag_t *g) {
  return g && g->cause == COAP_CAUSE_PSK_KEY_MISMATCH && g->detected_by == COAP_DETECTED_NETWORK;
}

/* The server's decrypt_error for our Finished says its keys differ from
 * ours, which a different PSK makes, and so does a server that is not in
 * the handshake we are in (only possible when a copy of one of our hellos
 * could have started another there: a hello resent, or a server flight
 * that came twice; after a clean exchange the alert is taken as it is,
 * so a wrong key costs one handshake on each side): one that answered our new hello with an
 * unfinished older handshake's flight (ours did: cluster_failover under
 * load, 1,000 clients behind one address, every key right), or that lost
 * our handshake and began another from a late copy of our hello (without
 * a Connection ID our Finished then meets keys it was not made with). A
 * second handshake tells them apart as well, and
 * here it is waited for to its own end: this server does answer, and a
 * wrong key gets the same alert again at once, while a second silence on
 * a busy server must not turn into "wrong key". */
static int alerted_key_mismatch(const coap_diag_t *g) {
  return g && g->cause == COAP_CAUSE_PSK_KEY_MISMATCH && g->detected_by == COAP_DETECTED_PEER_ALERT;
}

/* Returns 1 when the session is gone (freed): checking, or failed. */
static int confirm_key_mismatch(peer_dtls_t *pd, const coap_diag_t *g, uint64_t now) {
  coap_context_t *ctx = pd->ctx;
  coap_peer_t *peer = pd->peer;
  coap_diag_t *suspect = malloc(sizeof(*suspect));
  char *name = strdup(pd->server_name ? pd->server_name : "");
  if (!suspect || !name) {
    free(suspect);
    free(name);
    return 0;
  }
  *suspect = *g;
  if (alerted_key_mismatch(g))
    coap_logf(&ctx->log, COAP_LOG_INFO, peer->name,
              "the server could not decrypt our Finished: a wrong key, or a server that lost "
              "our handshake and began another from a late copy of our hello; checking with "
              "one more handshake");
  else
    coap_logf(&ctx->log, COAP_LOG_INFO, peer->name,
              "the server ignored our Finished: a wrong key, or our address changed in the "
              "handshake (NAT rebinding), or loss; checking with one more handshake");
  /* The requests held back go out as soon as the second one is up. */
  pending_t *held = pd->pending;
  size_t n_held = pd->n_pending;
  pd->pending = NULL;
  pd->n_pending = 0;
  coap_secure_peer_free(ctx, peer, 0);
  coap_context_peer_to_fresh_endpoint(ctx, peer);
  int rc = coap_secure_connect(ctx, peer, name, now);
  free(name);
  if (rc < 0 || !(pd = peer->security)) {
    /* (Out of memory: the first verdict, unconfirmed, is all there is.) */
    while (held) {
      pending_t *next = held->next;
      free(held);
      held = next;
    }
    ctx->dtls_failures++;
    ctx->last_report.diag = *suspect;
    coap_context_note_failure_of(ctx, suspect, peer->name, "", COAP_DTLS_MODE_PSK, now);
    coap_context_fail_peer(ctx, peer, suspect->error, now);
    free(suspect);
    return 1;
  }
  pd->pending = held;
  pd->n_pending = n_held;
  while (*pd->pending_tail) pd->pending_tail = &(*pd->pending_tail)->next;
  pd->suspect = suspect;
  pd->confirm_by = alerted_key_mismatch(suspect)
                       ? UINT64_MAX
                       : now + CONFIRM_ACK_TIMEOUTS * ctx->cfg.tx.ack_timeout_ms;
  arm_timer(pd);
  return 1;
}

/* The second handshake did not complete: the first verdict stands,
 * unless this one found a cause of its own (a peer's alert, a local
 * check), which says more. */
static void confirmation_failed(peer_dtls_t *pd, const coap_diag_t *second, uint64_t now) {
  coap_diag_t g = *pd->suspect;
  if (second && alerted_key_mismatch(&g) && alerted_key_mismatch(second)) {
    g = *second;
    size_t used = strlen(g.explanation);
    snprintf(g.explanation + used, sizeof g.explanation - used,
             " (twice: a second handshake got the same answer)");
  } else if (second && alerted_key_mismatch(&g) && second->detected_by == COAP_DETECTED_NETWORK) {
    /* One decrypt_error, then silence: not evidence of a key either way. */
    g = *second;
    size_t used = strlen(g.explanation);
    snprintf(g.explanation + used, sizeof g.explanation - used,
             " (a second handshake, after the server could not decrypt our Finished in the "
             "first: a wrong key, or a server that lost the first handshake)");
  } else if (second && second->detected_by != COAP_DETECTED_NETWORK) {
    g = *second;
  } else if (second && second->cause != COAP_CAUSE_PSK_KEY_MISMATCH) {
    /* The server answered the second hello, then went silent: a busy or
     * lossy server, no evidence of a key. */
    g = *second;
    size_t used = strlen(g.explanation);
    snprintf(g.explanation + used, sizeof g.explanation - used,
             " (a second handshake, after the server went on as if our Finished had not come "
             "in the first: a wrong key, loss, or a busy server)");
  } else {
    size_t used = strlen(g.explanation);
    snprintf(g.explanation + used, sizeof g.explanation - used,
             "; a second handshake from our current address did not get through either "
             "(not loss, not a changed address)");
  }
  session_ended_with(pd, &g, now);
}

/* The session failed or closed: say why, end the peer's requests with the
 * reason, and forget the session (a new request starts a new handshake). */
static void session_ended(peer_dtls_t *pd, int err, uint64_t now) {
  coap_context_t *ctx = pd->ctx;
  coap_peer_t *peer = pd->peer;
  int client = coap_dtls_session_is_client(pd->session);
  if (server_beside(pd)) {
    /* The handshake beside the session failed: counted, and the session
     * goes on. */
    const coap_diag_t *sd = coap_dtls_session_diag(pd->session);
    coap_diag_t g;
    if (sd) {
      g = *sd;
    } else {
      coap_diag_begin(&g, COAP_CAUSE_PROTOCOL, COAP_STEP_NONE, COAP_DETECTED_LOCAL, err);
    }
    g.error = err;
    ctx->dtls_failures++;
    note_session_failure(pd, &g, 1, now);
    coap_logf(&ctx->log, COAP_LOG_INFO, peer->name,
              "the new handshake beside the session failed: the session goes on");
    end_server_beside(pd);
    return;
  }
  if (client && pd->suspect) {
    confirmation_failed(pd, coap_dtls_session_diag(pd->session), now);
    return;
  }
  const coap_diag_t *verdict = coap_dtls_session_diag(pd->session);
  if (client &&
      (inferred_key_mismatch(verdict) ||
       (alerted_key_mismatch(verdict) && !coap_dtls_session_clean_hellos(pd->session))) &&
      confirm_key_mismatch(pd, verdict, now))
    return;
  if (client && err == COAP_E_DTLS_CLOSED && !coap_exch_peer_idle(&peer->exch)) {
    /* The server closed (e.g. a graceful restart) while we still have
     * requests out: carry on over a new session; their retransmissions
     * go out on it. */
    char name[256];
    snprintf(name, sizeof name, "%s", pd->server_name ? pd->server_name : "");
    coap_logf(&ctx->log, COAP_LOG_INFO, peer->name,
              "server closed the DTLS session with requests outstanding: new handshake");
    coap_secure_peer_free(ctx, peer, 0);
    coap_context_peer_to_fresh_endpoint(ctx, peer);
    if (coap_secure_connect(ctx, peer, name, now) == 0) {
      coap_dtls_session_follows_old(((peer_dtls_t *)peer->security)->session);
      coap_exch_peer_restart(ctx->exch, &peer->exch, now, 1); /* new MIDs, full schedule */
      coap_client_observe_reconnected(&ctx->client, peer, now);
      return;
    }
  }
  coap_diag_t g;
  const coap_diag_t *sd = coap_dtls_session_diag(pd->session);
  if (sd) {
    g = *sd;
  } else {
    coap_diag_begin(&g, err == COAP_E_DTLS_CLOSED ? COAP_CAUSE_PEER_CLOSED : COAP_CAUSE_PROTOCOL,
                    COAP_STEP_NONE, COAP_DETECTED_LOCAL, err);
  }
  g.error = err;
  if (client) keep_report(pd);
  if (err == COAP_E_DTLS_CLOSED && coap_dtls_session_established(pd->session)) {
    /* An orderly end, not a failure. */
    coap_logf(&ctx->log, COAP_LOG_INFO, peer->name, "DTLS session closed by the peer");
  } else {
    if (err != COAP_E_DTLS_CLOSED) ctx->dtls_failures++;
    note_session_failure(pd, &g, err != COAP_E_DTLS_CLOSED, now);
  }
  coap_secure_peer_free(ctx, peer, 0);
  if (client) coap_context_fail_peer(ctx, peer, err, now);
}

/* End the handshake with a diagnosis made here (not by the session). */
static void session_ended_with(peer_dtls_t *pd, const coap_diag_t *g, uint64_t now) {
  coap_context_t *ctx = pd->ctx;
  coap_peer_t *peer = pd->peer;
  ctx->dtls_failures++;
  if (server_beside(pd)) {
    note_session_failure(pd, g, 1, now);
    end_server_beside(pd);
    return;
  }
  if (coap_dtls_session_is_client(pd->session)) {
    keep_report(pd);
    ctx->last_report.diag = *g;
  }
  note_session_failure(pd, g, 1, now);
  coap_secure_peer_free(ctx, peer, 0);
  coap_context_fail_peer(ctx, peer, g->error, now);
}

/* arm_timer, and when the timer cannot be armed (out of memory) the
 * handshake ends now with COAP_E_NOMEM: without its timer it would never
 * time out. Returns 0 or COAP_E_NOMEM (then |pd| is freed). */
static int arm_or_end(peer_dtls_t *pd, uint64_t now) {
  if (arm_timer(pd) == 0) return 0;
  coap_diag_t g;
  coap_diag_begin(&g, COAP_CAUSE_PROTOCOL, COAP_STEP_NONE, COAP_DETECTED_LOCAL, COAP_E_NOMEM);
  coap_diag_explain(&g,
                    "out of memory: the handshake's timer could not be armed, so it could "
                    "never time out; ended");
  g.flights = coap_dtls_session_flights(pd->session);
  g.elapsed_ms = coap_dtls_session_elapsed(pd->session, now);
  session_ended_with(pd, &g, now);
  return COAP_E_NOMEM;
}

/* ---- Connection ID: address moves (RFC 9146 §6) ---- */

/* An address a peer moved to gets at most this many times the bytes it
 * sent until the peer shows it receives there (QUIC's bound): a forged
 * move cannot make us flood a victim. */
#define UNCONFIRMED_FACTOR 3

/* Records to an address not confirmed yet: within the bound, or held
 * (like a loss; CoAP retransmits, and each datagram from there raises it). */
static int within_move_budget(peer_dtls_t *pd, size_t len) {
  if (!pd->unconfirmed) return 1;
  if (pd->unconfirmed_out + len > UNCONFIRMED_FACTOR * pd->unconfirmed_in) {
    coap_dtls_note_cid_held(pd->ctx->dtls);
    coap_logf(&pd->ctx->log, COAP_LOG_DEBUG, pd->peer->name,
              "%zu bytes held back: the new address sent %llu and has not answered our ping", len,
              (unsigned long long)pd->unconfirmed_in);
    return 0;
  }
  pd->unconfirmed_out += len;
  return 1;
}

/* A DTLS record header (RFC 6347 §4.1, RFC 9146 §4: the tls12_cid one
 * starts the same): content type, version, epoch, 48-bit sequence
 * number. 0 when |data| does not start with one. */
static int record_start(const uint8_t *data, size_t len, uint16_t *epoch, uint64_t *seq) {
  if (len < 11 || data[0] < 20 || data[0] > 25 || data[1] != 0xfe) return 0;
  *epoch = (uint16_t)(data[3] << 8 | data[4]);
  *seq = 0;
  for (int i = 5; i < 11; i++) *seq = *seq << 8 | data[i];
  return 1;
}

/* How far behind the highest sequence number sent in its epoch a quoted
 * record may be: the datagrams of about one round trip (an error comes
 * back a round trip after the datagram), many more than a client's
 * NSTART 1 has in flight; a forger who does not see our datagrams must
 * hit this window of a 48-bit space. */
#define ICMP_RECORD_WINDOW 64

static void note_sent_record(peer_dtls_t *pd, const uint8_t *data, size_t len) {
  uint16_t epoch;
  uint64_t seq;
  if (!record_start(data, len, &epoch, &seq)) return;
  struct sent_epoch *s = pd->sent;
  if (!s[0].used || epoch > s[0].epoch) {
    s[1] = s[0];
    s[0] = (struct sent_epoch){seq, epoch, 1};
    return;
  }
  /* An older epoch than both, or a sequence number far below the
   * highest: a new session on this peer (a new handshake) started over. */
  struct sent_epoch *e = epoch == s[0].epoch ? &s[0] : &s[1];
  if (!e->used || e->epoch != epoch || seq > e->seq || e->seq - seq >= ICMP_RECORD_WINDOW)
    *e = (struct sent_epoch){seq, epoch, 1};
}

int coap_secure_sent(const coap_peer_t *peer, const uint8_t *quoted, size_t len) {
  const peer_dtls_t *pd = peer->security;
  uint16_t epoch;
  uint64_t seq;
  if (!pd || !quoted || !record_start(quoted, len, &epoch, &seq)) return 0;
  for (int i = 0; i < 2; i++) {
    const struct sent_epoch *e = &pd->sent[i];
    if (e->used && e->epoch == epoch && seq <= e->seq && e->seq - seq < ICMP_RECORD_WINDOW)
      return 1;
  }
  return 0;
}

/* Records (and alerts) to the peer: from its local address, if it has one. */
static int peer_send_raw(void *user, const uint8_t *data, size_t len) {
  peer_dtls_t *pd = user;
  if (!within_move_budget(pd, len)) return 0;
  note_sent_record(pd, data, len);
  return coap_context_send_to_peer(pd->ctx, pd->peer, data, len);
}

/* A CoAP ping (an empty CON) inside the session to the new address: the
 * peer answers it with an RST only if it got it, and only the peer can
 * make a record we accept, so the answer confirms the address. */
static void ping_new_address(peer_dtls_t *pd) {
  coap_context_t *ctx = pd->ctx;
  uint8_t ping[4] = {0x40, 0x00, 0, 0}; /* version 1, CON, 0.00 */
  ctx->cfg.rand(ctx->cfg.rand_user, ping + 2, 2);
  pd->ping_mid = (uint16_t)(ping[2] << 8 | ping[3]);
  (void)coap_dtls_session_write(pd->session, ping, sizeof ping);
}

/* The answer to that ping (an RST or ACK with its message ID)? Then the
 * address is confirmed, and the message is ours, not the message layer's. */
static int answers_ping(peer_dtls_t *pd, const uint8_t *data, size_t len) {
  if (!pd->unconfirmed || len != 4 || (data[0] >> 6) != 1 || data[1] != 0) return 0;
  unsigned type = (data[0] >> 4) & 3;
  if ((type != 2 && type != 3) || (uint16_t)(data[2] << 8 | data[3]) != pd->ping_mid) return 0;
  pd->unconfirmed = 0;
  coap_logf(&pd->ctx->log, COAP_LOG_DEBUG, pd->peer->name,
            "the new address answered our ping: confirmed");
  return 1;
}

static void move_peer(peer_dtls_t *pd) {
  coap_context_t *ctx = pd->ctx;
  coap_peer_t *peer = pd->peer;
  char old_name[sizeof peer->name];
  snprintf(old_name, sizeof old_name, "%s", peer->name);
  /* A peer still at the new address is stale: the NAT gave its port to
   * this client, whose record just authenticated from there. */
  coap_peer_t *stale = coap_peer_table_find(&ctx->peers, peer->ep, pd->rx_from);
  if (stale) coap_context_peer_forget(ctx, stale);
  if (coap_peer_table_move(&ctx->peers, peer, pd->rx_from) < 0) return; /* not reached */
  char text[sizeof peer->name - 2];
  coap_address_format(pd->rx_from, text, sizeof text);
  snprintf(peer->name, sizeof peer->name, "[%s]", text);
  coap_peer_set_local(peer, pd->rx_local);
  coap_dtls_note_cid_move(ctx->dtls);
  coap_logf(&ctx->log, COAP_LOG_INFO, old_name,
            "address changed to %s (Connection ID; authenticated, newer than any record "
            "before): session kept, no new handshake",
            peer->name);
  pd->unconfirmed = 1;
  pd->unconfirmed_in = pd->rx_len;
  pd->unconfirmed_out = 0;
  ping_new_address(pd);
}

/* The session authenticated a record newer than any before (RFC 9146 §6):
 * if the datagram came from elsewhere (found by its CID), the peer moves
 * there now, before its data is answered. */
static void on_fresh(void *user) {
  peer_dtls_t *pd = user;
  if (pd->rx_from && !coap_address_equal(pd->rx_from, &pd->peer->addr)) move_peer(pd);
}

/* A server session that agreed on a CID is found by it from now on. */
static void register_cid(peer_dtls_t *pd) {
  coap_dtls_cid_info_t info;
  coap_dtls_session_cid(pd->session, &info);
  if (coap_dtls_session_is_client(pd->session) || !info.negotiated || !info.own_len ||
      info.own_len > COAP_CID_KEY_MAX)
    return;
  coap_context_t *ctx = pd->ctx;
  if (!ctx->cid_map.n_buckets) ctx->cid_map.seed = ctx->peers.seed ^ 0x5bd1e995u;
  pd->cid.peer = pd->peer;
  pd->cid.len = (uint8_t)info.own_len;
  memcpy(pd->cid.cid, info.own, info.own_len);
  if (coap_cid_map_add(&ctx->cid_map, &pd->cid) < 0)
    coap_logf(&ctx->log, COAP_LOG_WARNING, pd->peer->name,
              "Connection ID already in use or no memory: the session is found by its "
              "address only");
}

static void switch_from_old(peer_dtls_t *pd);
static void server_replace_old(peer_dtls_t *pd);

static void on_established(void *user) {
  peer_dtls_t *pd = user;
  if (server_beside(pd))
    server_replace_old(pd);
  else if (pd->old)
    switch_from_old(pd);
  if (pd->suspect) {
    coap_logf(&pd->ctx->log, COAP_LOG_INFO, pd->peer->name,
              "a second handshake got through: the first was lost or our address changed "
              "in it (NAT rebinding), not a wrong key");
    free(pd->suspect);
    pd->suspect = NULL;
  }
  register_cid(pd);
  pd->ctx->dtls_handshakes++;
  handshake_done(pd);
  if (coap_dtls_session_is_client(pd->session)) {
    keep_report(pd);
    if (coap_dtls_session_flights(pd->session) > CLEAN_HANDSHAKE_FLIGHTS)
      pd->loss_at = pd->ctx->now ? pd->ctx->now : 1;
    pd->clean_answers = 0;
  }
  int resumed = coap_dtls_session_resumed(pd->session);
  if (resumed) pd->ctx->dtls_resumed++;
  if (coap_dtls_session_ticket_refused(pd->session))
    pd->ctx->failures_by_cause[COAP_CAUSE_TICKET_KEY_UNKNOWN]++;
  int mode = coap_dtls_session_mode(pd->session);
  pd->ctx->dtls_handshakes_by_mode[mode][resumed]++;
  session_uncount(pd);
  pd->ctx->dtls_sessions_by_mode[mode]++;
  pd->mode_counted = mode + 1;
  for (pending_t *p = pd->pending; p; p = p->next)
    coap_dtls_session_write(pd->session, p->data, p->len);
  drop_pending(pd);
  /* Requests that wait for nothing (No-Response) are done once sent. */
  if (coap_dtls_session_is_client(pd->session))
    coap_client_session_up(&pd->ctx->client, pd->peer, pd->ctx->now);
}

/* The peer spoke: an answer on the session that took a resend shows
 * loss (a handshake's answers beside it say nothing of that). */
static void peer_spoke(peer_dtls_t *pd, uint64_t now) {
  if (pd->unanswered_since && !pd->old && coap_dtls_session_established(pd->session)) {
    if (!pd->sends_unanswered) {
      pd->clean_answers++;
    } else {
      pd->loss_at = now ? now : 1;
      pd->clean_answers = 0;
    }
  }
  pd->unanswered_since = 0;
  pd->reconnected = 0;
  pd->last_rx = now;
  if (pd->unreachable_seen) {
    coap_logf(&pd->ctx->log, COAP_LOG_INFO, pd->peer->name,
              "the server's port answers again after %u ICMP port-unreachable error%s",
              pd->unreachable_seen, pd->unreachable_seen == 1 ? "" : "s");
    pd->unreachable_seen = 0;
    pd->unreachable_since = 0;
  }
}

static void on_data(void *user, const uint8_t *data, size_t len) {
  peer_dtls_t *pd = user;
  if (coap_dtls_session_is_client(pd->session) && !pd->old) peer_spoke(pd, pd->ctx->now);
  if (pd->feeding_old) pd->old_spoke = 1;
  if (answers_ping(pd, data, len)) return;
  coap_exch_receive(pd->ctx->exch, &pd->peer->exch, data, len, pd->ctx->now);
}

/* A client whose ClientHello gets no answer also sends a CoAP ping (an
 * empty CON): a plain CoAP server answers it with RST, which tells "wrong
 * port" from "nobody there" long before the handshake times out. The ping
 * leaves from a coap:// socket of its own, never from the handshake's
 * address: a DTLS server takes it as a datagram of our association, and
 * libcoap 4.3 with OpenSSL hands it to DTLSv1_listen, whose error stays on
 * the thread's error queue until the next SSL_read of any session reads it
 * as that session's failure (it drops the session, another client's as
 * often as ours). From its own port the ping is a stranger's datagram,
 * which such a server drops before OpenSSL sees it. No such socket (a
 * transport without client endpoints): no probe. */
static void probe_plain_coap(peer_dtls_t *pd) {
  coap_dtls_session_t *s = pd->session;
  if (pd->probed || !coap_dtls_session_is_client(s) || coap_dtls_session_established(s) ||
      coap_dtls_session_rx(s) || coap_dtls_session_flights(s) < 2)
    return;
  coap_context_t *ctx = pd->ctx;
  pd->probed = 1;
  coap_endpoint_t *ep;
  if (coap_context_client_endpoint(ctx, COAP_PROTO_UDP, &pd->peer->addr, &ep) < 0) return;
  uint8_t ping[4] = {0x40, 0x00, 0, 0}; /* version 1, CON, 0.00 */
  ctx->cfg.rand(ctx->cfg.rand_user, ping + 2, 2);
  pd->probe_mid = (uint16_t)(ping[2] << 8 | ping[3]);
  coap_logf(&ctx->log, COAP_LOG_DEBUG, pd->peer->name,
            "no answer to the ClientHello yet: probing for a plain CoAP server");
  ctx->tx_datagrams++;
  ctx->tx_bytes += sizeof ping;
  ctx->transport.send(ctx->transport_user, ep, &pd->peer->addr, ping, sizeof ping);
}

static void timer_fired(coap_timer_t *t, uint64_t now, void *user) {
  peer_dtls_t *pd = user;
  if (pd->suspect && now >= pd->confirm_by) {
    /* A server that answered the second hello does take new hellos from
     * our address; it is only slow (an overloaded server resends its
     * flight while our Finished copies wait in its queue, which looks
     * like a wrong key): the second handshake is waited for to its end. */
    if (!coap_dtls_session_rx(pd->session)) {
      confirmation_failed(pd, NULL, now);
      return;
    }
    pd->confirm_by = UINT64_MAX;
  }
  int rc = coap_dtls_session_handle_timeout(pd->session, now);
  if (rc == COAP_E_DTLS_TIMEOUT && pd->unreachable_seen && !pd->suspect) {
    end_unreachable(pd, now); /* the port stayed closed (coap_secure_unreachable) */
    return;
  }
  if (rc < 0) {
    session_ended(pd, rc, now);
    return;
  }
  probe_plain_coap(pd);
  (void)arm_or_end(pd, now);
}

static peer_dtls_t *peer_dtls_new(coap_context_t *ctx, coap_peer_t *peer) {
  peer_dtls_t *pd = calloc(1, sizeof(*pd));
  if (!pd) return NULL;
  pd->ctx = ctx;
  pd->peer = peer;
  pd->pending_tail = &pd->pending;
  coap_timer_init(&pd->timer, timer_fired, pd);
  return pd;
}

static const coap_dtls_session_cb_t session_cb = {
    .send = peer_send_raw,
    .on_established = on_established,
    .on_data = on_data,
    .on_fresh = on_fresh,
};

int coap_secure_connect(coap_context_t *ctx, coap_peer_t *peer, const char *server_name,
                        uint64_t now) {
  if (peer->security) return 0;
  if (!coap_dtls_can_connect(ctx->dtls)) return COAP_E_DTLS_NO_CREDENTIALS;
  peer_dtls_t *pd = peer_dtls_new(ctx, peer);
  if (!pd) return COAP_E_NOMEM;
  peer->security = pd;
  int rc = COAP_E_NOMEM;
  if (!(pd->server_name = strdup(server_name ? server_name : "")) || reserve_timer(pd, now) < 0 ||
      (rc = coap_dtls_session_new_client(ctx->dtls, server_name, &session_cb, pd, now,
                                         &pd->session)) < 0) {
    coap_timer_cancel(&ctx->timers, &pd->timer);
    free(pd->server_name);
    free(pd);
    peer->security = NULL;
    return rc;
  }
  coap_dtls_session_set_peer_name(pd->session, peer->name);
  arm_timer(pd); /* reserved: cannot fail */
  return 0;
}

static int queue_pending(peer_dtls_t *pd, const uint8_t *data, size_t len);

/* The server has said nothing through three round trips although we
 * keep sending: it may have restarted and dropped our session, and it
 * drops our records silently (it can do nothing else). Start a fresh
 * handshake once per such silence; the datagram goes out on the new
 * session. A CON's sends go at 0, T, 3T, 7T (T at least the ACK
 * timeout), so this is its fourth send: on a path losing 15 % each way,
 * three lost round trips in a row happen to 2 % of requests, where
 * reconnecting after one (as before) cost a handshake to 28 %. Our
 * address may have changed too (a NAT rebinding without Connection ID):
 * the server then drops our records as a stranger's: see the early
 * handshake below. (Replacing the session earlier was measured and
 * rejected: at 15 % loss it made 60 reconnects in 1000 runs instead of
 * 5, and 39 requests served twice.) */
#define SILENT_ACK_TIMEOUTS_FOR_RECONNECT 7

/* Early: without a Connection ID a NAT that rebound our port makes the
 * server drop our records, and waiting out three round trips costs a
 * moved device 14-21 s. So once a request's first retransmission went
 * unanswered (the third send, 3 to 4.5 ACK timeouts in) a new handshake
 * starts *beside* the session, if a move is the likely reading: the
 * session had been idle (nothing either way for EARLY_IDLE ACK timeouts
 * before we spoke: NAT bindings expire on idle), or the path has shown
 * itself clean (CLEAN_ANSWERS answers on this session without a resend,
 * and no loss for EARLY_HOLD ACK timeouts: no resent handshake flight,
 * no answer that needed a retransmission, no abandoned early handshake):
 * on a clean path two sends lost in a row is a move, between two
 * requests too (a device changing networks). On a lossy path it is
 * loss, and starting at the third send there tripled the reconnects
 * and the requests served twice in tests/sim/test_dtls_lossy.c; the
 * seven ACK timeouts below stay its rule. The datagrams still go out on
 * the old session too, and an answer on it (the path works: it was loss)
 * abandons the new handshake while it has sent only its first flight (a
 * ClientHello the server answers statelessly, keeping our session), and
 * holds early handshakes off for EARLY_HOLD ACK timeouts. When the new
 * session is up it replaces the old. At most one at a time, one per
 * silence. */
#define EARLY_ACK_TIMEOUTS 2
#define EARLY_IDLE 4
#define EARLY_HOLD 60
#define CLEAN_ANSWERS 2
static int early_allowed(const peer_dtls_t *pd, uint64_t now) {
  uint64_t ack = pd->ctx->cfg.tx.ack_timeout_ms;
  if (pd->old || now < pd->early_hold_until || !pd->unanswered_since) return 0;
  /* (Measured from the waking send: a gap in a request's back-off looks
   * like idleness too, and past 7 ACK timeouts the full reconnect below,
   * with new message IDs, is the rule.) */
  int woke_from_idle = pd->woke_at > pd->last_rx && now - pd->woke_at >= EARLY_ACK_TIMEOUTS * ack;
  int clean_path = pd->clean_answers >= CLEAN_ANSWERS &&
                   (!pd->loss_at || now - pd->loss_at >= EARLY_HOLD * ack) &&
                   now - pd->unanswered_since >= EARLY_ACK_TIMEOUTS * ack &&
                   now - pd->unanswered_since < SILENT_ACK_TIMEOUTS_FOR_RECONNECT * ack;
  return woke_from_idle || clean_path;
}

/* A client's send: note when it wakes from idleness (nothing either way
 * for EARLY_IDLE ACK timeouts). */
static void note_send(peer_dtls_t *pd) {
  uint64_t now = coap_context_now(pd->ctx), idle = EARLY_IDLE * pd->ctx->cfg.tx.ack_timeout_ms;
  if (now - pd->last_tx >= idle && now - pd->last_rx >= idle) pd->woke_at = now;
  pd->last_tx = now;
}

/* A CON, or a NON request, wants an answer; an ACK or RST (ours to the
 * server's CON: a separate response, a notification) wants none, and
 * starting the silence timer with it made a later request look silent
 * from the moment of the server's last answer. */
static int wants_answer(const uint8_t *data, size_t len) {
  if (len < 4) return 0;
  unsigned type = (data[0] >> 4) & 3, code = data[1];
  return type == 0 || (type == 1 && code >= 1 && code < 32);
}

static void start_beside(peer_dtls_t *pd, uint64_t now) {
  coap_context_t *ctx = pd->ctx;
  coap_dtls_session_t *fresh;
  if (reserve_timer(pd, now) < 0) return; /* no memory: the session goes on alone */
  if (coap_dtls_session_new_client(ctx->dtls, pd->server_name, &session_cb, pd, now, &fresh) < 0)
    return;
  coap_logf(&ctx->log, COAP_LOG_INFO, pd->peer->name,
            "no answer on the DTLS session for %llu ms: our address may have changed "
            "(NAT rebinding, without Connection ID); new handshake beside the session",
            (unsigned long long)(now - pd->unanswered_since));
  pd->old = pd->session;
  pd->session = fresh;
  coap_dtls_session_set_peer_name(fresh, pd->peer->name);
  pd->reconnected = 1;
  arm_timer(pd);
}

/* The old session answered while the new handshake had sent only its
 * hello: loss, not a move. Keep the old one. */
static void abandon_beside(peer_dtls_t *pd) {
  coap_context_t *ctx = pd->ctx;
  if (coap_dtls_session_flights(pd->session) > 1) return; /* the server may have moved on */
  coap_logf(&ctx->log, COAP_LOG_INFO, pd->peer->name,
            "the DTLS session answered after all (loss, not a move): new handshake "
            "abandoned");
  coap_dtls_session_free(pd->session);
  pd->session = pd->old;
  pd->old = NULL;
  drop_pending(pd); /* each went out on the old session too */
  pd->loss_at = ctx->now ? ctx->now : 1;
  pd->early_hold_until = ctx->now + EARLY_HOLD * ctx->cfg.tx.ack_timeout_ms;
  arm_timer(pd);
}

/* The new session is up: the old one goes, and the requests get their
 * whole retransmission schedule again on the new one. */
static void switch_from_old(peer_dtls_t *pd) {
  coap_context_t *ctx = pd->ctx;
  coap_logf(&ctx->log, COAP_LOG_INFO, pd->peer->name,
            "[%s] new DTLS session in place of the silent one",
            coap_cause_name(COAP_CAUSE_SESSION_LOST));
  coap_dtls_session_free(pd->old);
  pd->old = NULL;
  ctx->dtls_reconnects++;
  ctx->failures_by_cause[COAP_CAUSE_SESSION_LOST]++;
  /* Same MIDs: the datagrams held for the new session went out on it as
   * they were (on_established), and their answers must match. */
  coap_exch_peer_restart(ctx->exch, &pd->peer->exch, ctx->now, 0);
  coap_client_observe_reconnected(&ctx->client, pd->peer, ctx->now);
}

static int reconnect_if_silent(peer_dtls_t *pd, const uint8_t *data, size_t len) {
  coap_context_t *ctx = pd->ctx;
  /* The clock, not the last time seen: a request after a long idleness
   * is sent before the loop has looked at the clock again. */
  uint64_t now = coap_context_now(ctx);
  if (!pd->unanswered_since) {
    if (wants_answer(data, len)) pd->unanswered_since = now ? now : 1;
    pd->sends_unanswered = 0;
    return 0;
  }
  pd->sends_unanswered++;
  if (!pd->reconnected && early_allowed(pd, now)) {
    /* On the old session first: if the path works, its answer comes
     * before the server's answer to the new hello. */
    coap_dtls_session_write(pd->session, data, len);
    start_beside(pd, now);
    if (pd->old) queue_pending(pd, data, len);
    return 1;
  }
  if (pd->reconnected ||
      now - pd->unanswered_since < SILENT_ACK_TIMEOUTS_FOR_RECONNECT * ctx->cfg.tx.ack_timeout_ms)
    return 0;
  /* The new session's hello leaves from a port of its own, if it can. */
  coap_context_peer_to_fresh_endpoint(ctx, pd->peer);
  coap_dtls_session_t *fresh;
  if (reserve_timer(pd, now) < 0 ||
      coap_dtls_session_new_client(ctx->dtls, pd->server_name, &session_cb, pd, now, &fresh) < 0)
    return 0;
  coap_logf(&ctx->log, COAP_LOG_INFO, pd->peer->name,
            "[%s] no answer on the DTLS session for %llu ms: our address may have changed "
            "(NAT rebinding, without Connection ID) or the server lost the session "
            "(restarted); new handshake",
            coap_cause_name(COAP_CAUSE_SESSION_LOST),
            (unsigned long long)(now - pd->unanswered_since));
  ctx->dtls_reconnects++;
  ctx->failures_by_cause[COAP_CAUSE_SESSION_LOST]++;
  session_uncount(pd);
  coap_dtls_session_free(pd->session);
  pd->session = fresh;
  coap_dtls_session_set_peer_name(fresh, pd->peer->name);
  coap_dtls_session_follows_old(fresh);
  pd->reconnected = 1;
  arm_timer(pd);
  /* The silence used up most of the requests' retransmissions: on the new
   * session they get the whole schedule again, within their deadlines, and
   * new message IDs. Before the datagram is queued: it is a request's own
   * bytes (the exchange sends them in place), renumbered with it. */
  coap_exch_peer_restart(ctx->exch, &pd->peer->exch, now, 1);
  queue_pending(pd, data, len);
  /* The server lost its observers with our session (RFC 7641 §3.3.1). */
  coap_client_observe_reconnected(&ctx->client, pd->peer, now);
  return 1;
}

static int queue_pending(peer_dtls_t *pd, const uint8_t *data, size_t len) {
  if (pd->n_pending == PENDING_MAX) return COAP_E_LIMIT;
  pending_t *p = malloc(sizeof(*p) + len);
  if (!p) return COAP_E_NOMEM;
  p->next = NULL;
  p->len = len;
  memcpy(p->data, data, len);
  *pd->pending_tail = p;
  pd->pending_tail = &p->next;
  pd->n_pending++;
  return 0;
}

void coap_secure_unqueue(coap_peer_t *peer, const uint8_t *data, size_t len) {
  peer_dtls_t *pd = peer->security;
  if (!pd) return;
  pd->pending_tail = &pd->pending;
  for (pending_t **link = &pd->pending; *link;) {
    pending_t *p = *link;
    if (p->len == len && memcmp(p->data, data, len) == 0) {
      *link = p->next;
      free(p);
      pd->n_pending--;
      continue;
    }
    link = &p->next;
    pd->pending_tail = link;
  }
}

int coap_secure_send(coap_context_t *ctx, coap_peer_t *peer, const uint8_t *data, size_t len) {
  peer_dtls_t *pd = peer->security;
  if (!pd) return COAP_E_STATE; /* no session: the datagram is dropped */
  if (coap_dtls_session_is_client(pd->session)) note_send(pd);
  if (coap_dtls_session_established(pd->session)) {
    if (coap_dtls_session_is_client(pd->session) && reconnect_if_silent(pd, data, len)) return 0;
    if (!pd->old) return coap_dtls_session_write(pd->session, data, len);
  }
  if (server_beside(pd)) return coap_dtls_session_write(pd->old, data, len); /* its answers */
  if (pd->old) coap_dtls_session_write(pd->old, data, len); /* beside a new handshake */
  return queue_pending(pd, data, len);
}

/* ---- input ---- */

typedef struct cookie_dest {
  coap_context_t *ctx;
  coap_endpoint_t *ep;
  const coap_address_t *to;
  const coap_address_t *local; /* where the hello arrived, or NULL */
} cookie_dest_t;

/* The HelloVerifyRequest: there is no peer yet, so it leaves from the
 * address the ClientHello was sent to, straight from the input. */
static int send_to_address(void *user, const uint8_t *data, size_t len) {
  cookie_dest_t *dest = user;
  coap_context_t *ctx = dest->ctx;
  ctx->tx_datagrams++;
  if (dest->local && ctx->transport.send_from)
    return ctx->transport.send_from(ctx->transport_user, dest->ep, dest->local, dest->to, data,
                                    len);
  return ctx->transport.send(ctx->transport_user, dest->ep, dest->to, data, len);
}

static int same_host(const coap_address_t *a, const coap_address_t *b) {
  if (a->addr.sa.sa_family != b->addr.sa.sa_family) return 0;
  if (a->addr.sa.sa_family == AF_INET)
    return a->addr.sin.sin_addr.s_addr == b->addr.sin.sin_addr.s_addr;
  return memcmp(&a->addr.sin6.sin6_addr, &b->addr.sin6.sin6_addr, 16) == 0;
}

/* End a server handshake that has not finished, to give its place to a
 * newer one. One that only waits for the client's next flight ends
 * silently: its client has not finished, so it resends that flight and
 * times out or starts over, and telling it would be a datagram to an
 * address that (without a cookie) may be anyone's. One past our Finished
 * (make_room_for_handshake ends it only when its host took more than its
 * share) gets a close_notify under the handshake's keys: its client
 * believes it is connected and would otherwise find out only by silence
 * (6-9 s). That is no amplification: a record of a few tens of bytes
 * after a hello that carried a ticket, and within the unverified
 * address's byte budget anyway. */
static void evict_half_open(coap_context_t *ctx, peer_dtls_t *pd, const char *why) {
  ctx->dtls_half_open_evicted++;
  if (!ctx->half_open_evict_logged)
    coap_logf(&ctx->log, COAP_LOG_WARNING, pd->peer->name,
              "unfinished DTLS handshake ended to make room for a new client (%s); "
              "logged once, counted in dtls_half_open_evicted",
              why);
  ctx->half_open_evict_logged = 1;
  coap_dtls_session_abandon(pd->session);
  if (server_beside(pd))
    end_server_beside(pd); /* the established session beside it stays */
  else
    coap_secure_peer_free(ctx, pd->peer, 0);
}

/* Which handshake goes first when one must make room (lower first; the
 * oldest within a rank): the ones that cost a client least and are least
 * likely to complete. NOT_EVICTED: never, for a new hello. */
enum {
  RANK_BORROWED,          /* beyond its host's share, still waiting for the client */
  RANK_UNVERIFIED,        /* no cookie: may be a forged address that never answers */
  RANK_WAITING,           /* a verified client's, waiting for its next flight */
  RANK_BORROWED_FINISHED, /* beyond its host's share, past our Finished */
  RANK_COUNT,
  NOT_EVICTED = RANK_COUNT
};

static int eviction_rank(const peer_dtls_t *pd) {
  if (coap_dtls_session_awaits_peer_finished(pd->session))
    return pd->borrowed ? RANK_BORROWED_FINISHED : NOT_EVICTED;
  if (pd->borrowed) return RANK_BORROWED;
  return pd->verified ? RANK_WAITING : RANK_UNVERIFIED;
}

/* The handshake to end for a newcomer: of |host| only (non-NULL), up to
 * rank |worst|; NULL when none may go. One walk, oldest first. */
static peer_dtls_t *eviction_candidate(coap_context_t *ctx, const coap_address_t *host, int worst) {
  peer_dtls_t *first[RANK_COUNT] = {NULL};
  for (peer_dtls_t *pd = ctx->half_open_oldest; pd; pd = pd->half_open_newer) {
    if (host && !same_host(&pd->peer->addr, host)) continue;
    int rank = eviction_rank(pd);
    if (rank <= worst && !first[rank]) first[rank] = pd;
  }
  for (int rank = 0; rank <= worst; rank++)
    if (first[rank]) return first[rank];
  return NULL;
}

static unsigned half_open_of_host(const coap_context_t *ctx, const coap_address_t *host) {
  unsigned n = 0;
  for (const peer_dtls_t *pd = ctx->half_open_oldest; pd; pd = pd->half_open_newer)
    n += same_host(&pd->peer->addr, host);
  return n;
}

/* Half-open handshakes are what a flood of hellos (from addresses that do
 * answer cookies) piles up: each would hold its place for the whole
 * handshake timeout, and a few a second kept every new client out. So a
 * new client with a valid cookie may end an unfinished handshake when all
 * places are taken, by these rules:
 * - Never one past our Finished (an abbreviated handshake waiting for the
 *   client's Finished) within its host's share: its client believes it is
 *   connected. Its place is held for one round trip, or until the
 *   handshake times out if the client never answers, and only a client
 *   with a valid ticket gets that far.
 * - The rest by eviction_rank: places a host took beyond its share first,
 *   then handshakes begun without a cookie (forgeable), then verified
 *   ones waiting for the client's next flight, oldest first. A full
 *   handshake waiting for the client's final flight has cost us the most
 *   (a signature and a key exchange with certificates), but that is spent
 *   either way; its client has not finished, so ending it costs the
 *   client a resent flight and a new handshake, not a silent session.
 * - A newcomer from a host that holds its share (an eighth of the places,
 *   at least 4) ends only its own host's, so that one host cannot push
 *   everyone else's out: to end a legitimate handshake (in progress for a
 *   round trip after the cookie) an attacker needs many hosts, each
 *   answering cookies, pushing a table's worth through in that round
 *   trip.
 * - Nothing that may go: the newcomer is refused (dropped; the client
 *   resends its hello, RFC 6347 §4.2.4), never a near-complete handshake
 *   ended.
 * The share limits evictions, not admissions: while places are free a
 * host may take more than its share (marked borrowed, first to go when
 * others need room). Devices behind one NAT (a carrier-grade NAT, a
 * balancer's client network) reconnecting all at once are one host to
 * us; the cookie already proves each of them receives at the address,
 * which is what flood protection needs, so refusing them while places
 * are free would only delay them by a hello's retransmission timeout,
 * one per eighth of the table. Without a cookie (a policy that skips it)
 * a newcomer takes a free place only and ends nothing: the policy asks
 * for cookies from a quarter of the places on (coap_dtls_cookie_required),
 * so forged hellos hold at most that, and they are the first to go.
 * Returns 0 when there is no room; *borrowed: the place is beyond the
 * host's share. */
static int make_room_for_handshake(coap_context_t *ctx, const coap_address_t *from, int verified,
                                   int *borrowed) {
  unsigned max = coap_dtls_max_handshakes(ctx->dtls);
  unsigned per_host = coap_dtls_max_handshakes_per_address(ctx->dtls);
  unsigned same = half_open_of_host(ctx, from);
  *borrowed = same >= per_host;
  if (ctx->handshakes_in_progress < max) return 1;
  if (!verified) return 0;
  peer_dtls_t *victim;
  if (*borrowed) {
    victim = eviction_candidate(ctx, from, RANK_WAITING);
    if (victim) evict_half_open(ctx, victim, "its host holds its share of unfinished handshakes");
  } else {
    victim = eviction_candidate(ctx, NULL, RANK_BORROWED_FINISHED);
    if (victim) evict_half_open(ctx, victim, "all places taken");
  }
  return ctx->handshakes_in_progress < max;
}

/* A DTLS 1.2 application-data record of epoch >= 1 without a CID: only
 * a session can have sent it. From an address with none, its sender had
 * a session from another address (a NAT rebinding) — or this server lost
 * it (a restart), which the log line also admits. A tls12_cid record with
 * a CID we do not know is not counted: its client has CID, so a move is
 * not what went wrong. */
static int is_encrypted_app_record(const uint8_t *data, size_t len) {
  return len >= 13 && data[0] == 23 && data[1] == 0xFE && data[2] == 0xFD && (data[3] || data[4]);
}

/* A datagram from an address without a session: only a ClientHello with a
 * valid cookie creates state. */
static int accept_new(coap_context_t *ctx, coap_endpoint_t *ep, const coap_address_t *from,
                      const coap_address_t *local, const uint8_t *data, size_t len, uint64_t now) {
  if (!coap_dtls_can_serve(ctx->dtls)) {
    coap_logf(&ctx->log, COAP_LOG_DEBUG, NULL,
              "DTLS datagram on an endpoint with no server credentials: dropped");
    return COAP_E_DTLS_NO_CREDENTIALS;
  }
  if (is_encrypted_app_record(data, len)) {
    coap_context_note_stranger_record(ctx, from, now);
    return 0;
  }
  cookie_dest_t dest = {ctx, ep, from, local};
  int require = coap_dtls_cookie_required(ctx->dtls, ctx->handshakes_in_progress);
  int rc = coap_dtls_accept(ctx->dtls, &from->addr, from->size, data, len, require, send_to_address,
                            &dest);
  if (rc == COAP_DTLS_COOKIE_SENT) ctx->dtls_cookies_sent++;
  if (rc != COAP_DTLS_ACCEPT) return rc < 0 ? rc : 0;
  int verified = coap_dtls_accepted_with_cookie(ctx->dtls), borrowed;
  if (!make_room_for_handshake(ctx, from, verified, &borrowed)) {
    ctx->dtls_refused++;
    if (!ctx->handshake_limit_logged)
      coap_logf(&ctx->log, COAP_LOG_WARNING, NULL,
                "%u DTLS handshakes in progress, none that may make room: new hellos are "
                "dropped (the clients resend them) until some finish (raise it with "
                "coap_dtls_set_max_handshakes)",
                ctx->handshakes_in_progress);
    ctx->handshake_limit_logged = 1;
    return COAP_E_LIMIT;
  }
  coap_peer_t *peer;
  if ((rc = coap_context_peer_for_input(ctx, ep, from, now, &peer)) < 0) return rc;
  /* A new session is a new endpoint (RFC 7252 §9.1.1): what a peer kept
   * from an earlier session at this address (message IDs seen, answers to
   * repeat) must not turn its new requests into duplicates. */
  coap_exch_peer_clear(ctx->exch, &peer->exch, 0);
  coap_exch_peer_init(ctx->exch, &peer->exch);
  /* Only here, where a valid cookie (or the policy) let the hello in: a
   * forged record later cannot move where the session's answers go from. */
  coap_peer_set_local(peer, local);
  peer_dtls_t *pd = peer_dtls_new(ctx, peer);
  if (!pd) return COAP_E_NOMEM;
  rc = COAP_E_NOMEM;
  if (reserve_timer(pd, now) < 0 ||
      (rc = coap_dtls_session_new_server(ctx->dtls, &session_cb, pd, now, &pd->session)) < 0) {
    /* (Out of memory: nothing kept; the client's resent hello tries again.) */
    coap_timer_cancel(&ctx->timers, &pd->timer);
    free(pd);
    if (rc == COAP_E_NOMEM)
      coap_logf(&ctx->log, COAP_LOG_WARNING, peer->name,
                "out of memory for a DTLS handshake: ClientHello dropped");
    return rc;
  }
  coap_dtls_session_set_peer_name(pd->session, peer->name);
  peer->security = pd;
  half_open_append(pd);
  pd->verified = (uint8_t)verified;
  pd->borrowed = (uint8_t)borrowed;
  rc = coap_dtls_session_input(pd->session, data, len, now);
  if (rc < 0)
    session_ended(pd, rc, now);
  else
    rc = arm_or_end(pd, now);
  return rc;
}

/* A client in its handshake gets a datagram that is no DTLS record but a
 * CoAP message (the answer to our ping, on the ping's socket; or one on
 * the handshake's, to nothing): a plain CoAP server listens on the port. */
static int answered_by_plain_coap(peer_dtls_t *pd, const uint8_t *data, size_t len, uint64_t now) {
  coap_dtls_session_t *s = pd->session;
  if (!coap_dtls_session_is_client(s) || coap_dtls_session_established(s) ||
      coap_dtls_looks_like_record(data, len) || len < 4 || (data[0] >> 6) != 1)
    return 0;
  coap_msg_t msg;
  const char *what = coap_msg_parse(&msg, data, len) == 0 && msg.type == COAP_TYPE_RST
                         ? "a CoAP RST"
                         : "a CoAP message";
  coap_diag_t g;
  coap_diag_begin(&g, COAP_CAUSE_PLAIN_COAP_PEER, COAP_STEP_HELLO, COAP_DETECTED_NETWORK,
                  COAP_E_WRONG_PROTOCOL);
  coap_diag_explain(&g,
                    "port %u answered with %s, not DTLS: a plain CoAP (coap://) "
                    "server listens there",
                    coap_address_get_port(&pd->peer->addr), what);
  coap_diag_fix(&g, "use coap:// for port %u, or the server's coaps:// port (5684 by default)",
                coap_address_get_port(&pd->peer->addr));
  g.flights = coap_dtls_session_flights(s);
  g.elapsed_ms = coap_dtls_session_elapsed(s, now);
  session_ended_with(pd, &g, now);
  return 1;
}

/* The client's coaps:// peer at |from|, on whichever client endpoint (a
 * replaced session has one of its own). */
static coap_peer_t *dtls_client_peer(coap_context_t *ctx, const coap_address_t *from) {
  for (coap_endpoint_t *ep = ctx->endpoints; ep; ep = ep->next) {
    if (!ep->client || ep->proto != COAP_PROTO_DTLS) continue;
    coap_peer_t *peer = coap_peer_table_find(&ctx->peers, ep, from);
    if (peer) return peer;
  }
  return NULL;
}

int coap_secure_probe_answer(coap_context_t *ctx, const coap_address_t *from, const uint8_t *data,
                             size_t len, uint64_t now) {
  coap_peer_t *peer = dtls_client_peer(ctx, from);
  peer_dtls_t *pd = peer ? peer->security : NULL;
  if (!pd || !pd->probed || len < 4 || (data[0] >> 6) != 1 ||
      (uint16_t)(data[2] << 8 | data[3]) != pd->probe_mid)
    return 0;
  (void)answered_by_plain_coap(pd, data, len, now); /* (a completed handshake: too late) */
  return 1;
}

/* The new handshake completed: the client restarted (it proved it
 * receives at the address and holds the credentials), and the old
 * session goes. A new session is a new endpoint (RFC 7252 §9.1.1): what
 * the old one carried (Block1 bodies, kept answers, observations,
 * message IDs seen) ends with it, and its CID is found no more. */
static void server_replace_old(peer_dtls_t *pd) {
  coap_context_t *ctx = pd->ctx;
  coap_peer_t *peer = pd->peer;
  coap_logf(&ctx->log, COAP_LOG_INFO, peer->name,
            "the new handshake from the session's address completed: the client restarted, "
            "its old session replaced (RFC 6347 §4.2.8)");
  coap_cid_map_remove(&ctx->cid_map, &pd->cid);
  memset(&pd->cid, 0, sizeof pd->cid);
  pd->unconfirmed = 0;
  coap_server_peer_gone(&ctx->server, peer);
  coap_exch_peer_clear(ctx->exch, &peer->exch, 0);
  coap_exch_peer_init(ctx->exch, &peer->exch);
  coap_dtls_session_free(pd->old);
  pd->old = NULL;
}

/* Start the handshake of a verified ClientHello beside the established
 * session (or in place of an earlier such handshake, whose client started
 * over again). Out of memory or room, the hello is dropped (the client
 * resends it). */
static void start_server_beside(peer_dtls_t *pd, const coap_address_t *from, const uint8_t *data,
                                size_t len, uint64_t now) {
  coap_context_t *ctx = pd->ctx;
  coap_peer_t *peer = pd->peer;
  if (server_beside(pd)) end_server_beside(pd);
  coap_dtls_session_t *fresh;
  int borrowed;
  if (!make_room_for_handshake(ctx, from, 1, &borrowed) || reserve_timer(pd, now) < 0 ||
      coap_dtls_session_new_server(ctx->dtls, &session_cb, pd, now, &fresh) < 0) {
    ctx->dtls_refused++;
    coap_logf(&ctx->log, COAP_LOG_DEBUG, peer->name,
              "no room or memory for a new handshake beside the session: hello dropped");
    arm_timer(pd);
    return;
  }
  coap_logf(&ctx->log, COAP_LOG_INFO, peer->name,
            "ClientHello with a valid cookie from an established session's address: new "
            "handshake beside it; the session stays until that one completes");
  coap_dtls_session_set_peer_name(fresh, peer->name);
  pd->old = pd->session;
  pd->session = fresh;
  pd->verified = 1; /* it brought a valid cookie */
  pd->borrowed = (uint8_t)borrowed;
  half_open_append(pd);
  int rc = coap_dtls_session_input(fresh, data, len, now);
  if (rc < 0)
    session_ended(pd, rc, now);
  else
    (void)arm_or_end(pd, now);
}

/* A ClientHello from the address of a server's established session: the
 * client restarted and starts over (RFC 6347 §4.2.8), or anyone forged its
 * address. Whatever the cookie policy, it must bring a valid cookie, which
 * proves its sender receives at that address: the policy's "when needed"
 * includes this, since without it one forged hello (PSK or with a ticket,
 * which the policy otherwise lets in) would start a handshake in the
 * session's name. Even with the cookie the session is kept: its
 * replacement runs beside it and takes over only once it completes (the
 * client's Finished verified), so a hello that never gets that far (an
 * attacker on the path who saw the cookie, or one that replays it) costs
 * the session nothing. Returns 1 when the datagram was dealt with here, 0
 * when it is for the handshake beside the session (its own hello resent). */
static int hello_on_session(coap_context_t *ctx, coap_endpoint_t *ep, coap_peer_t *peer,
                            const coap_address_t *from, const coap_address_t *local,
                            const uint8_t *data, size_t len, uint64_t now) {
  peer_dtls_t *pd = peer->security;
  int beside = server_beside(pd);
  if (coap_dtls_session_own_hello(beside ? pd->old : pd->session, data, len)) {
    /* The client resent its hello before the handshake ended and that copy
     * came after the rest (reordered): it has a valid cookie, but the
     * client did not restart. */
    coap_logf(&ctx->log, COAP_LOG_DEBUG, peer->name,
              "a late copy of this session's own ClientHello: ignored");
    return 1;
  }
  /* The hello of the handshake beside, again: its flight is resent. */
  if (beside && coap_dtls_session_own_hello(pd->session, data, len)) return 0;
  cookie_dest_t dest = {ctx, ep, from, local};
  int rc =
      coap_dtls_accept(ctx->dtls, &from->addr, from->size, data, len, 1, send_to_address, &dest);
  if (rc == COAP_DTLS_COOKIE_SENT) {
    ctx->dtls_cookies_sent++;
    coap_logf(&ctx->log, COAP_LOG_DEBUG, peer->name,
              "ClientHello on an established session: cookie asked, session kept");
    return 1;
  }
  if (rc != COAP_DTLS_ACCEPT) return 1; /* not a hello GnuTLS can read: dropped */
  start_server_beside(pd, from, data, len, now);
  return 1;
}

/* A ClientHello during a server's unfinished handshake (none established
 * beside it) that did not begin it: another random (the client gave that
 * handshake up and began a new one from the same port: its deadline
 * passed while we had lost its Finished, or it restarted), or that
 * client's hello again after it answered a cookie request when the
 * handshake had begun with one without (our load-following cookie policy
 * changed its mind in between): the client waits for the answer to this
 * one. Fed to the old handshake, a new hello got the old handshake's
 * flight again, which the client took as the answer to its new hello: its
 * Finished, under keys from its new random, could not be decrypted, and
 * both sides called the key wrong (cluster_failover under load, every
 * key right). The handshake is replaced once the hello brings a valid
 * cookie, whatever the policy (one forged hello must not end it); until
 * then it goes on. Returns 1 when the datagram was dealt with here, 0
 * when the handshake is gone and the hello begins a new one. */
static int another_hello(const peer_dtls_t *pd, const uint8_t *data, size_t len) {
  return !coap_dtls_session_established(pd->session) && !server_beside(pd) &&
         (!coap_dtls_session_own_hello(pd->session, data, len) ||
          coap_dtls_session_hello_after_cookie(pd->session, data, len));
}

static int hello_on_handshake(coap_context_t *ctx, coap_endpoint_t *ep, coap_peer_t *peer,
                              const coap_address_t *from, const coap_address_t *local,
                              const uint8_t *data, size_t len) {
  cookie_dest_t dest = {ctx, ep, from, local};
  int rc =
      coap_dtls_accept(ctx->dtls, &from->addr, from->size, data, len, 1, send_to_address, &dest);
  if (rc == COAP_DTLS_COOKIE_SENT) {
    ctx->dtls_cookies_sent++;
    coap_logf(&ctx->log, COAP_LOG_DEBUG, peer->name,
              "a new ClientHello during an unfinished handshake: cookie asked, handshake kept");
    return 1;
  }
  if (rc != COAP_DTLS_ACCEPT) return 1; /* not a hello GnuTLS can read: dropped */
  coap_logf(&ctx->log, COAP_LOG_INFO, peer->name,
            "new ClientHello with a valid cookie during an unfinished handshake: replacing "
            "that handshake");
  coap_secure_peer_free(ctx, peer, 0);
  coap_exch_peer_clear(ctx->exch, &peer->exch, 0);
  coap_exch_peer_init(ctx->exch, &peer->exch);
  return 0;
}

/* A tls12_cid record carrying one of our CIDs: its peer, wherever the
 * datagram came from (RFC 9146: found by CID before the address, and
 * before a stranger must bring a ClientHello). NULL otherwise. */
static coap_peer_t *peer_by_cid(coap_context_t *ctx, coap_endpoint_t *ep, const uint8_t *data,
                                size_t len) {
  const uint8_t *cid;
  size_t cid_len = coap_dtls_record_cid(ctx->dtls, data, len, &cid);
  if (!cid_len || !ctx->cid_map.count) return NULL;
  coap_peer_t *peer = coap_cid_map_find(&ctx->cid_map, cid, cid_len);
  return peer && peer->ep == ep && peer->security ? peer : NULL;
}

/* While a handshake runs beside a server's session: an encrypted record
 * (application data, an alert, a tls12_cid record) is the old session's,
 * unless none of it authenticates there: then it may be the new
 * handshake's Finished in a datagram of its own (a flight split by the
 * MTU), and goes to the handshake. Returns 1 when the old session took
 * it. */
static int feed_old_server_session(peer_dtls_t *pd, const uint8_t *data, size_t len, int by_cid,
                                   uint64_t now) {
  coap_context_t *ctx = pd->ctx;
  uint64_t before = coap_dtls_session_authentic(pd->old);
  int rc = coap_dtls_session_input(pd->old, data, len, now);
  if (rc < 0) {
    /* The old session ended (the client closed it): the handshake goes
     * on alone. */
    coap_logf(&ctx->log, COAP_LOG_INFO, pd->peer->name,
              "the session ended while a new handshake runs beside it");
    coap_cid_map_remove(&ctx->cid_map, &pd->cid);
    session_uncount(pd);
    coap_server_peer_gone(&ctx->server, pd->peer);
    coap_exch_peer_clear(ctx->exch, &pd->peer->exch, 0);
    coap_exch_peer_init(ctx->exch, &pd->peer->exch);
    coap_dtls_session_free(pd->old);
    pd->old = NULL;
    return 1;
  }
  if (coap_dtls_session_authentic(pd->old) == before) {
    if (by_cid) coap_dtls_note_cid_forged(ctx->dtls);
    return 0;
  }
  coap_context_peer_active(ctx, pd->peer, now);
  return 1;
}

/* After a datagram on a server's established session: a record in it
 * authenticated (the count |before| rose), and the peer is active; or
 * none did (forged, damaged, replayed), and it was dropped, counted when
 * it named one of our CIDs (|by_cid|). */
static void note_server_rx(peer_dtls_t *pd, uint64_t before, int by_cid, uint64_t now) {
  coap_context_t *ctx = pd->ctx;
  if (coap_dtls_session_authentic(pd->session) != before) {
    coap_context_peer_active(ctx, pd->peer, now);
    return;
  }
  if (by_cid) coap_dtls_note_cid_forged(ctx->dtls);
  coap_logf(&ctx->log, COAP_LOG_DEBUG, pd->peer->name,
            "no record of the datagram authenticated (forged, damaged or replayed): dropped, "
            "not taken as the peer's activity");
}

/* One datagram for an established session, with its source noted for the
 * session's on_fresh (a move) and the budget of an unconfirmed address. */
static int input_to_session(peer_dtls_t *pd, const coap_address_t *from,
                            const coap_address_t *local, const uint8_t *data, size_t len,
                            uint64_t now) {
  if (pd->unconfirmed && coap_address_equal(from, &pd->peer->addr)) pd->unconfirmed_in += len;
  pd->rx_from = from;
  pd->rx_local = local;
  pd->rx_len = len;
  int rc = coap_dtls_session_input(pd->session, data, len, now);
  pd->rx_from = pd->rx_local = NULL;
  return rc;
}

int coap_secure_input(coap_context_t *ctx, coap_endpoint_t *ep, const coap_address_t *from,
                      const coap_address_t *local, const uint8_t *data, size_t len, uint64_t now) {
  coap_peer_t *peer = peer_by_cid(ctx, ep, data, len);
  int by_cid = peer != NULL;
  if (!peer) peer = coap_peer_table_find(&ctx->peers, ep, from);
  peer_dtls_t *pd = peer ? peer->security : NULL;
  if (pd && !coap_dtls_session_is_client(pd->session) &&
      (coap_dtls_session_established(pd->session) || server_beside(pd)) &&
      coap_dtls_is_client_hello(data, len) &&
      hello_on_session(ctx, ep, peer, from, local, data, len, now))
    return 0;
  if (pd && !coap_dtls_session_is_client(pd->session) && coap_dtls_is_client_hello(data, len) &&
      another_hello(pd, data, len)) {
    if (hello_on_handshake(ctx, ep, peer, from, local, data, len)) return 0;
    pd = NULL;
  }
  if (!pd) return accept_new(ctx, ep, from, local, data, len, now);
  if (server_beside(pd) && !coap_dtls_is_client_hello(data, len) && data[0] != 22 &&
      data[0] != 20 && feed_old_server_session(pd, data, len, by_cid, now))
    return 0;
  /* A server's established session takes only an authenticated record as
   * a sign of its peer's life (below): anyone can send a datagram from
   * its address or with its CID, and that must neither keep it from
   * idle expiry or eviction nor move it. A handshake has its own
   * deadline. */
  int beside = server_beside(pd);
  int server_session = !coap_dtls_session_is_client(pd->session) &&
                       (coap_dtls_session_established(pd->session) || beside);
  /* The same for a client's established session and its server. */
  int client_session = coap_dtls_session_is_client(pd->session) &&
                       coap_dtls_session_established(pd->session) && !pd->old;
  if (!server_session && !client_session) coap_context_peer_active(ctx, peer, now);
  if (answered_by_plain_coap(pd, data, len, now)) return COAP_E_WRONG_PROTOCOL;
  /* A client's established session hears its server only in records that
   * authenticate (on_data): anyone can send a datagram from the server's
   * address, and one that did must not hide the server's silence (a lost
   * session) from reconnect_if_silent. */
  if (!coap_dtls_session_is_client(pd->session) || !coap_dtls_session_established(pd->session) ||
      pd->old)
    peer_spoke(pd, now);
  if (coap_dtls_session_is_client(pd->session) && coap_dtls_session_established(pd->session) &&
      len > 13 && data[0] == 22 && !data[3] && !data[4] && data[13] == 3)
    return 0; /* a HelloVerifyRequest: the late answer to an abandoned hello */
  if (pd->old && !server_beside(pd) && !coap_dtls_session_established(pd->session) &&
      data[0] != 22 && data[0] != 20 && coap_dtls_looks_like_record(data, len)) {
    /* Encrypted records while a handshake runs beside the old session
     * are the old session's. */
    pd->feeding_old = 1;
    pd->old_spoke = 0;
    (void)coap_dtls_session_input(pd->old, data, len, now);
    pd->feeding_old = 0;
    if (pd->old_spoke) abandon_beside(pd);
    return 0;
  }
  uint64_t authentic = coap_dtls_session_authentic(pd->session);
  int rc = input_to_session(pd, from, local, data, len, now);
  if (rc < 0) {
    session_ended(pd, rc, now);
    return rc;
  }
  /* (A datagram of the handshake beside the session counts once that
   * completes.) */
  if (server_session && (!beside || coap_dtls_session_established(pd->session)))
    note_server_rx(pd, authentic, by_cid, now);
  else if (client_session && coap_dtls_session_authentic(pd->session) != authentic)
    coap_context_peer_active(ctx, pd->peer, now);
  return arm_or_end(pd, now);
}

int coap_secure_handshaking(const coap_peer_t *peer) {
  const peer_dtls_t *pd = peer->security;
  return pd && !coap_dtls_session_established(pd->session);
}

int coap_secure_give_up(coap_context_t *ctx, coap_peer_t *peer, uint64_t now) {
  peer_dtls_t *pd = peer->security;
  if (!pd || coap_dtls_session_established(pd->session)) return 0;
  session_ended(pd, coap_dtls_session_give_up(pd->session, now), now);
  return 1;
}

/* A client's handshake ends: nothing listens on the server's port (the
 * ICMP errors say so). */
static void end_unreachable(peer_dtls_t *pd, uint64_t now) {
  coap_peer_t *peer = pd->peer;
  coap_diag_t g;
  coap_diag_begin(&g, COAP_CAUSE_PORT_UNREACHABLE, COAP_STEP_HELLO, COAP_DETECTED_NETWORK,
                  COAP_E_UNREACHABLE);
  if (pd->unreachable_seen > 1)
    coap_diag_explain(&g,
                      "ICMP port unreachable from %s: nothing listens on UDP port %u there (%u "
                      "errors, no answer in between)",
                      peer->name, coap_address_get_port(&peer->addr), pd->unreachable_seen);
  else
    coap_diag_explain(&g, "ICMP port unreachable from %s: nothing listens on UDP port %u there",
                      peer->name, coap_address_get_port(&peer->addr));
  g.flights = coap_dtls_session_flights(pd->session);
  g.elapsed_ms = coap_dtls_session_elapsed(pd->session, now);
  session_ended_with(pd, &g, now);
}

int coap_secure_unreachable(coap_context_t *ctx, coap_peer_t *peer, uint64_t now) {
  peer_dtls_t *pd = peer->security;
  if (!pd) return 0;
  int established = coap_dtls_session_established(pd->session);
  /* A server does not end a handshake on ICMP (forgeable, and it often
   * races the client's own alert, which says more); the handshake times
   * out if the client is really gone. An established session's client is
   * gone: its requests (CON notifications) fail. */
  if (!coap_dtls_session_is_client(pd->session)) return !established;
  /* A server we never had a session with: nothing listens there (a wrong
   * port, a server not started): said at once. */
  if (!established && !coap_dtls_session_offers_resumption(pd->session)) {
    pd->unreachable_seen++;
    end_unreachable(pd, now);
    return 1;
  }
  /* This server listened there before (our session with it, or the one
   * our hello resumes), and now its port is closed: a server restarting
   * or being upgraded, most likely, back within a CON's retransmissions
   * (with its sessions, from a state file) or a handshake's resends.
   * RFC 7252 §4.2 lets an unreachable error fail a request only after
   * vetting, and an ICMP error is no proof the server is gone for good:
   * the session (or handshake) and the requests are kept, the resends go
   * on, for COAP_RESTART_GRACE_MS: an error after that ends them with the
   * cause (and a handshake's deadline passing with ICMP errors the last
   * thing heard: timer_fired). */
  pd->unreachable_seen++;
  if (!pd->unreachable_since) pd->unreachable_since = now ? now : 1;
  if (now - pd->unreachable_since >= COAP_RESTART_GRACE_MS) {
    /* Closed too long for a restart: the requests end. */
    if (!established) end_unreachable(pd, now);
    return !established;
  }
  coap_logf(&ctx->log, COAP_LOG_INFO, peer->name,
            "ICMP port unreachable: nothing listens on UDP port %u there now (a server "
            "restart?); the %s and the requests are kept, resent as usual (%u error%s since it "
            "last spoke)",
            coap_address_get_port(&peer->addr), established ? "session" : "resuming handshake",
            pd->unreachable_seen, pd->unreachable_seen == 1 ? "" : "s");
  return 1;
}

/* ---- sessions carried across a restart (sessions_state.c) ---- */

static void put_u16(uint8_t *p, size_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

/* One entry: the worker (1), the endpoint's port (2), the peer's address
 * (size, bytes), the session (length (2), bytes). Its length, 0 when the
 * peer's session is not carried (|tally| says why), or -1 when |cap| is
 * too small. */
static long export_peer(coap_peer_t *peer, uint64_t margin, uint8_t worker, uint8_t *out,
                        size_t cap, coap_sessions_tally_t *tally) {
  peer_dtls_t *pd = peer->security;
  if (!pd || !pd->session) return 0;
  if (coap_dtls_session_is_client(pd->session)) {
    tally->client++;
    return 0;
  }
  /* A new handshake beside the old session: the client is about to
   * leave the old one, and the new one has no keys yet. */
  if (pd->old || !coap_dtls_session_established(pd->session)) {
    tally->handshaking++;
    return 0;
  }
  size_t head = 1 + 2 + 1 + peer->addr.size + 2;
  if (peer->addr.size > sizeof peer->addr.addr.st) return 0;
  if (cap < head + COAP_DTLS_SESSION_SAVED_MAX) return -1;
  int n = coap_dtls_session_save(pd->session, margin, out + head, cap - head);
  if (n < 0) {
    tally->on_gnutls++; /* established, but its records still go through GnuTLS */
    return 0;
  }
  pd->export_held = 1; /* ours until the export is settled */
  out[0] = worker;
  put_u16(out + 1, coap_address_get_port(&peer->ep->local));
  out[3] = (uint8_t)peer->addr.size;
  memcpy(out + 4, &peer->addr.addr.st, peer->addr.size);
  put_u16(out + 4 + peer->addr.size, (size_t)n);
  tally->carried++;
  return (long)head + n;
}

long coap_secure_export(coap_context_t *ctx, uint64_t margin, uint8_t worker, uint8_t *out,
                        size_t cap, coap_sessions_tally_t *tally) {
  size_t used = 0;
  for (coap_peer_t *p = coap_peer_table_oldest(&ctx->peers); p; p = coap_peer_newer(p)) {
    long n = export_peer(p, margin, worker, out + used, cap - used, tally);
    if (n < 0) return COAP_E_BUFFER_TOO_SMALL;
    used += (size_t)n;
  }
  return (long)used;
}

int coap_secure_export_held(coap_context_t *ctx) {
  for (coap_peer_t *p = coap_peer_table_oldest(&ctx->peers); p; p = coap_peer_newer(p)) {
    const peer_dtls_t *pd = p->security;
    if (pd && pd->export_held) return 1;
  }
  return 0;
}

void coap_secure_export_settle(coap_context_t *ctx, int kept) {
  for (coap_peer_t *p = coap_peer_table_oldest(&ctx->peers); p; p = coap_peer_newer(p)) {
    peer_dtls_t *pd = p->security;
    if (!pd || !pd->export_held) continue;
    coap_dtls_session_settle_save(pd->session, kept);
    pd->export_held = 0;
    pd->carried = kept; /* its keys are retired: no close_notify, not listed */
  }
}

size_t coap_secure_export_bound(coap_context_t *ctx) {
  return ctx->peers.count * (6 + sizeof(struct sockaddr_storage) + COAP_DTLS_SESSION_SAVED_MAX);
}

int coap_secure_next_entry(const uint8_t *in, size_t len, size_t *at, int with_worker,
                           coap_saved_entry_t *e) {
  const uint8_t *p = in + *at;
  size_t left = len - *at, head = with_worker ? 1 : 0;
  if (left < head + 3 || left < head + 3 + (size_t)p[head + 2] + 2) return COAP_E_INVALID_ARG;
  memset(e, 0, sizeof *e);
  e->worker = with_worker ? p[0] : 0;
  p += head;
  e->port = (uint16_t)(p[0] << 8 | p[1]);
  e->addr.size = p[2];
  if (e->addr.size > sizeof e->addr.addr.st) return COAP_E_INVALID_ARG;
  memcpy(&e->addr.addr.st, p + 3, e->addr.size);
  p += 3 + e->addr.size;
  e->session_len = (size_t)p[0] << 8 | p[1];
  p += 2;
  if (e->session_len > (size_t)(in + len - p)) return COAP_E_INVALID_ARG;
  e->session = p;
  *at = (size_t)(p + e->session_len - in);
  return 0;
}

static coap_endpoint_t *dtls_endpoint(coap_context_t *ctx, uint16_t port) {
  for (coap_endpoint_t *ep = ctx->endpoints; ep; ep = ep->next)
    if (ep->proto == COAP_PROTO_DTLS && !ep->client && coap_address_get_port(&ep->local) == port)
      return ep;
  return NULL;
}

int coap_secure_import_entry(coap_context_t *ctx, const coap_saved_entry_t *e, uint64_t now) {
  if (!ctx->dtls) return COAP_E_STATE;
  coap_endpoint_t *ep = dtls_endpoint(ctx, e->port);
  if (!ep) return COAP_E_NOT_FOUND;
  if (coap_peer_table_find(&ctx->peers, ep, &e->addr)) return COAP_E_EXISTS;
  coap_peer_t *peer;
  int rc = coap_context_peer(ctx, ep, &e->addr, now, &peer);
  if (rc < 0) return rc;
  peer_dtls_t *pd = peer_dtls_new(ctx, peer);
  rc = pd ? coap_dtls_session_restore(ctx->dtls, &session_cb, pd, now, e->session, e->session_len,
                                      &pd->session)
          : COAP_E_NOMEM;
  if (rc < 0) {
    free(pd);
    coap_context_peer_destroy(ctx, peer);
    return rc;
  }
  coap_dtls_session_set_peer_name(pd->session, peer->name);
  peer->security = pd;
  register_cid(pd);
  int mode = coap_dtls_session_mode(pd->session);
  ctx->dtls_sessions_by_mode[mode]++;
  pd->mode_counted = mode + 1;
  return 0;
}
