/* Context life cycle, the datagram path (endpoint → peer → message layer →
 * server/client) and the timers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/abi.h"
#include "common/diag.h"
#include "common/util.h"
#include "context/context_internal.h"

static uint64_t monotonic_ms(void *user) {
  (void)user;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void config_default(coap_context_config_t *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  coap_tx_params_default(&cfg->tx);
  cfg->max_peers = 100000;
  cfg->peer_idle_ms = 300000;
  cfg->peer_evict_ms = 30000;
  cfg->max_payload = 1024;
  cfg->block_size = 1024;
  cfg->max_body = 1u << 20;
  cfg->max_reassembly = 8u << 20;
  cfg->max_observers = 100000;
  cfg->max_observers_per_peer = 64;
  cfg->observe_con_every = 20;
  cfg->observe_con_interval_s = 86400;
  cfg->log_level = COAP_LOG_NONE;
  cfg->rand = coap_system_rand;
  cfg->clock = monotonic_ms;
}

int coap_context_config_default_versioned(int version, coap_context_config_t *cfg) {
  if (!cfg) return COAP_E_INVALID_ARG;
  coap_context_config_t latest;
  config_default(&latest);
  return coap_abi_write(coap_abi_struct(COAP_ABI_CONTEXT_CONFIG), version, &latest, cfg, NULL,
                        "coap_context_config_default");
}

uint64_t coap_context_now(coap_context_t *ctx) {
  uint64_t now = ctx->cfg.clock(ctx->cfg.clock_user);
  if (now > ctx->now) ctx->now = now;
  return ctx->now;
}

/* ---- message-layer callbacks ---- */

static coap_peer_t *peer_of(coap_exch_peer_t *xp) {
  return COAP_CONTAINER_OF(xp, coap_peer_t, exch);
}

static int exch_send(void *user, coap_exch_peer_t *xp, const uint8_t *data, size_t len) {
  coap_context_t *ctx = user;
  coap_peer_t *peer = peer_of(xp);
  if (!ctx->transport.send) return COAP_E_STATE;
  if (peer->ep->proto == COAP_PROTO_DTLS) return coap_secure_send(ctx, peer, data, len);
  if (!peer->rx && !peer->first_tx) peer->first_tx = ctx->now ? ctx->now : 1;
  int rc = coap_context_send_to_peer(ctx, peer, data, len);
  coap_context_plain_probe(ctx, peer);
  return rc;
}

int coap_context_send_to_peer(coap_context_t *ctx, coap_peer_t *peer, const uint8_t *data,
                              size_t len) {
  ctx->tx_datagrams++;
  ctx->tx_bytes += len;
  coap_address_t local;
  if (peer->local_family && ctx->transport.send_from &&
      coap_peer_get_local(peer, coap_address_get_port(&peer->ep->local), &local))
    return ctx->transport.send_from(ctx->transport_user, peer->ep, &local, &peer->addr, data, len);
  return ctx->transport.send(ctx->transport_user, peer->ep, &peer->addr, data, len);
}

static void exch_trace(void *user, coap_exch_peer_t *xp, int outgoing, const coap_msg_t *msg) {
  coap_context_t *ctx = user;
  if (ctx->trace) ctx->trace(ctx->trace_user, outgoing, &peer_of(xp)->addr, msg);
}

static const char *exch_peer_name(void *user, const coap_exch_peer_t *xp) {
  (void)user;
  return peer_of((coap_exch_peer_t *)xp)->name;
}

static coap_deferred_t *defer_request(const coap_request_t *req, coap_response_t *resp,
                                      coap_response_t **deferred_resp) {
  coap_context_t *ctx = req->ctx;
  coap_deferred_t *d = calloc(1, sizeof(*d));
  if (!d) return NULL;
  d->in = req->defer_user;
  /* The deferred answer starts afresh in its own storage, with the same
   * limits (a large body gets a buffer of its own). */
  coap_response_init(&d->resp, req->msg, d->store, sizeof d->store);
  coap_response_set_limits(&d->resp, &d->body, resp->max_body, resp->szx_max);
  d->resp.asked = resp->asked;
  d->next = ctx->deferred;
  if (d->next) d->next->prev = d;
  ctx->deferred = d;
  coap_exch_in_set_user(d->in, d);
  *deferred_resp = &d->resp;
  return d;
}

