/* Q-Block2 on the server (RFC 9177): a NON request for a large
 * representation gets MAX_PAYLOADS blocks at once, each a NON response
 * with its own message ID and the request's token, instead of one block
 * per round trip (RFC 7959). The client asks for the next set with a
 * 'Continue' (Q-Block2 NUM = the set's first block, M set) and for lost
 * blocks with a list of Q-Block2 options; both are ordinary requests
 * answered from the Block2 copy (block2.c), so the handler runs once per
 * representation and no per-transfer state is kept here. The message
 * layer does not retransmit NONs: recovery is the client's requests.
 *
 * Deliberately not done: the server does not send the next set on a timer
 * when no 'Continue' comes (RFC 9177 §7.2 allows, it does not require,
 * sending it after NON_TIMEOUT_RANDOM); the client's request for the
 * missing blocks brings them. A CON request gets one block per request:
 * the CON bursts of §4.4 would each need their own retransmission and
 * bring nothing over loopback that NON does not. */
#include <stdlib.h>
#include <string.h>

#include "common/invariant.h"
#include "server/server.h"

typedef struct coap_qb_peer qb_peer_t;

int coap_qblock_enabled(const coap_server_t *s) {
  return s->cfg && !s->cfg->qblock_server_off;
}

uint32_t coap_qblock_max_payloads(const coap_server_t *s) {
  return s->cfg && s->cfg->qblock_max_payloads ? s->cfg->qblock_max_payloads : 10;
}

static size_t peer_slot(const void *peer) {
  uint64_t h = (uint64_t)(uintptr_t)peer * 0x9E3779B97F4A7C15ull;
  return (size_t)(h >> 40) % QB_PEER_SLOTS;
}

const char *coap_qblock_peers_broken(const coap_server_t *s) {
  if (!s->qb_peers) return NULL;
  for (size_t i = 0; i < QB_PEER_SLOTS; i++) {
    const qb_peer_t *p = &s->qb_peers->slot[i];
    if (!p->peer && p->session) return "Q-Block peers: a session without its peer";
    if (p->peer && peer_slot(p->peer) != i) return "Q-Block peers: a peer in another's slot";
  }
  return NULL;
}

/* After a change: all the slots now and then (invariant.h). */
static void check_sampled(coap_server_t *s) {
  if (coap_invariant_walk_due(&s->qb_peers->check_ops, QB_PEER_SLOTS))
    COAPS_INVARIANT_HOLDS(coap_qblock_peers_broken(s));
}

void coap_qblock_peer_note(coap_server_t *s, const coap_request_t *req) {
  if (!s->qb_peers && !(s->qb_peers = calloc(1, sizeof *s->qb_peers))) return;
  qb_peer_t *p = &s->qb_peers->slot[peer_slot(req->peer_key)];
  p->peer = req->peer_key;
  p->session = req->session_key;
  check_sampled(s);
}

int coap_qblock_peer_known(const coap_server_t *s, const coap_request_t *req) {
  if (!s->qb_peers) return 0;
  const qb_peer_t *p = &s->qb_peers->slot[peer_slot(req->peer_key)];
  return p->peer == req->peer_key && p->session == req->session_key;
}

void coap_qblock_peer_gone(coap_server_t *s, const void *peer_key) {
  if (!s->qb_peers) return;
  qb_peer_t *p = &s->qb_peers->slot[peer_slot(peer_key)];
  if (p->peer == peer_key) memset(p, 0, sizeof *p);
  check_sampled(s);
}

void coap_qblock_free(coap_server_t *s) {
  free(s->qb_peers);
  s->qb_peers = NULL;
}

/* ---- the burst ---- */

/* Add block |b| to the ascending list |out| (|n| so far, |cap| room)
 * unless it is there or past |last|. */
static void plan_add(uint32_t *out, unsigned *n, unsigned cap, uint32_t b, uint32_t last) {
  if (b > last || *n == cap) return;
  for (unsigned i = 0; i < *n; i++)
    if (out[i] == b) return; /* asked twice: sent once (§4.4) */
  unsigned i = *n;
  while (i > 0 && out[i - 1] > b) {
    out[i] = out[i - 1];
    i--;
  }
  out[i] = b;
  (*n)++;
}

/* The blocks (in our size) that |a| asks for, in ascending order, at most
 * |cap| of them (MAX_PAYLOADS: a request never makes the server send
 * more than one set, §7.2, which bounds amplification). Per RFC 9177
 * §4.4, a Q-Block2 with M asks for NUM and the rest of its set — the
 * whole set from a set's first block ('Continue', or the first request);
 * without M for NUM alone. No option at all (a peer known to speak
 * Q-Block asking without one) is the whole body: the first set. */
