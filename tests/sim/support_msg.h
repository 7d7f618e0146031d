/* Hand-built messages for the server tests: options of any number and
 * length (bad ones too, the library's builders would refuse them), their
 * values kept in one pool that sim_msg_reset empties before each message.
 * One copy for every simulated test, instead of a pool and an opt() of
 * its own in each. */
#ifndef SUPPORT_MSG_H
#define SUPPORT_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "coaps/wire.h"

/* Start a new message: what the pool held is forgotten. */
void sim_msg_reset(void);

/* Start request |m| afresh (the pool emptied): |type| and |code| with
 * message ID |mid|, a 4-byte token — |tag| then |mid|, so that a test's
 * requests have tokens of their own that say which test built them — and
 * Uri-Path |path| (none for NULL). */
void sim_msg_begin(coap_msg_t *m, coap_type_t type, uint8_t code, uint16_t mid, uint16_t tag,
                   const char *path);

/* A copy of |n| bytes of |v| in the pool, alive until sim_msg_reset. */
const uint8_t *sim_keep(const void *v, size_t n);

/* Add option |number| with |n| bytes of |v|, in number order, unchecked. */
void sim_opt(coap_msg_t *m, uint16_t number, const void *v, size_t n);

/* Add option |number| as the shortest big-endian uint (0: empty). */
void sim_opt_uint(coap_msg_t *m, uint16_t number, uint32_t v);

/* Add a Block1/Block2/Q-Block option: block |num|, |more|, size |szx|. */
void sim_opt_block(coap_msg_t *m, uint16_t number, uint32_t num, int more, uint8_t szx);

/* |r|'s option |number| decoded into |b| (it must decode): 1, or 0 when
 * |r| has none. */
int sim_block_of(const coap_msg_t *r, uint16_t number, coap_block_t *b);

#endif