static void deferred_unlink(coap_context_t *ctx, coap_deferred_t *d) {
  if (d->prev)
    d->prev->next = d->next;
  else
    ctx->deferred = d->next;
  if (d->next) d->next->prev = d->prev;
  free(d->body.data);
  free(d);
}

/* ---- Observe: what the server's observer registry asks of us ---- */

static int obs_send(void *user, const void *peer_key, int con, uint8_t code, const uint8_t *token,
                    uint8_t token_len, const uint8_t *rest, size_t rest_len, coap_observer_t *obs,
                    void **handle, uint16_t *mid) {
  coap_context_t *ctx = user;
  coap_peer_t *peer = (coap_peer_t *)peer_key;
  coap_exch_out_t *out = NULL;
  int rc =
      coap_exch_notify(ctx->exch, &peer->exch, con ? COAP_TYPE_CON : COAP_TYPE_NON, code, token,
                       token_len, rest, rest_len, obs, &out, mid, coap_context_now(ctx));
  if (handle) *handle = out;
  if (rc < 0)
    coap_logf(&ctx->log, COAP_LOG_WARNING, peer->name, "could not send a notification: %s",
              coap_strerror(rc));
  return rc;
}

static void obs_cancel(void *user, void *handle) {
  coap_context_t *ctx = user;
  coap_exch_cancel(ctx->exch, handle);
}

static int obs_replace(void *user, void *handle, uint8_t code, const uint8_t *rest, size_t rest_len,
                       uint16_t *mid) {
  coap_context_t *ctx = user;
  return coap_exch_notify_replace(ctx->exch, handle, code, rest, rest_len, mid);
}

static int obs_retransmitting(void *user, void *handle) {
  return coap_exch_notify_retransmitting(handle);
}

static const coap_address_t *obs_peer_addr(void *user, const void *peer_key) {
  return &((const coap_peer_t *)peer_key)->addr;
}

static uint64_t obs_now(void *user) {
  return coap_context_now(user);
}

static const coap_obs_ops_t obs_ops = {
    .send = obs_send,
    .cancel = obs_cancel,
    .replace = obs_replace,
    .retransmitting = obs_retransmitting,
    .peer_addr = obs_peer_addr,
    .now = obs_now,
};

static void exch_notify_done(void *user, void *notify_user, int err, uint64_t now) {
  coap_context_t *ctx = user;
  coap_observe_con_done(&ctx->server, notify_user, err);
}

static void exch_on_reset(void *user, coap_exch_peer_t *xp, uint16_t mid, uint64_t now) {
  coap_context_t *ctx = user;
  if (coap_observe_reset(&ctx->server, peer_of(xp), mid))
    coap_logf(&ctx->log, COAP_LOG_DEBUG, peer_of(xp)->name,
              "RST to a notification: observer removed");
}

/* The largest block (as SZX) an answer to |peer| may carry: the
 * configured block_size and, over DTLS, what one record holds at the MTU
 * with room for the CoAP header and options. */
#define COAP_HEADER_ROOM 128
static uint8_t response_szx(const coap_context_t *ctx, const coap_peer_t *peer) {
  uint8_t szx = coap_block_szx_for(ctx->cfg.block_size ? ctx->cfg.block_size : 1024);
  if (peer->ep->proto != COAP_PROTO_DTLS || !ctx->dtls) return szx;
  size_t room = coap_dtls_record_room(ctx->dtls);
  room = room > COAP_HEADER_ROOM + 16 ? room - COAP_HEADER_ROOM : 16;
  while (szx > 0 && coap_block_size(szx) > room) szx--;
  return szx;
}

/* No-Response (RFC 7967): the classes the request does not want
 * answered (0..1 byte; 0, absent or malformed: none). */
static uint8_t no_response_bits(const coap_msg_t *msg) {
  const coap_option_t *o = coap_msg_find_option(msg, COAP_OPTION_NO_RESPONSE);
  if (!o || o->length > 1) return 0;
  return o->length ? o->value[0] : 0;
}

/* Is |resp| of a class the request said not to send? The option is
 * about the request's final answer (RFC 7967 §2.1): a 2.31 Continue,
 * which asks the client for its next Block1 block, is part of the
 * transfer and always goes. */
static int suppressed(uint8_t no_response, const coap_msg_t *resp) {
  unsigned cls = COAP_CODE_CLASS(resp->code);
  if (!no_response || resp->code == COAP_CONTINUE || cls < 1 || cls > 7) return 0;
  return (no_response >> (cls - 1)) & 1;
}

