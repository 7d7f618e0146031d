/* A long-lived coaps:// client for the shell tests: one context (one DTLS
 * session) that sends a GET each time a line arrives on standard input and
 * prints "ok CODE" or "error CAUSE"; the library's log goes to stderr at
 * info level, where a re-handshake after a lost session is reported.
 * usage: repeat_client URI PSK_IDENTITY PSK [--no-cid]
 * (--no-cid: no Connection ID asked for, so the server's kernel hands its
 * datagrams to a worker by the address hash alone). */
#include <stdio.h>
#include <string.h>

#include "coap.h"

int main(int argc, char **argv) {
  int no_cid = argc == 5 && strcmp(argv[4], "--no-cid") == 0;
  if (argc != 4 && !no_cid) {
    fprintf(stderr, "usage: repeat_client URI PSK_IDENTITY PSK [--no-cid]\n");
    return 64;
  }
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.log_level = COAP_LOG_INFO;
  coap_context_t *ctx = coap_context_new(&cfg);
  coap_dtls_context_t *d = coap_dtls_new_context(ctx);
  if (!ctx || !d ||
      coap_dtls_set_psk(d, (const uint8_t *)argv[2], (const uint8_t *)argv[3], strlen(argv[3])) <
          0 ||
      (no_cid && coap_dtls_set_cid(d, 0, 0) < 0) || coap_context_set_dtls_context(ctx, d) < 0) {
    fprintf(stderr, "repeat_client: setup failed\n");
    return 1;
  }
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    coap_request_opts_t o;
    coap_request_opts_init(&o, COAP_GET, argv[1]);
    /* Room for the client to give a silent session up (after three lost
     * round trips of the request, 14-21 s) and make a new handshake. */
    o.timeout_ms = 60000;
    coap_response_copy_t r;
    int rc = coap_request_blocking(ctx, &o, &r);
    coap_diag_t g;
    if (rc == 0) {
      printf("ok %s\n", coap_code_name(r.code));
      coap_response_copy_clear(&r);
    } else {
      printf("error %s\n",
             coap_context_last_diag(ctx, &g) == 0 ? coap_cause_name(g.cause) : coap_strerror(rc));
    }
    fflush(stdout);
  }
  coap_stats_t st;
  coap_context_get_stats(ctx, &st);
  printf("reconnects %llu session-lost %llu\n", (unsigned long long)st.dtls_reconnects,
         (unsigned long long)st.failures_by_cause[COAP_CAUSE_SESSION_LOST]);
  coap_context_free(ctx);
  return 0;
}
