/* What a request's callback was told, kept for the test to check: one box
 * and one callback for every simulated test, instead of a struct and an
 * on_reply of its own in each. The box outlives the callback, so it keeps
 * copies (the payload, the detail, the diagnosis), not the reply's
 * pointers. */
#ifndef SUPPORT_REPLY_H
#define SUPPORT_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "coaps/context.h"
#include "coaps/diag.h"
#include "support_simnet.h"

#define SIM_REPLY_PAYLOAD_MAX 2048
#define SIM_REPLY_DETAIL_MAX 512

typedef struct sim_reply {
  int done;  /* set by the callback: for simnet_run_until_flag */
  int calls; /* how many times the callback ran */
  /* The rest is from the last call. */
  int status;
  uint8_t code;
  int content_format;
  char payload[SIM_REPLY_PAYLOAD_MAX]; /* NUL terminated, cut to fit */
  size_t payload_len;                  /* of what was kept */
  char detail[SIM_REPLY_DETAIL_MAX];   /* "" without one */
  coap_cause_t cause;                  /* the diagnosis's, COAP_CAUSE_NONE without one */
  int has_diag;
  coap_diag_t diag; /* a copy when has_diag */
} sim_reply_t;

/* Empty the box (done and calls back to 0) before a new request. */
void sim_reply_reset(sim_reply_t *r);

/* The coap_reply_fn: |user| is the sim_reply_t to fill. */
void sim_on_reply(coap_context_t *ctx, const coap_reply_t *reply, void *user);

/* Empty |r| and send |o| from |node| with sim_on_reply into |r|; the send
 * must succeed. Nothing is run: the caller drives the network. */
void sim_send(simnet_node_t *node, const coap_request_opts_t *o, sim_reply_t *r);

/* A GET of |uri| from |node| with sim_send, then the network run until the
 * reply, which must come within |limit_ms| of virtual time. */
void sim_get(simnet_node_t *node, const char *uri, sim_reply_t *r, uint64_t limit_ms);

#endif