static void exch_on_request(void *user, coap_exch_peer_t *xp, coap_exch_in_t *in,
                            const coap_msg_t *msg, uint64_t now) {
  coap_context_t *ctx = user;
  coap_peer_t *peer = peer_of(xp);
  coap_request_t req = {
      .ctx = ctx,
      .msg = msg,
      .peer = &peer->addr,
      .proto = peer->ep->proto,
      .peer_key = peer,
      .session_key = peer->security,
      .now = now,
      .defer = defer_request,
      .defer_user = in,
  };
  if (!ctx->resp_store && !(ctx->resp_store = malloc(COAP_RESPONSE_STORE))) {
    coap_logf(&ctx->log, COAP_LOG_WARNING, peer->name,
              "out of memory for a response: request dropped (the client retransmits)");
    return;
  }
  coap_response_t resp;
  coap_response_init(&resp, msg, ctx->resp_store, COAP_RESPONSE_STORE);
  coap_response_set_limits(&resp, &ctx->resp_body, ctx->cfg.max_body, response_szx(ctx, peer));
  coap_server_dispatch(&ctx->server, &req, &resp);
  uint8_t no_response = no_response_bits(msg);
  if (resp.silent) { /* a Q-Block1 block mid-set: no answer (a CON gets its ACK) */
    coap_exch_drop(ctx->exch, in);
    return;
  }
  if (req.deferred) {
    req.deferred->no_response = no_response;
    return;
  }
  if (suppressed(no_response, &resp.msg)) {
    coap_exch_drop(ctx->exch, in); /* a CON still gets its empty ACK */
    return;
  }
  int rc = coap_exch_respond(ctx->exch, in, &resp.msg, now);
  if (rc < 0)
    coap_logf(&ctx->log, COAP_LOG_WARNING, peer->name, "could not send the response: %s",
              coap_strerror(rc));
  else /* Q-Block2 (RFC 9177): the rest of the set, after its first block */
    coap_qblock2_burst(&ctx->server, peer, msg, &resp);
}

coap_response_t *coap_deferred_response(coap_deferred_t *d) {
  return d ? &d->resp : NULL;
}

int coap_deferred_send(coap_context_t *ctx, coap_deferred_t *d) {
  if (!ctx || !d) return COAP_E_INVALID_ARG;
  /* Kept, like a synchronous answer, when it goes block-wise. */
  coap_b1_deferred_answered(&ctx->server, &d->resp, coap_context_now(ctx));
  coap_response_finish(&d->resp);
  int rc = 0;
  if (suppressed(d->no_response, &d->resp.msg))
    coap_exch_drop(ctx->exch, d->in);
  else
    rc = coap_exch_respond(ctx->exch, d->in, &d->resp.msg, coap_context_now(ctx));
  deferred_unlink(ctx, d);
  return rc;
}

/* ---- peers ---- */

static void peer_idle_check(coap_timer_t *t, uint64_t now, void *user);

/* Nothing open with |peer|: no exchange, no Block1 body, no answer kept
 * for its later blocks, no observation (an observer whose client vanished
 * goes when a CON notification is not acknowledged). */
static int peer_idle(const coap_context_t *ctx, const coap_peer_t *peer) {
  return coap_exch_peer_idle(&peer->exch) && !coap_server_peer_busy(&ctx->server, peer) &&
         !coap_observe_peer_busy(&ctx->server, peer);
}

static void peer_teardown(coap_context_t *ctx, coap_peer_t *peer, int send_close) {
  coap_timer_cancel(&ctx->timers, &peer->idle_timer);
  coap_secure_peer_free(ctx, peer, send_close);
  /* Its observations first (silently, their CONs cancelled): the message
   * layer's tear-down must not find notifications to end. */
  coap_server_peer_gone(&ctx->server, peer);
  coap_exch_peer_clear(ctx->exch, &peer->exch, 0);
  coap_peer_table_remove(&ctx->peers, peer);
}

static void peer_destroy(coap_context_t *ctx, coap_peer_t *peer) {
  peer_teardown(ctx, peer, 1);
}

void coap_context_peer_forget(coap_context_t *ctx, coap_peer_t *peer) {
  coap_logf(&ctx->log, COAP_LOG_INFO, peer->name,
            "forgotten: its address now belongs to another DTLS session (Connection ID)");
  peer_teardown(ctx, peer, 0);
}

