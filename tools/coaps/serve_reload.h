/* coaps serve: reloading credentials on SIGHUP, closing every session on
 * SIGTERM, and telling systemd (sd_notify) where the server stands. */
#ifndef COAPS_TOOL_SERVE_RELOAD_H
#define COAPS_TOOL_SERVE_RELOAD_H

#include <stdatomic.h>
#include <stddef.h>

#include "security_flags.h"

/* Upper bound on a graceful stop: SIGTERM to exit, close_notify to every
 * session included (said in --help and coaps.1). */
#define SERVE_STOP_BOUND_S 5

/* Where the main thread hands a worker its new configuration: the worker
 * takes it on its own thread (a DTLS configuration is used by one thread),
 * between two turns of its loop, so no handshake or record is ever handled
 * half with the old credentials and half with the new. */
typedef struct reload_slot {
  _Atomic(coap_dtls_context_t *) next; /* waiting to be taken, or NULL */
  atomic_uint done;                    /* handovers taken */
  atomic_int end_revoked;              /* asked to end what the new one refuses */
  atomic_uint ended_done;              /* ... and done */
  atomic_size_t ended;                 /* sessions ended by the last one */
} reload_slot_t;

/* Worker thread: take a configuration waiting in |s|, if any, and, when
 * asked (once every worker has taken its own), end the sessions it no
 * longer accepts. |cid_worker| is the worker's index that
 * its Connection IDs begin with (the kernel steers by it), -1 for none:
 * a configuration rebuilt from the files does not know it. */
void reload_slot_take(reload_slot_t *s, coap_context_t *ctx, int cid_worker);

/* Main thread, on SIGHUP: read every credential file again (the PSK file
 * once), build one configuration per worker, and hand them over; wait
 * (at most 2 s) until every worker has switched. A file that fails keeps
 * the old credentials everywhere and says why (FILE:LINE for the PSK
 * file). 0, or -1 when the reload failed. */
int serve_reload(security_flags_t *f, reload_slot_t *const *slots, long n);

/* Worker thread, on stop: a close_notify to every DTLS session. */
size_t serve_close_sessions(coap_context_t *ctx);

/* One state line to systemd's NOTIFY_SOCKET ("READY=1", "RELOADING=1",
 * "STOPPING=1"); nothing when not started by systemd. */
void serve_notify(const char *state);

#endif