static unsigned plan(const coap_resp_asked_t *a, uint8_t szx, uint32_t last, uint32_t maxp,
                     uint32_t *out, unsigned cap) {
  unsigned n = 0;
  if (!a->qb_n) {
    for (uint32_t b = 0; b < maxp; b++) plan_add(out, &n, cap, b, last);
    return n;
  }
  for (unsigned i = 0; i < a->qb_n; i++) {
    /* The client's block numbers count in its size: the same offset in
     * ours (ours is never larger, coap_response_finish). */
    uint64_t off = (uint64_t)a->qb[i].num << (a->qb[i].szx + 4);
    uint64_t first64 = off >> (szx + 4);
    if (first64 > last) continue;
    uint32_t first = (uint32_t)first64;
    uint32_t end = a->qb[i].more ? (first / maxp + 1) * maxp : first + 1;
    for (uint32_t b = first; b < end; b++) plan_add(out, &n, cap, b, last);
  }
  return n;
}

/* Encode |m| (NON, no token) into the server's buffer; returns the bytes
 * after header and token, or NULL. */
static const uint8_t *encode_rest(coap_obs_table_t *t, const coap_msg_t *m, size_t *len) {
  size_t need = coap_msg_encoded_size(m);
  if (need > t->wire_cap) {
    uint8_t *w = realloc(t->wire, need);
    if (!w) return NULL;
    t->wire = w;
    t->wire_cap = need;
  }
  int n = coap_msg_encode(m, t->wire, t->wire_cap);
  if (n < COAP_HEADER_LEN) return NULL;
  *len = (size_t)n - COAP_HEADER_LEN;
  return t->wire + COAP_HEADER_LEN;
}

int coap_qblock_send_non(coap_server_t *s, const void *peer_key, const uint8_t *token,
                         uint8_t token_len, const coap_msg_t *m) {
  coap_obs_table_t *t = &s->obs;
  if (!t->ops || t->building) return COAP_E_STATE;
  coap_msg_t c = *m;
  c.type = COAP_TYPE_NON;
  c.mid = 0;
  c.token_len = 0;
  size_t rest_len;
  const uint8_t *rest = encode_rest(t, &c, &rest_len);
  if (!rest) return COAP_E_NOMEM;
  uint16_t mid;
  return t->ops->send(t->user, peer_key, 0, c.code, token, token_len, rest, rest_len, NULL, NULL,
                      &mid);
}

unsigned coap_qblock2_burst(coap_server_t *s, const void *peer_key, const coap_msg_t *req_msg,
                            coap_response_t *resp) {
  coap_obs_table_t *t = &s->obs;
  if (!resp->qb_body || req_msg->type != COAP_TYPE_NON || !t->ops || t->building) return 0;
  uint8_t szx = resp->qb_szx;
  size_t size = coap_block_size(szx);
  uint32_t last = (uint32_t)((resp->qb_len - 1) / size);
  uint32_t maxp = coap_qblock_max_payloads(s);
  uint32_t list[COAP_QB_ASK_MAX * 64];
  unsigned cap = maxp < sizeof list / sizeof list[0] ? maxp : sizeof list / sizeof list[0];
  unsigned n = plan(&resp->asked, szx, last, maxp, list, cap);
  /* The block already sent (the answer itself) is the first asked. */
  const coap_option_t *sent = coap_msg_find_option(&resp->msg, COAP_OPTION_Q_BLOCK2);
  coap_block_t first;
  if (!sent || coap_block_decode(sent, &first) < 0) return 0;
  coap_msg_t m = resp->msg;
  m.type = COAP_TYPE_NON;
  m.mid = 0;
  m.token_len = 0;
  unsigned done = 0;
  for (unsigned i = 0; i < n; i++) {
    uint32_t b = list[i];
    if (b == first.num) continue;
    size_t off = (size_t)b * size, len = resp->qb_len - off < size ? resp->qb_len - off : size;
    coap_block_t qb = {b, (uint8_t)(off + len < resp->qb_len), szx};
    uint8_t v[3];
    int vl = coap_block_encode(&qb, v);
    if (vl < 0) break;
    coap_msg_remove_option(&m, COAP_OPTION_Q_BLOCK2);
    if (coap_msg_add_option(&m, COAP_OPTION_Q_BLOCK2, v, (size_t)vl) < 0) break;
    coap_msg_set_payload(&m, resp->qb_body + off, len);
    size_t rest_len;
    const uint8_t *rest = encode_rest(t, &m, &rest_len);
    if (!rest) break;
    uint16_t mid;
    if (t->ops->send(t->user, peer_key, 0, m.code, req_msg->token, req_msg->token_len, rest,
                     rest_len, NULL, NULL, &mid) < 0)
      break;
    done++;
  }
  s->qb_blocks_sent += done;
  return done;
}