void coap_context_peer_destroy(coap_context_t *ctx, coap_peer_t *peer) {
  peer_destroy(ctx, peer);
}

/* Fires at last_active + idle; a peer that was active since, or still has
 * exchanges open, gets another period. */
static void peer_idle_check(coap_timer_t *t, uint64_t now, void *user) {
  coap_context_t *ctx = user;
  coap_peer_t *peer = COAP_CONTAINER_OF(t, coap_peer_t, idle_timer);
  uint64_t due = peer->last_active + ctx->cfg.peer_idle_ms;
  if (due > now || !peer_idle(ctx, peer)) {
    coap_timer_arm(&ctx->timers, t, due > now ? due : now + ctx->cfg.peer_idle_ms);
    return;
  }
  coap_logf(&ctx->log, COAP_LOG_DEBUG, peer->name, "idle, forgotten");
  peer_destroy(ctx, peer);
}

void coap_context_peer_active(coap_context_t *ctx, coap_peer_t *peer, uint64_t now) {
  peer->last_active = now;
  coap_peer_table_touch(&ctx->peers, peer);
}

/* How many of the least recent peers a newcomer looks at for one to evict:
 * a few with exchanges still open (a deferred response, say) must not
 * block eviction, and a bound keeps the cost per datagram constant. */
#define EVICT_CANDIDATES 8

/* The table is full: forget the peer silent longest, if it has been silent
 * for peer_evict_ms and has nothing open. Returns 1 if room was made. */
static int evict_silent_peer(coap_context_t *ctx, uint64_t now) {
  uint32_t min_silence = ctx->cfg.peer_evict_ms;
  if (!min_silence) return 0;
  coap_peer_t *p = coap_peer_table_oldest(&ctx->peers);
  for (int i = 0; p && i < EVICT_CANDIDATES; i++, p = coap_peer_newer(p)) {
    /* Oldest first: once one is too recent, so are the rest. */
    if (now < p->last_active + min_silence) return 0;
    if (!peer_idle(ctx, p)) continue;
    ctx->peers_evicted++;
    if (!ctx->peers_evict_logged)
      coap_logf(&ctx->log, COAP_LOG_WARNING, NULL,
                "peer limit (%zu) reached: each new peer replaces the one silent "
                "longest (silent for %u s or more; raise max_peers to keep more)",
                ctx->cfg.max_peers, (unsigned)(min_silence / 1000));
    ctx->peers_evict_logged = 1;
    coap_logf(&ctx->log, COAP_LOG_DEBUG, p->name, "silent longest, forgotten to make room");
    peer_destroy(ctx, p);
    return 1;
  }
  return 0;
}

/* The peer at (ep, addr) into *out, made if new: 0, COAP_E_LIMIT (the
 * table is full) or COAP_E_NOMEM (no memory for the entry or its timer):
 * a program told "limit" would raise max_peers to no avail. */
static int find_or_add_peer(coap_context_t *ctx, coap_endpoint_t *ep, const coap_address_t *addr,
                            uint64_t now, int may_evict, coap_peer_t **out) {
  coap_peer_t *peer = *out = coap_peer_table_find(&ctx->peers, ep, addr);
  if (peer) {
    /* A datagram from a server of ours is its activity only once it
     * matched an exchange (coap_context_input_to) or authenticated. */
    if (!(may_evict && peer->asked)) coap_context_peer_active(ctx, peer, now);
    return 0;
  }
  if (ctx->peers.count >= ctx->cfg.max_peers && !(may_evict && evict_silent_peer(ctx, now))) {
    ctx->peers_rejected++;
    if (!ctx->peers_full_logged)
      coap_logf(&ctx->log, COAP_LOG_WARNING, NULL,
                "peer limit (%zu) reached and no peer silent long enough to make "
                "room: datagrams from new peers are dropped (raise max_peers)",
                ctx->cfg.max_peers);
    ctx->peers_full_logged = 1;
    return COAP_E_LIMIT;
  }
  peer = coap_peer_table_add(&ctx->peers, ep, addr);
  if (!peer) return COAP_E_NOMEM;
  char text[sizeof peer->name - 2];
  coap_address_format(addr, text, sizeof text);
  snprintf(peer->name, sizeof peer->name, "[%s]", text);
  coap_exch_peer_init(ctx->exch, &peer->exch);
  peer->last_active = now;
  coap_timer_init(&peer->idle_timer, peer_idle_check, ctx);
  if (coap_timer_arm(&ctx->timers, &peer->idle_timer, now + ctx->cfg.peer_idle_ms) < 0) {
    coap_exch_peer_clear(ctx->exch, &peer->exch, 0);
    coap_peer_table_remove(&ctx->peers, peer);
    return COAP_E_NOMEM;
  }
  *out = peer;
  return 0;
}

