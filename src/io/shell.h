/* The I/O shell's defaults for a context: what coap_context_new
 * (context_new.c) lends every context it makes. */
#ifndef COAPS_IO_SHELL_H
#define COAPS_IO_SHELL_H

#include "context/shell.h"

/* io.c: make the built-in I/O shell the transport of a context that has
 * none (a client request made before any coap_context_listen/process). */
int coap_io_attach_default(coap_context_t *ctx);

/* resolve.c: host names with the system's blocking getaddrinfo. */
int coap_getaddrinfo_resolve(void *user, const char *host, uint16_t port, coap_address_t *out);

#endif
