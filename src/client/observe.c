/* Observe (RFC 7641), client side: a GET or FETCH with Observe=0 whose
 * exchange the message layer keeps registered (on_response returns 1), so
 * every notification with the registration's token comes back here.
 *
 * An observation moves through four states: REGISTERING (the first answer
 * is awaited, under the request's timeout_ms), ACTIVE (notifications
 * come; the timer re-registers when the last one's Max-Age passes),
 * REREGISTERING (a GET with Observe=0 and the same token is out, §3.3.1)
 * and CANCELLING (a GET with Observe=1 and the same token is out, §3.6).
 * Re-registering and deregistering replace the exchange: the old one is
 * forgotten and the new one, under the same token, receives what the
 * server sends from then on.
 *
 * Order (§3.4): a notification is delivered only when it is newer than
 * the last one delivered and than one whose blocks are being fetched;
 * anything else (reordered, duplicated with a new message ID) is dropped.
 * A notification larger than a block (RFC 7959 §3.4) is completed by a
 * fetch of its remaining blocks: a record of its own (block.c does the
 * fetching) that the observation owns, cancelled when a newer
 * notification comes. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"

/* Wait this long after a notification's Max-Age before re-registering: a
 * server that refreshes a state exactly at Max-Age is then not asked for
 * it again for nothing. */
#define REREGISTER_MARGIN_MS 2000
#define MAX_AGE_DEFAULT_S 60
#define SEQ_MASK 0xffffffu

enum { OBS_REGISTERING, OBS_ACTIVE, OBS_REREGISTERING, OBS_CANCELLING };

struct coap_client_obs {
  uint8_t state;
  uint8_t has_last;     /* a notification was delivered: last_seq, last_at */
  uint8_t new_baseline; /* a new DTLS session: the next answer starts the order anew */
  uint32_t last_seq;
  uint64_t last_at;
  /* ACTIVE: re-register at Max-Age. CANCELLING: the deregistration's
   * answer is overdue. */
  coap_timer_t timer;
  /* The registration as first sent, its token included: re-registrations
   * and the deregistration are made from it. */
  uint8_t *tmpl;
  size_t tmpl_len;
  /* The remaining blocks of the newest notification, being fetched. */
  coap_client_req_t *fetch;
  uint32_t fetch_seq;
  uint64_t fetch_at;
};