int coap_context_peer(coap_context_t *ctx, coap_endpoint_t *ep, const coap_address_t *addr,
                      uint64_t now, coap_peer_t **out) {
  return find_or_add_peer(ctx, ep, addr, now, 0, out);
}

int coap_context_peer_for_input(coap_context_t *ctx, coap_endpoint_t *ep,
                                const coap_address_t *addr, uint64_t now, coap_peer_t **out) {
  return find_or_add_peer(ctx, ep, addr, now, 1, out);
}

/* ---- life cycle ---- */

/* A configuration from a caller written before Observe has zeros there,
 * which mean nothing: the defaults. */
static void observe_defaults(coap_context_config_t *c) {
  if (!c->max_observers) c->max_observers = 100000;
  if (!c->max_observers_per_peer) c->max_observers_per_peer = 64;
  if (!c->observe_con_every) c->observe_con_every = 20;
  if (!c->observe_con_interval_s) c->observe_con_interval_s = 86400;
}

coap_context_t *coap_context_create(int version, const coap_context_config_t *cfg,
                                    const coap_shell_t *shell) {
  /* The version is checked even without |cfg|: a wrong one is a build
   * mismatch the caller should hear of at once. */
  const char *fn = "coap_context_new";
  const coap_abi_struct_t *abi = coap_abi_struct(COAP_ABI_CONTEXT_CONFIG);
  coap_context_config_t latest;
  config_default(&latest);
  if (!coap_abi_len(abi, version, NULL, fn) ||
      (cfg && coap_abi_read(abi, version, cfg, &latest, NULL, fn) < 0)) {
    errno = EINVAL;
    return NULL;
  }
  coap_context_t *ctx = calloc(1, sizeof(*ctx));
  if (!ctx) return NULL;
  ctx->cfg = latest;
  if (!ctx->cfg.rand) ctx->cfg.rand = coap_system_rand;
  if (!ctx->cfg.clock) ctx->cfg.clock = monotonic_ms;
  ctx->shell = shell;
  if (!ctx->cfg.resolve && shell) ctx->cfg.resolve = shell->resolve;
  observe_defaults(&ctx->cfg);
  ctx->log =
      (coap_logger_t){.fn = ctx->cfg.log, .user = ctx->cfg.log_user, .level = ctx->cfg.log_level};
  coap_timer_heap_init(&ctx->timers);
  static const coap_exch_callbacks_t cb = {
      .send = exch_send,
      .on_request = exch_on_request,
      .on_response = coap_client_on_response,
      .on_trace = exch_trace,
      .peer_name = exch_peer_name,
      .on_notify_done = exch_notify_done,
      .on_reset = exch_on_reset,
  };
  uint64_t seed;
  ctx->cfg.rand(ctx->cfg.rand_user, (uint8_t *)&seed, sizeof seed);
  ctx->exch = coap_exch_new(&ctx->cfg.tx, &cb, ctx, &ctx->timers, &ctx->log, ctx->cfg.rand,
                            ctx->cfg.rand_user);
  coap_client_init(&ctx->client, ctx, coap_context_client_ops(), &ctx->cfg, &ctx->timers, ctx->exch,
                   &ctx->peers, &ctx->log, ctx->last_error, sizeof ctx->last_error);
  if (!ctx->exch || coap_peer_table_init(&ctx->peers, seed) < 0 ||
      coap_server_init(&ctx->server, ctx->cfg.max_payload, &ctx->log) < 0) {
    coap_context_free(ctx);
    return NULL;
  }
  coap_server_configure(&ctx->server, &ctx->cfg, &ctx->timers);
  coap_observe_set_ops(&ctx->server, &obs_ops, ctx, ctx);
  ctx->now = coap_context_now(ctx);
  return ctx;
}

