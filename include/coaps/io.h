/* coaps — the I/O shell: UDP sockets (IPv4 and dual-stack IPv6), an epoll
 * loop, the monotonic clock and signals. The only part of the library that
 * makes system calls for the network.
 */
#ifndef COAPS_IO_H
#define COAPS_IO_H

#include "coaps/context.h"

#include "coaps/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bind a UDP socket for |proto| on |addr| (coap_address_init + port; the
 * IPv6 any-address accepts IPv4 too). On a wildcard address ([::],
 * 0.0.0.0) every answer leaves from the address its peer sent to
 * (IP_PKTINFO/IPV6_PKTINFO), so clients of any of the host's addresses
 * (127.0.0.2, a second interface) accept it. Port 0 picks a free port:
 * read it back with coap_endpoint_address(). Installs the I/O shell as the
 * context's transport on first use. Returns the endpoint or NULL (errno
 * set; the context logs why). */
COAPS_API coap_endpoint_t *coap_context_listen(coap_context_t *ctx, coap_proto_t proto,
                                               const coap_address_t *addr);

/* Let several contexts (worker threads, one each) listen on the same
 * ports: the kernel spreads clients over them by address, so a client
 * always reaches the same one (SO_REUSEPORT). Off by default: binding a
 * port in use then fails instead of silently sharing it. Call before
 * coap_context_listen. */
COAPS_API int coap_context_set_reuse_port(coap_context_t *ctx, int on);

/* A file descriptor that becomes readable when coap_context_process has
 * work (an epoll fd covering every socket); for an application's own loop.
 * COAP_E_STATE when the I/O shell cannot start (the context has a
 * transport of its own, or epoll failed). */
COAPS_API int coap_context_fd(coap_context_t *ctx);
/* Milliseconds until the next timer (-1: none, also for a NULL |ctx|) —
 * the poll timeout to use. */
COAPS_API int coap_context_timeout_ms(coap_context_t *ctx);
/* Wait up to |timeout_ms| (0: do not wait, -1: until something happens)
 * for datagrams, handle them and due timers. Returns 0 or a negative error. */
COAPS_API int coap_context_process(coap_context_t *ctx, int timeout_ms);

/* Run until coap_context_stop() or SIGINT/SIGTERM. Returns 0 on a clean
 * stop. */
COAPS_API int coap_run(coap_context_t *ctx);
COAPS_API void coap_context_stop(coap_context_t *ctx);

/* ---- probing a port (blocking; for diagnostics) ---- */

typedef enum coap_probe_answer {
  COAP_PROBE_SILENT = 0, /* nothing within the timeout */
  COAP_PROBE_REFUSED,    /* ICMP port unreachable: nothing listens */
  COAP_PROBE_COAP,       /* a CoAP message came back (a plain CoAP server) */
  COAP_PROBE_DTLS,       /* a DTLS record came back (a DTLS server) */
  COAP_PROBE_OTHER       /* something else answered */
} coap_probe_answer_t;

/* Allocated by the program, filled by the library: versioned (export.h). */
typedef struct coap_probe_result {
  coap_probe_answer_t answer;
  uint32_t ms;     /* until the answer (or the timeout) */
  char detail[96]; /* "a CoAP RST", "a HelloVerifyRequest (cookie)" */
} coap_probe_result_t;

/* Versions of coap_probe_result_t; each one's layout is frozen. */
#define COAP_PROBE_RESULT_V1 1
#define COAP_PROBE_RESULT_VERSION COAP_PROBE_RESULT_V1

/* Send a DTLS ClientHello (when |dtls| is given) and a CoAP ping, an
 * empty CON (when |coap| is given), to |addr| at once and say what answers
 * each within |timeout_ms|. Once one is answered, the other gets 50 ms
 * more. Blocks. |dtls| and |coap| are coap_probe_result_t of |version|
 * (only its bytes are written). Returns 0 (see the results) or a negative
 * code: COAP_E_INVALID_ARG for an unknown version (nothing sent). Call it
 * as coap_probe_port(addr, timeout_ms, dtls, coap). */
COAPS_API int coap_probe_port_versioned(const coap_address_t *addr, unsigned timeout_ms,
                                        int version, coap_probe_result_t *dtls,
                                        coap_probe_result_t *coap);
#define coap_probe_port(addr, timeout_ms, dtls, coap) \
  coap_probe_port_versioned((addr), (timeout_ms), COAP_PROBE_RESULT_VERSION, (dtls), (coap))

/* Monotonic clock in milliseconds (what the shell passes as |now|). */
COAPS_API uint64_t coap_clock_now_ms(void);

#ifdef __cplusplus
}
#endif
#endif