static void note(const coap_client_req_t *r, coap_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void note(const coap_client_req_t *r, coap_log_level_t level, const char *fmt, ...) {
  const coap_logger_t *log = r->cl->log;
  if (!coap_log_enabled(log, level)) return;
  char addr[64], prefix[72], text[256];
  snprintf(prefix, sizeof prefix, "[%s]", coap_address_format(&r->dest, addr, sizeof addr));
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  coap_logf(log, level, prefix, "observe: %s", text);
}

/* ---- life cycle ---- */

static void obs_timer(coap_timer_t *t, uint64_t now, void *user);

int coap_client_obs_new(coap_client_req_t *r) {
  coap_client_obs_t *o = calloc(1, sizeof(*o));
  if (!o) return COAP_E_NOMEM;
  o->state = OBS_REGISTERING;
  coap_timer_init(&o->timer, obs_timer, r);
  r->obs = o;
  return 0;
}

/* |cancel|: its exchange is still registered (not the one being
 * answered right now, which the message layer ends itself). */
static void fetch_free(coap_client_req_t *f, int cancel) {
  if (f) coap_client_req_child_free(f, cancel);
}

static void fetch_abort(coap_client_obs_t *o) {
  coap_client_req_t *f = o->fetch;
  o->fetch = NULL;
  fetch_free(f, 1);
}

void coap_client_obs_free(coap_client_req_t *r) {
  coap_client_obs_t *o = r->obs;
  if (!o) return;
  r->obs = NULL;
  coap_timer_cancel(r->cl->timers, &o->timer);
  fetch_abort(o);
  free(o->tmpl);
  free(o);
}

/* The observation ends here with |err| and |detail|; its exchange, if
 * still registered, is forgotten (the server's next notification gets
 * RST). */
static void obs_end(coap_client_req_t *r, int err, const char *detail) {
  if (r->out) coap_exch_cancel(r->cl->exch, r->out);
  r->out = NULL;
  coap_client_req_finish(r, NULL, err, detail);
}

/* ---- requests made from the registration ---- */

static int keep_template(coap_client_obs_t *o, const coap_exch_out_t *out) {
  if (o->tmpl) return 0;
  size_t len;
  const uint8_t *bytes = coap_exch_out_bytes(out, &len);
  if (!(o->tmpl = malloc(len ? len : 1))) return COAP_E_NOMEM;
  memcpy(o->tmpl, bytes, len);
  o->tmpl_len = len;
  return 0;
}

/* The registration again with Observe |value| (0 registers, 1
 * deregisters) and its token; |m|'s values point into the template. */
static int obs_request(const coap_client_obs_t *o, coap_msg_t *m, uint32_t value) {
  if (coap_msg_parse(m, o->tmpl, o->tmpl_len) < 0) return COAP_E_INTERNAL;
  coap_msg_remove_option(m, COAP_OPTION_OBSERVE);
  return coap_msg_add_uint(m, COAP_OPTION_OBSERVE, value);
}

/* |m| becomes |r|'s exchange in place of the one it has, which is
 * forgotten: the token goes on in the new one. The last thing a caller
 * does: the answer may come (and end |r|) before this returns. */
static int obs_send(coap_client_req_t *r, coap_msg_t *m, uint64_t now) {
  coap_client_t *cl = r->cl;
  coap_exch_peer_t *peer = coap_exch_out_peer(r->out);
  coap_exch_cancel(cl->exch, r->out);
  r->out = NULL;
  return coap_exch_request(cl->exch, peer, m, r, &r->out, now);
}

static void reregister(coap_client_req_t *r, uint64_t now) {
  coap_client_obs_t *o = r->obs;
  coap_msg_t m;
  fetch_abort(o); /* the answer brings the state anyway */
  int rc = obs_request(o, &m, 0);
  if (rc == 0) {
    note(r, COAP_LOG_INFO,
         "no notification within Max-Age (or a new DTLS session): "
         "registering again");
    o->state = OBS_REREGISTERING;
    rc = obs_send(r, &m, now);
  }
  if (rc < 0) obs_end(r, rc, "the re-registration could not be sent");
}

static void obs_timer(coap_timer_t *t, uint64_t now, void *user) {
  coap_client_req_t *r = user;
  coap_client_obs_t *o = r->obs;
  if (o->state == OBS_ACTIVE) {
    reregister(r, now);
  } else if (o->state == OBS_CANCELLING) {
    obs_end(r, COAP_E_CANCELLED,
            "the server did not answer the deregistration; the "
            "observation is forgotten (a further notification gets RST)");
  }
}

/* ---- notifications ---- */

/* The notification's sequence number; 0 when it has none. An Observe
 * value longer than 3 bytes is outside the option's range and so treated
 * as absent (RFC 7252 §5.4.3). */
static int observe_value(const coap_msg_t *msg, uint32_t *seq) {
  const coap_option_t *opt = coap_msg_find_option(msg, COAP_OPTION_OBSERVE);
  if (!opt || opt->length > 3) return 0;
  *seq = (uint32_t)coap_option_uint(opt) & SEQ_MASK;
  return 1;
}

/* Newer than everything delivered or being fetched (§3.4)? */
static int is_news(const coap_client_obs_t *o, uint32_t seq, uint64_t now) {
  if (o->has_last && !coap_observe_is_newer(o->last_seq, o->last_at, seq, now)) return 0;
  if (o->fetch && !coap_observe_is_newer(o->fetch_seq, o->fetch_at, seq, now)) return 0;
  return 1;
}

/* Hand a notification to the caller: |msg|, or the body reassembled in
 * |blk|. Touches nothing after the callback (which may cancel |r|). */
static void deliver(coap_client_req_t *r, const coap_msg_t *msg, const coap_client_block_t *blk,
                    uint32_t seq, uint64_t at) {
  coap_client_obs_t *o = r->obs;
  o->has_last = 1;
  o->last_seq = seq;
  o->last_at = at;
  coap_reply_t reply;
  coap_client_reply_init(&reply, msg);
  if (blk) {
    const uint8_t *body;
    size_t len;
    coap_client_block_result(blk, &body, &len, &reply.exchanges);
    if (body) {
      reply.payload = body;
      reply.payload_len = len;
    }
  }
  reply.observing = 1;
  reply.has_observe = 1;
  reply.observe = seq;
  if (r->cb) r->cb(r->cl->ctx, &reply, r->user);
}

/* The first block of a block-wise notification came on |out|: fetch the
 * rest (GETs without Observe, fresh tokens). Returns what on_response
 * returns. */
static int start_fetch(coap_client_req_t *r, coap_exch_out_t *out, const coap_msg_t *msg,
                       uint32_t seq, uint64_t now) {
  coap_client_obs_t *o = r->obs;
  fetch_abort(o);
  coap_client_req_t *f = coap_client_req_child(r);
  if (!f) {
    r->out = NULL;
    coap_client_req_finish(r, NULL, COAP_E_NOMEM, "no memory to fetch a block-wise notification");
    return 0;
  }
  o->fetch = f;
  o->fetch_seq = seq;
  o->fetch_at = now;
  const char *detail;
  int rc = coap_client_block_response(f, out, msg, now, &detail);
  if (rc == 1) return 1; /* the next block is asked for; |r| may be gone: touch nothing */
  o->fetch = NULL;
  if (rc == 0) { /* not block-wise after all: the message is the body */
    fetch_free(f, 1);
    deliver(r, msg, NULL, seq, now);
    return 1;
  }
  /* It cannot be fetched (larger than max_body, ...): say so and end,
   * rather than leave the caller without the state. */
  char why[256];
  snprintf(why, sizeof why, "%s", detail ? detail : coap_strerror(rc));
  fetch_free(f, 1);
  r->out = NULL; /* the message layer ends the registration's exchange */
  coap_client_req_finish(r, NULL, rc, why);
  return 0;
}

/* End |r| from within the answer on |out| (the message layer ends that
 * exchange when 0 is returned): the caller's last callback with |err|. */
static int end_in_answer(coap_client_req_t *r, coap_exch_out_t *out, int err, const char *detail) {
  if (r->out && r->out != out) coap_exch_cancel(r->cl->exch, r->out);
  r->out = NULL;
  coap_client_req_finish(r, NULL, err, detail);
  return 0;
}

static int on_notification(coap_client_req_t *r, coap_exch_out_t *out, const coap_msg_t *msg,
                           uint32_t seq, uint64_t now) {
  coap_client_obs_t *o = r->obs;
  coap_client_t *cl = r->cl;
  /* timeout_ms is for the first answer only. */
  if (o->state == OBS_REGISTERING) coap_timer_cancel(cl->timers, &r->deadline);
  if (o->new_baseline) {
    o->has_last = 0;
    o->new_baseline = 0;
    fetch_abort(o);
  }
  o->state = OBS_ACTIVE;
  /* Any notification shows that the registration holds: re-register only
   * when this one's freshness passes without another (§3.3.1). */
  uint64_t max_age = (uint64_t)coap_msg_get_uint(msg, COAP_OPTION_MAX_AGE, MAX_AGE_DEFAULT_S);
  if (coap_timer_arm(cl->timers, &o->timer, now + max_age * 1000 + REREGISTER_MARGIN_MS) < 0)
    return end_in_answer(r, out, COAP_E_NOMEM,
                         "no memory for the re-registration timer: the observation ends (the "
                         "server would forget it unnoticed)");
  if (!is_news(o, seq, now)) {
    note(r, COAP_LOG_DEBUG, "notification %u dropped: not newer than %u (RFC 7641 §3.4)", seq,
         o->fetch ? o->fetch_seq : o->last_seq);
    return 1;
  }
  const coap_option_t *b2opt = coap_msg_find_option(msg, COAP_OPTION_BLOCK2);
  coap_block_t b2;
  if (b2opt) {
    if (coap_block_decode(b2opt, &b2) < 0 || b2.num != 0) {
      note(r, COAP_LOG_INFO,
           "notification %u dropped: its Block2 option is malformed or not "
           "block 0",
           seq);
      return 1;
    }
    if (b2.more) return start_fetch(r, out, msg, seq, now);
  }
  fetch_abort(o); /* a newer whole notification replaces a fetch under way */
  deliver(r, msg, NULL, seq, now);
  return 1;
}

int coap_client_obs_response(coap_client_req_t *r, coap_exch_out_t *out, const coap_msg_t *msg,
                             int err, uint64_t now) {
  coap_client_obs_t *o = r->obs;
  if (err) {
    r->out = NULL;                     /* the message layer ends the exchange */
    if (o->state == OBS_REGISTERING) { /* as for any request: silence, DTLS, ... */
      coap_client_obs_free(r);
      return coap_client_plain_response(r, out, NULL, err, now);
    }
    if (o->state == OBS_CANCELLING) {
      coap_client_req_finish(r, NULL, COAP_E_CANCELLED,
                             "the server did not answer the deregistration; the observation "
                             "is forgotten (a further notification gets RST)");
      return 0;
    }
    coap_client_req_finish(
        r, NULL, err, o->state == OBS_REREGISTERING ? "the re-registration got no answer" : NULL);
    return 0;
  }
  if (keep_template(o, out) < 0) {
    r->out = NULL;
    coap_client_req_finish(r, NULL, COAP_E_NOMEM, NULL);
    return 0;
  }
  uint32_t seq = 0;
  int notification = COAP_CODE_CLASS(msg->code) == 2 && observe_value(msg, &seq);
  if (o->state == OBS_CANCELLING && notification && msg->type != COAP_TYPE_ACK) {
    /* Sent before the server had our Observe=1. It took the message
     * layer's timer with it (a response implies the ACK): wait for the
     * answer as long as after an ACK. */
    if (coap_timer_arm(r->cl->timers, &o->timer, now + r->cl->cfg->tx.response_timeout_ms) < 0)
      return end_in_answer(r, out, COAP_E_CANCELLED,
                           "no memory to wait for the deregistration's answer; the observation "
                           "is forgotten (a further notification gets RST)");
    return 1;
  }
  if (o->state == OBS_CANCELLING || !notification) {
    /* The last answer: the deregistration's, or one without Observe — the
     * server did not register us (§3.1), the last notification, or an
     * error code (§3.2). Delivered as any response (block-wise too). */
    coap_client_obs_free(r);
    return coap_client_plain_response(r, out, msg, 0, now);
  }
  return on_notification(r, out, msg, seq, now);
}

int coap_client_obs_fetch_response(coap_client_req_t *f, coap_exch_out_t *out,
                                   const coap_msg_t *msg, int err, uint64_t now) {
  coap_client_req_t *r = f->parent;
  coap_client_obs_t *o = r->obs; /* a fetch that is no longer wanted is cancelled */
  const char *detail = NULL;
  int rc = err;
  if (err == 0) {
    rc = coap_client_block_response(f, out, msg, now, &detail);
    if (rc == 1) return 0; /* the next block is asked for */
  }
  o->fetch = NULL;
  f->out = NULL; /* the message layer ends it */
  if (rc == 0 && f->blk) {
    const uint8_t *body;
    size_t len;
    unsigned n;
    coap_client_block_result(f->blk, &body, &len, &n);
    if (body) {
      deliver(r, msg, f->blk, o->fetch_seq, o->fetch_at);
      fetch_free(f, 0);
      return 0;
    }
  }
  fetch_free(f, 0);
  if (rc == COAP_E_TIMEOUT) {
    /* Like a lost notification: the next one brings a newer state, and
     * re-registration at Max-Age finds out whether the server is gone. */
    note(r, COAP_LOG_INFO, "the rest of notification %u did not come; waiting for the next",
         o->fetch_seq);
    return 0;
  }
  /* The server ended the transfer (an error code) or it cannot go on: the
   * observation ends with that answer or error. */
  char why[256];
  snprintf(why, sizeof why, "%s", detail ? detail : "fetching a block-wise notification failed");
  if (r->out) coap_exch_cancel(r->cl->exch, r->out);
  r->out = NULL;
  coap_client_req_finish(r, rc < 0 ? NULL : msg, rc < 0 ? rc : 0, why);
  return 0;
}

/* ---- the API ---- */

int coap_client_observe_cancel(coap_client_t *cl, coap_request_id_t id) {
  coap_client_req_t *r = cl->requests;
  while (r && r->id != id) r = r->next;
  if (!r) return COAP_E_NOT_FOUND;
  coap_client_obs_t *o = r->obs;
  if (!o) return COAP_E_INVALID_ARG;
  if (o->state == OBS_CANCELLING) return 0;
  uint64_t now = cl->ops->now(cl->ctx);
  coap_msg_t m;
  int rc = r->out ? keep_template(o, r->out) : COAP_E_STATE;
  if (rc == 0) rc = obs_request(o, &m, 1);
  if (rc == 0) {
    fetch_abort(o);
    coap_timer_cancel(cl->timers, &r->deadline);
    coap_timer_cancel(cl->timers, &o->timer);
    o->state = OBS_CANCELLING;
    if ((rc = obs_send(r, &m, now)) == 0) return 0;
  }
  obs_end(r, COAP_E_CANCELLED,
          "the deregistration could not be sent; the observation is "
          "forgotten (a further notification gets RST)");
  return 0;
}

void coap_client_observe_reconnected(coap_client_t *cl, coap_peer_t *peer, uint64_t now) {
again:
  for (coap_client_req_t *r = cl->requests; r; r = r->next) {
    coap_client_obs_t *o = r->obs;
    if (!o || o->state == OBS_CANCELLING || !coap_client_req_to_peer(r, peer)) continue;
    /* A new session is a new endpoint (RFC 7252 §9.1.1): a restarted
     * server counts anew, so its numbers are not compared with the old. */
    o->new_baseline = 1;
    if (o->state == OBS_ACTIVE && coap_timer_arm(cl->timers, &o->timer, now) < 0) {
      /* (An active observation's timer is armed, so this does not
       * happen; were it not, the observation would never re-register.
       * The callback may change the list: the walk starts again.) */
      obs_end(r, COAP_E_NOMEM, "no memory to re-register the observation");
      goto again;
    }
  }
}

/* (A block fetch is not checked against its parent: while a completed
 * notification is delivered, its fetch has left the observation but not
 * yet the list, and the callback may end the observation.) */
const char *coap_client_obs_broken(const coap_client_req_t *r) {
  const coap_client_obs_t *o = r->obs;
  if (!o) return NULL;
  if (r->parent) return "client observe: a block fetch with an observation of its own";
  if (o->state > OBS_CANCELLING) return "client observe: an observation in no state";
  if (o->last_seq > SEQ_MASK || o->fetch_seq > SEQ_MASK)
    return "client observe: a sequence number past 24 bits";
  if (o->fetch && (o->fetch->parent != r || o->fetch->obs))
    return "client observe: its block fetch is another's";
  return NULL;
}

size_t coap_client_observations(const coap_client_t *cl) {
  size_t n = 0;
  for (const coap_client_req_t *r = cl->requests; r; r = r->next) n += r->obs != NULL;
  return n;
}
