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
 * coaps/seed.h (README, "Names").
 *
 * NULL arguments, for every public function:
 * - No function crashes on a NULL pointer argument.
 * - A NULL object (context, endpoint, resource, request, response, DTLS
 *   configuration, message, URI, ...) or a NULL pointer the function needs
 *   is an error: a function returning int returns COAP_E_INVALID_ARG, one
 *   returning a pointer returns NULL, one returning a count or a size
 *   returns 0, a getter of a string to show returns "" (or what its
 *   comment says), and a void function does nothing. Exceptions, each
 *   said at the function: coap_context_next_timeout(NULL) is UINT64_MAX
 *   (nothing pending); the DTLS credential setters take a NULL file name,
 *   identity or key like an empty one (COAP_E_DTLS_CREDENTIALS, the
 *   reason in coap_dtls_context_last_error); a NULL output buffer of a
 *   formatting function is COAP_E_BUFFER_TOO_SMALL; the wire functions
 *   take NULL with a length of 0 as "nothing" (no token, no payload, an
 *   empty option value).
 * - coap_context_free(NULL), coap_dtls_context_free(NULL) and
 *   coap_response_copy_clear(NULL) do nothing.
 * - Where NULL means something, the function's comment says what:
 *   defaults (coap_context_new, coap_new_context), "none" or "clear"
 *   (a handler, a trace or lookup callback), an optional output
 *   (a request id, a payload length, one of the two probe results).
 * tests/unit/test_null_args.c calls every function declared here with
 * NULL for each pointer argument (under ASan in the sanitizer build) and
 * fails for a declared function that it does not cover. */
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