void coap_context_free(coap_context_t *ctx) {
  if (!ctx) return;
  coap_client_free(&ctx->client);
  while (ctx->deferred) deferred_unlink(ctx, ctx->deferred);
  if (ctx->peers.buckets) {
    coap_peer_t *p;
    size_t cursor = 0;
    while ((p = coap_peer_table_any(&ctx->peers, &cursor))) peer_destroy(ctx, p);
  }
  coap_peer_table_free(&ctx->peers);
  if (ctx->shell_state_free) ctx->shell_state_free(ctx->shell_state);
  while (ctx->endpoints) {
    coap_endpoint_t *next = ctx->endpoints->next;
    free(ctx->endpoints);
    ctx->endpoints = next;
  }
  coap_context_free_retired(ctx);
  coap_server_free(&ctx->server);
  free(ctx->resp_store);
  free(ctx->resp_body.data);
  coap_dtls_context_free(ctx->dtls);
  coap_dtls_context_free(ctx->dtls_spare);
  coap_exch_free(ctx->exch);
  coap_timer_heap_free(&ctx->timers);
  free(ctx);
}

int coap_context_set_tx_params_versioned(coap_context_t *ctx, int version,
                                         const coap_tx_params_t *given) {
  if (!ctx || !given) return COAP_E_INVALID_ARG;
  coap_tx_params_t latest = ctx->cfg.tx, *p = &latest;
  if (coap_abi_read(coap_abi_struct(COAP_ABI_TX_PARAMS), version, given, p, &ctx->log,
                    "coap_context_set_tx_params") < 0)
    return COAP_E_INVALID_ARG;
  if (p->ack_timeout_ms == 0 || p->ack_random_factor_pm < 1000 || p->nstart == 0 ||
      p->token_len < 1 || p->token_len > 8)
    return COAP_E_INVALID_ARG;
  ctx->cfg.tx = *p;
  coap_exch_set_params(ctx->exch, p);
  return 0;
}

void coap_context_set_log_level(coap_context_t *ctx, coap_log_level_t level) {
  if (!ctx) return;
  ctx->cfg.log_level = level;
  ctx->log.level = level;
}

void coap_context_set_trace(coap_context_t *ctx, coap_trace_fn fn, void *user) {
  if (!ctx) return;
  ctx->trace = fn;
  ctx->trace_user = user;
}

/* ---- transport ---- */

int coap_context_set_transport_versioned(coap_context_t *ctx, int version,
                                         const coap_transport_t *t, void *user) {
  if (!ctx || !t) return COAP_E_INVALID_ARG;
  coap_transport_t latest = {0};
  if (coap_abi_read(coap_abi_struct(COAP_ABI_TRANSPORT), version, t, &latest, &ctx->log,
                    "coap_context_set_transport") < 0)
    return COAP_E_INVALID_ARG;
  ctx->transport = latest;
  ctx->transport_user = user;
  return 0;
}

coap_endpoint_t *coap_context_add_endpoint(coap_context_t *ctx, coap_proto_t proto,
                                           const coap_address_t *local) {
  if (!ctx) return NULL;
  coap_endpoint_t *ep = calloc(1, sizeof(*ep));
  if (!ep) return NULL;
  ep->proto = proto;
  if (local) ep->local = *local;
  ep->next = ctx->endpoints;
  ctx->endpoints = ep;
  return ep;
}

coap_proto_t coap_endpoint_proto(const coap_endpoint_t *ep) {
  return ep ? ep->proto : COAP_PROTO_UDP;
}
const coap_address_t *coap_endpoint_address(const coap_endpoint_t *ep) {
  if (!ep) return NULL;
  return &ep->local;
}
void coap_endpoint_set_transport_data(coap_endpoint_t *ep, void *data) {
  if (!ep) return;
  ep->transport_data = data;
}
void *coap_endpoint_transport_data(const coap_endpoint_t *ep) {
  if (!ep) return NULL;
  return ep->transport_data;
}

int coap_context_input(coap_context_t *ctx, coap_endpoint_t *ep, const coap_address_t *from,
                       const uint8_t *data, size_t len, uint64_t now_ms) {
  return coap_context_input_to(ctx, ep, from, NULL, data, len, now_ms);
}

