/* Helpers for the message codec's unit tests (test_msg_parse.c,
 * test_msg_options.c). */
#ifndef SUPPORT_CODEC_H
#define SUPPORT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "coaps/wire.h"

/* Parse from an exactly sized heap copy, so ASan sees any read past the
 * end; the copy is left in *copy for the caller to free (freed at once
 * when |copy| is NULL). Returns coap_msg_parse's result. */
int codec_parse_exact(coap_msg_t *m, const uint8_t *data, size_t len, uint8_t **copy);

/* Encode |m| into a fresh buffer and compare with |want| (|n| bytes),
 * coap_msg_encoded_size included. */
void codec_expect_encoding(const coap_msg_t *m, const uint8_t *want, size_t n);

/* A successfully parsed message stays inside its datagram, within the
 * limits, its options sorted. */
void codec_check_parsed_invariants(const coap_msg_t *m, const uint8_t *data, size_t len);

#endif
