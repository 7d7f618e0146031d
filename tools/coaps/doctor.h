/* coaps doctor: shared between the steps (doctor.c) and the output
 * (doctor_output.c). */
#ifndef COAPS_TOOL_DOCTOR_H
#define COAPS_TOOL_DOCTOR_H

#include <stdarg.h>

#include "cli.h"
#include "security_flags.h"

typedef struct doctor_args {
  const char *uri;
  unsigned timeout_ms, probe_timeout_ms;
  int json, markdown;
  security_flags_t sec;
} doctor_args_t;

typedef enum step_status { ST_PENDING = 0, ST_OK, ST_WARN, ST_FAILED, ST_SKIPPED } step_status_t;

/* The doctor's steps, in order. */
enum {
  S_RESOLVE,
  S_CREDENTIALS,
  S_PROBE,
  S_COOKIE,
  S_NEGOTIATION,
  S_AUTHENTICATION,
  S_FINISHED,
  S_REQUEST,
  S_COUNT
};

typedef struct doctor_step {
  const char *name;
  step_status_t status;
  long ms;
  char detail[512];
} doctor_step_t;

typedef struct doctor {
  doctor_args_t a;
  coap_uri_t uri;
  coap_address_t addr;
  int secure;
  doctor_step_t steps[S_COUNT];
  coap_handshake_report_t rep;
  int has_rep;
  int failed, failed_step, resolve_failed;
  coap_diag_t diag;
  uint8_t code;
  /* The Connection IDs of the handshake (has_cid: one completed). */
  coap_dtls_cid_info_t cid;
  int has_cid;
} doctor_t;

void doctor_init_steps(doctor_t *d);
/* The handshake steps from the library's report. */
void doctor_fill_handshake_steps(doctor_t *d);
/* The doctor step a library diagnosis belongs to. */
int doctor_step_of(const doctor_t *d);
int doctor_exit_code(const doctor_t *d);
void doctor_print_text(const doctor_t *d);
void doctor_print_json(const doctor_t *d);
void doctor_print_causes(int markdown);

#endif
