#include "serve_reload.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log_json.h"

void reload_slot_take(reload_slot_t *s, coap_context_t *ctx, int cid_worker) {
  coap_dtls_context_t *d = atomic_exchange(&s->next, NULL);
  if (d) {
    if (cid_worker >= 0) coap_dtls_set_cid_worker(d, (unsigned)cid_worker);
    coap_dtls_context_t *old = coap_context_dtls(ctx);
    /* Cookies already sent and tickets already issued stay valid. */
    if (old) coap_dtls_share_keys(d, old);
    coap_context_set_dtls_context(ctx, d);
    atomic_fetch_add(&s->done, 1);
  }
  if (atomic_exchange(&s->end_revoked, 0)) {
    atomic_store(&s->ended, coap_context_end_revoked_sessions(ctx));
    atomic_fetch_add(&s->ended_done, 1);
  }
}

static void free_all(coap_dtls_context_t **d, long n) {
  for (long i = 0; i < n; i++) coap_dtls_context_free(d[i]);
  free(d);
}

/* One configuration per worker from the files as they are now; NULL
 * after saying why. */
static coap_dtls_context_t **build_all(const security_flags_t *f, long n, coap_psk_table_t *table) {
  coap_dtls_context_t **d = calloc((size_t)n, sizeof(*d));
  if (!d) {
    cli_error("reload failed, the credentials in use are kept: out of memory");
    return NULL;
  }
  for (long i = 0; i < n; i++) {
    d[i] = coap_dtls_context_new();
    int rc = d[i] ? security_flags_build(f, d[i], 1, table) : COAP_E_NOMEM;
    if (rc < 0) {
      cli_error("reload failed, the credentials in use are kept: %s",
                d[i] ? coap_dtls_context_last_error(d[i]) : "out of memory");
      free_all(d, n);
      return NULL;
    }
  }
  return d;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

/* Wait (at most 2 s) until |counter| reaches |want|. */
static void await_count(atomic_uint *counter, unsigned want) {
  for (int waited = 0; atomic_load(counter) < want && waited < 2000; waited += 10) sleep_ms(10);
}

/* Hand |d| to the workers and wait until each has taken its own; only
 * then are the sessions the new credentials refuse ended. Ended earlier,
 * on the first worker to switch, a client reconnecting at once could
 * reach a worker still on the old credentials (its new port hashes
 * anywhere) and resume there. */
static size_t hand_over(reload_slot_t *const *slots, coap_dtls_context_t **d, long n) {
  unsigned want[64];
  for (long i = 0; i < n; i++) {
    want[i % 64] = atomic_load(&slots[i]->done) + 1;
    /* One not taken from an earlier reload is ours to drop. */
    coap_dtls_context_free(atomic_exchange(&slots[i]->next, d[i]));
  }
  for (long i = 0; i < n; i++) await_count(&slots[i]->done, want[i % 64]);
  for (long i = 0; i < n; i++) {
    want[i % 64] = atomic_load(&slots[i]->ended_done) + 1;
    atomic_store(&slots[i]->end_revoked, 1);
  }
  size_t ended = 0;
  for (long i = 0; i < n; i++) {
    await_count(&slots[i]->ended_done, want[i % 64]);
    ended += atomic_load(&slots[i]->ended);
  }
  return ended;
}

int serve_reload(security_flags_t *f, reload_slot_t *const *slots, long n) {
  if (!f->any) {
    cli_error("reload: no DTLS credentials to reload (none were given)");
    return -1;
  }
  serve_notify("RELOADING=1");
  char why[640] = "";
  coap_psk_table_t *table = NULL;
  /* Built without a logger (the worker's is set when it takes it over):
   * the library's refusals come back through last_error, said once here. */
  int loaded = f->psk_file ? security_flags_read_psk_file(f, &table, why, sizeof why) : 0;
  coap_dtls_context_t **d = loaded < 0 ? NULL : build_all(f, n, table);
  log_field_t file = LOG_TEXT("file", f->psk_file ? f->psk_file : "");
  if (loaded < 0)
    tool_log("error", &file, 1, "reload failed, the credentials in use are kept: %s", why);
  else if (why[0])
    tool_log("warning", &file, 1, "%s", why);
  if (!d) {
    coap_psk_table_free(table);
    serve_notify("READY=1");
    return -1;
  }
  coap_psk_table_free(f->psk_table);
  f->psk_table = table;
  size_t ended = hand_over(slots, d, n);
  free(d);
  char psk[128] = "";
  if (f->psk_file)
    snprintf(psk, sizeof psk, " (%zu PSK identities in %s)", coap_psk_table_count(table),
             f->psk_file);
  log_field_t fields[] = {LOG_COUNT("sessions_ended", ended),
                          LOG_COUNT("psk_identities", coap_psk_table_count(table)),
                          LOG_TEXT("file", f->psk_file ? f->psk_file : "")};
  tool_log("info", fields, f->psk_file ? 3 : 1,
           "reload: credentials reloaded%s; %zu session%s ended whose credentials were removed",
           psk, ended, ended == 1 ? "" : "s");
  serve_notify("READY=1");
  return 0;
}

size_t serve_close_sessions(coap_context_t *ctx) {
  return coap_context_end_sessions(ctx, NULL, NULL);
}

/* sd_notify(3)'s protocol: one datagram to the AF_UNIX socket named by
 * $NOTIFY_SOCKET ('@' for the abstract namespace). */
void serve_notify(const char *state) {
  const char *path = getenv("NOTIFY_SOCKET");
  if (!path || (path[0] != '/' && path[0] != '@')) return;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  size_t len = strlen(path);
  if (len >= sizeof sa.sun_path) return;
  memcpy(sa.sun_path, path, len);
  if (path[0] == '@') sa.sun_path[0] = '\0';
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  char msg[128];
  int n = snprintf(msg, sizeof msg, "%s", state);
  if (strcmp(state, "RELOADING=1") == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    n = snprintf(
        msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
        (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
  }
  sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&sa,
         (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
  close(fd);
}
