/* coaps — CoAP (RFC 7252) over UDP and DTLS 1.2: the umbrella header.
 * An application includes this one header:
 *
 *   #include <coaps/coaps.h>
 *
 * It brings the whole public API and the version macros. It leaves out
 * the guide's names (coaps/seed.h: coap_new_context, coap_set_addr,
 * coap_start) on purpose: they only repeat the core calls
 * (coap_context_new, coap_address_set_port, coap_context_listen +
 * coap_run) under names chosen by a guide written for libcoap, and
 * coap_new_context is also a libcoap function with another signature; a
 * program written for coaps should not pick them up by accident. A program
 * written like the guide includes <coap.h>, which is this header plus
 * coaps/seed.h (README, "Names"). */
#ifndef COAPS_COAPS_H
#define COAPS_COAPS_H

#include "coaps/export.h"
#include "coaps/version.h"
#include "coaps/error.h"
#include "coaps/diag.h"
#include "coaps/wire.h"
#include "coaps/context.h"
#include "coaps/io.h"
#include "coaps/dtls.h"
#include "coaps/credentials.h"

#endif