int coap_context_input_to(coap_context_t *ctx, coap_endpoint_t *ep, const coap_address_t *from,
                          const coap_address_t *local, const uint8_t *data, size_t len,
                          uint64_t now_ms) {
  if (!ctx || !ep || !from || (!data && len)) return COAP_E_INVALID_ARG;
  if (now_ms > ctx->now) ctx->now = now_ms;
  if (ctx->retired) coap_context_free_retired(ctx);
  ctx->rx_datagrams++;
  ctx->rx_bytes += len;
  if (ep->proto == COAP_PROTO_DTLS)
    return coap_secure_input(ctx, ep, from, local, data, len, now_ms);
  if (ep->client && coap_secure_probe_answer(ctx, from, data, len, now_ms)) return 0;
  if (coap_context_plain_sees_dtls(ctx, ep, from, data, len, now_ms)) return 0;
  coap_peer_t *peer;
  int rc = coap_context_peer_for_input(ctx, ep, from, now_ms, &peer);
  if (rc < 0) return rc;
  coap_peer_set_local(peer, local); /* coap://: where it spoke last */
  if (peer->rx < UINT32_MAX) peer->rx++;
  peer->tx_unanswered = 0;
  peer->unreachable_since = 0;
  uint32_t matched = peer->exch.matched;
  rc = coap_exch_receive(ctx->exch, &peer->exch, data, len, now_ms);
  /* A server of ours shows it is alive only in a datagram that matches
   * one of our exchanges: anyone can send one from its address, and that
   * must not keep its entry from idle expiry or eviction. */
  if (peer->asked && peer->exch.matched != matched) coap_context_peer_active(ctx, peer, now_ms);
  return rc;
}

/* coap://: a server that answered us before (it spoke), whose port has
 * been closed for less than COAP_RESTART_GRACE_MS, and that observes
 * nothing here (so no notification of ours is among the exchanges kept:
 * an observer that is gone ends at once): most likely restarting, as
 * coap_secure_unreachable says for coaps://. Returns 1 when the requests
 * go on. */
static int plain_restart_likely(coap_context_t *ctx, coap_peer_t *peer, uint64_t now) {
  if (!peer->rx || coap_observe_peer_busy(&ctx->server, peer)) return 0;
  if (!peer->unreachable_since) peer->unreachable_since = now ? now : 1;
  if (now - peer->unreachable_since >= COAP_RESTART_GRACE_MS) return 0;
  coap_logf(&ctx->log, COAP_LOG_INFO, peer->name,
            "ICMP port unreachable: nothing listens on UDP port %u there now (a server "
            "restart?); the requests are kept, resent as usual",
            coap_address_get_port(&peer->addr));
  return 1;
}

/* An ICMP port unreachable for |peer|, taken as true. */
static void peer_unreachable(coap_context_t *ctx, coap_endpoint_t *ep, coap_peer_t *peer,
                             uint64_t now_ms) {
  if (now_ms > ctx->now) ctx->now = now_ms;
  if (ep->proto == COAP_PROTO_DTLS && coap_secure_unreachable(ctx, peer, now_ms)) return;
  if (ep->proto != COAP_PROTO_DTLS && plain_restart_likely(ctx, peer, now_ms)) return;
  if (coap_exch_peer_idle(&peer->exch)) return;
  coap_diag_t g;
  coap_diag_begin(&g, COAP_CAUSE_PORT_UNREACHABLE, COAP_STEP_NONE, COAP_DETECTED_NETWORK,
                  COAP_E_UNREACHABLE);
  coap_diag_explain(&g, "ICMP port unreachable from %s: nothing listens on UDP port %u there",
                    peer->name, coap_address_get_port(&peer->addr));
  coap_context_note_failure(ctx, &g, peer->name, now_ms);
  coap_context_fail_peer(ctx, peer, COAP_E_UNREACHABLE, now_ms);
}

void coap_context_input_unreachable(coap_context_t *ctx, coap_endpoint_t *ep,
                                    const coap_address_t *to, uint64_t now_ms) {
  if (!ctx || !ep || !to) return;
  coap_peer_t *peer = coap_peer_table_find(&ctx->peers, ep, to);
  if (peer) peer_unreachable(ctx, ep, peer, now_ms);
}

/* RFC 7252 §4.2 and §4.3: an ICMP error is acted upon only after vetting.
 * An off-path attacker who knows our peer's address can forge one, but
 * not the start of a datagram we sent: a coap:// message in flight (its
 * header and token), or a coaps:// record among the latest we sent (its
 * epoch and sequence number). */
