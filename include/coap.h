/* coaps — the guide's entry point. The "CoAP DTLS Handshake Fails" guide's
 * example includes <coap.h> and calls coap_new_context, coap_set_addr and
 * coap_start, so this header stays: it is the umbrella coaps/coaps.h plus
 * the guide's names (coaps/seed.h). A new program includes
 * <coaps/coaps.h>: coap.h is a generic name at the top of the include
 * directory (README, "Names"). */
#ifndef COAPS_COAP_H
#define COAPS_COAP_H

#include "coaps/coaps.h"
#include "coaps/seed.h"

#endif
