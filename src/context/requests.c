/* The client's link to the node: the public request calls, which hand the
 * client layer its own state, and what the client asks of the context in
 * return (coap_client_ops_t), with the endpoint a request goes out of. */
#include <stdlib.h>

#include "common/abi.h"
#include "context/context_internal.h"

int coap_send_request_versioned(coap_context_t *ctx, int version, const coap_request_opts_t *given,
                                coap_reply_fn cb, void *user, coap_request_id_t *id) {
  if (!ctx || !given) return COAP_E_INVALID_ARG;
  /* The caller's version over the defaults: the client gets the latest layout. */
  coap_request_opts_t latest;
  coap_request_opts_init(&latest, COAP_GET, NULL);
  if (coap_abi_read(coap_abi_struct(COAP_ABI_REQUEST_OPTS), version, given, &latest, &ctx->log,
                    "coap_send_request") < 0)
    return COAP_E_INVALID_ARG;
  return coap_client_send(&ctx->client, &latest, cb, user, id);
}

int coap_cancel_request(coap_context_t *ctx, coap_request_id_t id) {
  if (!ctx) return COAP_E_INVALID_ARG;
  return coap_client_cancel(&ctx->client, id);
}

int coap_observe_cancel(coap_context_t *ctx, coap_request_id_t id) {
  if (!ctx) return COAP_E_INVALID_ARG;
  return coap_client_observe_cancel(&ctx->client, id);
}

/* ---- coap_client_ops_t: |user| is the context ---- */

static uint64_t client_now(void *user) {
  return coap_context_now(user);
}

static int client_endpoint_of(const coap_endpoint_t *ep, coap_proto_t proto,
                              const coap_address_t *dest) {
  return ep->client && ep->proto == proto && ep->local.addr.sa.sa_family == dest->addr.sa.sa_family;
}

/* A client endpoint of |proto| for |dest|'s family: the one |dest|'s peer
 * is on (a replaced session moved it to one of its own), else the first,
 * else a new one from the transport; a context with no transport gets the
 * shell's (the default I/O shell: a request on a fresh context opens a
 * socket by itself). */
static int client_endpoint(void *user, coap_proto_t proto, const coap_address_t *dest,
                           coap_endpoint_t **out) {
  coap_context_t *ctx = user;
  coap_endpoint_t *first = NULL;
  for (coap_endpoint_t *ep = ctx->endpoints; ep; ep = ep->next) {
    if (!client_endpoint_of(ep, proto, dest)) continue;
    if (coap_peer_table_find(&ctx->peers, ep, dest)) {
      *out = ep;
      return 0;
    }
    if (!first) first = ep;
  }
  if (first) {
    *out = first;
    return 0;
  }
  if (!ctx->transport.open_client_endpoint && ctx->shell && ctx->shell->attach &&
      ctx->shell->attach(ctx) < 0)
    return COAP_E_STATE;
  if (!ctx->transport.open_client_endpoint) return COAP_E_STATE;
  int rc = ctx->transport.open_client_endpoint(ctx->transport_user, ctx, proto, dest, out);
  if (rc < 0) return rc;
  (*out)->client = 1;
  return 0;
}

int coap_context_client_endpoint(coap_context_t *ctx, coap_proto_t proto,
                                 const coap_address_t *dest, coap_endpoint_t **out) {
  return client_endpoint(ctx, proto, dest, out);
}

static int endpoint_in_use(coap_context_t *ctx, const coap_endpoint_t *ep) {
  for (coap_peer_t *p = coap_peer_table_oldest(&ctx->peers); p; p = coap_peer_newer(p))
    if (p->ep == ep) return 1;
  return 0;
}

/* Out of the context's list into the retired one; the transport closes it
 * (its socket) now, the struct is freed at the next input. */
static void retire_endpoint(coap_context_t *ctx, coap_endpoint_t *ep) {
  for (coap_endpoint_t **link = &ctx->endpoints; *link; link = &(*link)->next) {
    if (*link != ep) continue;
    *link = ep->next;
    ep->next = ctx->retired;
    ctx->retired = ep;
    ctx->transport.close_endpoint(ctx->transport_user, ctx, ep);
    return;
  }
}

