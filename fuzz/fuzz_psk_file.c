/* The PSK file parser (coap_psk_table_parse) on any bytes: it never
 * crashes, leaks or reads past the buffer; an accepted file's identities
 * are all found again; a refused one names a line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coaps/credentials.h"
#include "coaps/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  coap_psk_table_t *t = coap_psk_table_new(0);
  if (!t) return 0;
  char why[256];
  int rc = coap_psk_table_parse(t, "f", (const char *)data, size, why, sizeof why);
  if (rc < 0 && rc != COAP_E_NOMEM && strncmp(why, "f:", 2) != 0) abort();
  if (rc >= 0 && (size_t)rc != coap_psk_table_count(t)) abort();
  /* Look up each line's first field: found when the parse succeeded. */
  const char *p = (const char *)data, *end = p + size;
  while (rc > 0 && p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (n && p[n - 1] == '\r') n--;
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
    size_t j = i;
    while (j < n && p[j] != ' ' && p[j] != '\t') j++;
    if (j > i && p[i] != '#' && j - i <= COAP_PSK_IDENTITY_MAX) {
      char id[COAP_PSK_IDENTITY_MAX + 1];
      memcpy(id, p + i, j - i);
      id[j - i] = '\0';
      uint8_t key[COAP_PSK_KEY_MAX];
      if (coap_psk_table_lookup(t, id, key, sizeof key) <= 0) abort();
    }
    p = nl ? nl + 1 : end;
  }
  coap_psk_table_free(t);
  return 0;
}
