/* Filling a coap_diag_t: the cause table's defaults plus the specifics. */
#ifndef COAPS_COMMON_DIAG_H
#define COAPS_COMMON_DIAG_H

#include "coaps/diag.h"

/* Start a diagnosis: cause, step, detector; alert -1, the table's fix. */
void coap_diag_begin(coap_diag_t *d, coap_cause_t cause, coap_dtls_step_t step, coap_detector_t by,
                     int error);
/* The specifics (printf). Without them the table's summary stands. */
void coap_diag_explain(coap_diag_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void coap_diag_fix(coap_diag_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
