/* Printing a diagnosis the same way everywhere in the tool: what failed
 * (with the cause's stable name), why, who noticed, and the fix. */
#include <string.h>

#include "cli.h"

int cli_exit_for_diag(const coap_diag_t *g, int err) {
  if (!g) return cli_exit_for_error(err);
  switch (coap_cause_info(g->cause)->cls) {
    case COAP_CLASS_NO_ANSWER: return EXIT_TIMEOUT;
    case COAP_CLASS_NETWORK: return EXIT_NETWORK;
    case COAP_CLASS_CONFIG: return EXIT_CONFIG; /* as coaps doctor says it */
    case COAP_CLASS_NONE: return cli_exit_for_error(err);
    default: return EXIT_SECURITY;
  }
}

/* "alert decrypt_error from the server at the key confirmation step". */
void cli_diag_origin(const coap_diag_t *g, char *out, size_t cap) {
  const char *peer = g->is_server ? "client" : "server";
  char by[96];
  switch (g->detected_by) {
    case COAP_DETECTED_PEER_ALERT:
      snprintf(by, sizeof by, "alert %s from the %s", g->alert_name, peer);
      break;
    case COAP_DETECTED_LOCAL:
      if (g->alert >= 0)
        snprintf(by, sizeof by, "our check (alert %s sent to the %s)", g->alert_name, peer);
      else
        snprintf(by, sizeof by, "our check");
      break;
    case COAP_DETECTED_CONFIG: snprintf(by, sizeof by, "configuration check"); break;
    default: snprintf(by, sizeof by, "what the network showed"); break;
  }
  if (g->step == COAP_STEP_NONE)
    snprintf(out, cap, "found by %s", by);
  else
    snprintf(out, cap, "found by %s, at the %s step, after %u flight%s and %.2f s", by,
             coap_step_name(g->step), g->flights, g->flights == 1 ? "" : "s",
             (double)g->elapsed_ms / 1000.0);
}

void cli_print_diag(const char *uri, const coap_diag_t *g) {
  char origin[256];
  cli_diag_origin(g, origin, sizeof origin);
  cli_error("%s: %s [%s]", uri, coap_cause_str(g->cause), coap_cause_name(g->cause));
  fprintf(stderr, "  why: %s\n  how: %s\n  fix: %s\n", g->explanation, origin, g->fix);
}
