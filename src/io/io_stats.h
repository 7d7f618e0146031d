/* What the I/O shell's send path did, for tests and diagnostics: how many
 * datagrams went out in how many system calls. */
#ifndef COAPS_IO_STATS_H
#define COAPS_IO_STATS_H

#include "coaps/context.h"
#include "io/tx_batch.h"

/* NULL when the context is not driven by the I/O shell. */
const coap_tx_stats_t *coap_io_tx_stats(const coap_context_t *ctx);

#endif