void coap_context_free_retired(coap_context_t *ctx) {
  while (ctx->retired) {
    coap_endpoint_t *next = ctx->retired->next;
    free(ctx->retired);
    ctx->retired = next;
  }
}

/* A replacement session from the same source port is, to a server that
 * still holds the old session for that address, a stranger's hello on an
 * established association: libcoap with OpenSSL ignores it, and our
 * reconnect gets no answer. And a late datagram of the old session reaches
 * the new handshake (one that begins with a ServerHello gets past the
 * filter of coap_dtls_session_follows_old). A new port, as a new
 * connection would have, avoids both. */
int coap_context_peer_to_fresh_endpoint(coap_context_t *ctx, coap_peer_t *peer) {
  coap_endpoint_t *old = peer->ep, *fresh;
  if (!old->client || !ctx->transport.open_client_endpoint || !ctx->transport.close_endpoint)
    return 0;
  int rc = ctx->transport.open_client_endpoint(ctx->transport_user, ctx, old->proto, &peer->addr,
                                               &fresh);
  if (rc < 0 || fresh == old) {
    coap_logf(&ctx->log, COAP_LOG_INFO, peer->name,
              "no fresh endpoint for the new session (%s): it leaves from the same port",
              rc < 0 ? coap_strerror(rc) : "the transport gave the same one");
    return 0;
  }
  fresh->client = 1;
  if (coap_peer_table_move_endpoint(&ctx->peers, peer, fresh) < 0) {
    retire_endpoint(ctx, fresh);
    return 0;
  }
  coap_client_peer_moved(&ctx->client, old, peer);
  if (!endpoint_in_use(ctx, old)) retire_endpoint(ctx, old);
  return 1;
}

static int client_peer(void *user, coap_endpoint_t *ep, const coap_address_t *addr, uint64_t now,
                       coap_peer_t **out) {
  int rc = coap_context_peer(user, ep, addr, now, out);
  if (rc == 0) (*out)->asked = 1;
  return rc;
}

static int client_secure_connect(void *user, coap_peer_t *peer, const char *server_name,
                                 uint64_t now) {
  return coap_secure_connect(user, peer, server_name, now);
}

static int client_secure_give_up(void *user, coap_peer_t *peer, uint64_t now) {
  return coap_secure_give_up(user, peer, now);
}

static int client_secure_handshaking(void *user, const coap_peer_t *peer) {
  return coap_secure_handshaking(peer);
}

static const coap_dtls_context_t *client_dtls(void *user) {
  const coap_context_t *ctx = user;
  return ctx->dtls;
}

static void client_note_failure(void *user, const coap_diag_t *g, const char *peer_name,
                                uint64_t now) {
  coap_context_note_failure(user, g, peer_name, now);
}

static const coap_diag_t *client_current_diag(void *user, int err) {
  return coap_context_current_diag(user, err);
}

static void client_set_diag_current(void *user, int on) {
  coap_context_t *ctx = user;
  ctx->diag_current = on;
}

static int client_diag_current(void *user) {
  const coap_context_t *ctx = user;
  return ctx->diag_current;
}

static void client_unqueue(void *user, coap_endpoint_t *ep, const coap_address_t *dest,
                           const uint8_t *data, size_t len) {
  coap_context_t *ctx = user;
  coap_peer_t *peer = coap_peer_table_find(&ctx->peers, ep, dest);
  if (peer) coap_secure_unqueue(peer, data, len);
}

/* Static, reached through a function: a global would make the sanitizer
 * build define an __odr_asan name outside coap_ (exported_symbols.sh). */
static const coap_client_ops_t client_ops = {
    .now = client_now,
    .endpoint = client_endpoint,
    .peer = client_peer,
    .secure_connect = client_secure_connect,
    .secure_give_up = client_secure_give_up,
    .secure_handshaking = client_secure_handshaking,
    .unqueue = client_unqueue,
    .dtls = client_dtls,
    .note_failure = client_note_failure,
    .current_diag = client_current_diag,
    .set_diag_current = client_set_diag_current,
    .diag_current = client_diag_current,
};

const coap_client_ops_t *coap_context_client_ops(void) {
  return &client_ops;
}
