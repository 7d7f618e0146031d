/* coaps — CoAP (RFC 7252) over UDP and DTLS 1.2.
 * The one header an application includes. */
#ifndef COAPS_COAP_H
#define COAPS_COAP_H

#include "coaps/diag.h"
#include "coaps/error.h"
#include "coaps/wire.h"
#include "coaps/context.h"
#include "coaps/io.h"
#include "coaps/dtls.h"
#include "coaps/seed.h"
#include "coaps/version.h"

#endif
