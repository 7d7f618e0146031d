/* Versioned public structs (docs/architecture.md, "ABI"): a program passes
 * the version of a struct it was compiled with (COAP_*_VERSION, through the
 * macros of the public headers), and the library reads or writes only the
 * bytes that version has. Inside the library every struct is the latest
 * one: a caller's older struct is copied over one holding the defaults on
 * the way in, and the latest one is cut to the caller's version on the way
 * out. */
#ifndef COAPS_COMMON_ABI_H
#define COAPS_COMMON_ABI_H

#include <stddef.h>

#include "common/log.h"

/* Bytes of a version whose last field is |last|: what a program compiled
 * with that version has, trailing padding aside (never written nor read). */
#define COAP_ABI_LEN(type, last) (offsetof(type, last) + sizeof(((type *)0)->last))

/* One versioned struct: the length of each version this library knows. */
typedef struct coap_abi_struct {
  const char *name;  /* "coap_stats_t", for the log line */
  const size_t *len; /* len[v - 1]: bytes of version v */
  int versions;      /* known: 1..versions (the header's COAP_*_VERSION) */
} coap_abi_struct_t;

typedef enum coap_abi_id {
  COAP_ABI_TX_PARAMS,
  COAP_ABI_CONTEXT_CONFIG,
  COAP_ABI_TRANSPORT,
  COAP_ABI_REQUEST_OPTS,
  COAP_ABI_RESPONSE_COPY,
  COAP_ABI_STATS,
  COAP_ABI_DIAG,
  COAP_ABI_HANDSHAKE_REPORT,
  COAP_ABI_PROBE_RESULT,
  COAP_ABI_FAILURE_RECORD,
  COAP_ABI_DTLS_CID_INFO,
  COAP_ABI_DTLS_CID_STATS,
  COAP_ABI_COUNT
} coap_abi_id_t;

/* The table of a public struct (a function, not a global: the library
 * defines no global data, and sanitizer builds would export helpers for
 * it). */
const coap_abi_struct_t *coap_abi_struct(coap_abi_id_t id);

/* Bytes of |version| of |s|, or 0 when this library does not know that
 * version (below 1, or newer than the library: a program built against a
 * newer header): then one error line to |log| (may be NULL: a function
 * without a context has nowhere to say it), naming |fn|. */
size_t coap_abi_len(const coap_abi_struct_t *s, int version, const coap_logger_t *log,
                    const char *fn);

/* In (the program fills, the library reads): copy |version|'s bytes of
 * |from| over |latest|, which holds the defaults for the fields that
 * version does not have. 0 or COAP_E_INVALID_ARG (unknown version,
 * logged). */
int coap_abi_read(const coap_abi_struct_t *s, int version, const void *from, void *latest,
                  const coap_logger_t *log, const char *fn);

/* Out (the program allocates, the library fills): |version|'s bytes of
 * |latest| into |to|, not one byte more. 0 or COAP_E_INVALID_ARG. */
int coap_abi_write(const coap_abi_struct_t *s, int version, const void *latest, void *to,
                   const coap_logger_t *log, const char *fn);

#endif