int coap_context_input_icmp(coap_context_t *ctx, coap_endpoint_t *ep, const coap_address_t *to,
                            const uint8_t *quoted, size_t len, uint64_t now_ms) {
  if (!ctx || !ep || !to || (!quoted && len)) return COAP_E_INVALID_ARG;
  coap_peer_t *peer = coap_peer_table_find(&ctx->peers, ep, to);
  int ours = peer && (ep->proto == COAP_PROTO_DTLS ? coap_secure_sent(peer, quoted, len)
                                                   : coap_exch_peer_sent(&peer->exch, quoted, len));
  if (!ours) {
    ctx->icmp_unvetted++;
    coap_logf(&ctx->log, COAP_LOG_DEBUG, peer ? peer->name : NULL,
              "ICMP error ignored: it quotes %zu bytes of no datagram we sent there lately", len);
    return 0;
  }
  ctx->icmp_vetted++;
  peer_unreachable(ctx, ep, peer, now_ms);
  return 1;
}

uint64_t coap_context_next_timeout(const coap_context_t *ctx) {
  if (!ctx) return UINT64_MAX;
  return coap_timer_heap_next(&ctx->timers);
}

void coap_context_handle_timeouts(coap_context_t *ctx, uint64_t now_ms) {
  if (!ctx) return;
  if (now_ms > ctx->now) ctx->now = now_ms;
  coap_timer_heap_run(&ctx->timers, now_ms);
}

/* Every counter into the latest coap_stats_t. */
static void stats_fill(const coap_context_t *ctx, coap_stats_t *out) {
  const coap_exch_stats_t *x = coap_exch_stats(ctx->exch);
  memset(out, 0, sizeof(*out));
  out->rx_datagrams = ctx->rx_datagrams;
  out->tx_datagrams = ctx->tx_datagrams;
  out->rx_malformed = x->rx_malformed;
  out->rx_duplicates = x->rx_duplicates;
  out->retransmissions = x->retransmissions;
  out->requests_handled = x->requests_in;
  out->requests_sent = x->requests_out;
  out->timeouts = x->timeouts;
  out->resets_received = x->resets_received;
  out->resets_sent = x->resets_sent;
  out->peers = ctx->peers.count;
  out->peers_rejected = ctx->peers_rejected;
  out->peers_evicted = ctx->peers_evicted;
  out->dtls_handshakes = ctx->dtls_handshakes;
  out->dtls_resumed = ctx->dtls_resumed;
  out->dtls_failures = ctx->dtls_failures;
  out->dtls_cookies_sent = ctx->dtls_cookies_sent;
  out->dtls_refused = ctx->dtls_refused;
  out->dtls_half_open_evicted = ctx->dtls_half_open_evicted;
  out->dtls_reconnects = ctx->dtls_reconnects;
  out->dtls_compacted = coap_dtls_compacted(ctx->dtls);
  out->rx_too_large = ctx->rx_too_large;
  out->observers = ctx->server.obs.count;
  out->notifications_sent = ctx->server.obs.sent;
  out->observers_removed = ctx->server.obs.removed;
  out->observations = coap_client_observations(&ctx->client);
  /* Block1 bodies and kept answers as server, bodies fetched as client. */
  out->reassembly_bytes = ctx->server.b1.bytes + coap_client_reassembly_bytes(&ctx->client);
  /* The slots past COAP_CAUSE_COUNT stay 0. */
  memcpy(out->failures_by_cause, ctx->failures_by_cause, sizeof ctx->failures_by_cause);
  /* Version 2. */
  out->rx_bytes = ctx->rx_bytes;
  out->tx_bytes = ctx->tx_bytes;
  out->icmp_vetted = ctx->icmp_vetted;
  out->icmp_unvetted = ctx->icmp_unvetted;
  memcpy(out->responses_by_class, x->responses_by_class, sizeof out->responses_by_class);
  memcpy(out->dtls_handshakes_by_mode, ctx->dtls_handshakes_by_mode,
         sizeof out->dtls_handshakes_by_mode);
  memcpy(out->dtls_failures_by_mode, ctx->dtls_failures_by_mode, sizeof out->dtls_failures_by_mode);
  memcpy(out->dtls_sessions_by_mode, ctx->dtls_sessions_by_mode, sizeof out->dtls_sessions_by_mode);
}

int coap_context_get_stats_versioned(const coap_context_t *ctx, int version, coap_stats_t *out) {
  if (!ctx || !out) return COAP_E_INVALID_ARG;
  coap_stats_t latest;
  stats_fill(ctx, &latest);
  return coap_abi_write(coap_abi_struct(COAP_ABI_STATS), version, &latest, out, &ctx->log,
                        "coap_context_get_stats");
}
