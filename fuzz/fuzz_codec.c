/* Fuzz the wire layer: whatever parses must re-encode to a message that
 * parses to the same thing; URI and link-format readers must never crash. */
#include <stdlib.h>
#include <string.h>

#include "coaps/wire.h"

static void same_or_die(const coap_msg_t *a, const coap_msg_t *b) {
  if (a->type != b->type || a->code != b->code || a->mid != b->mid ||
      a->token_len != b->token_len || memcmp(a->token, b->token, a->token_len) ||
      a->n_options != b->n_options || a->payload_len != b->payload_len ||
      (a->payload_len && memcmp(a->payload, b->payload, a->payload_len)))
    abort();
  for (size_t i = 0; i < a->n_options; i++) {
    const coap_option_t *x = &a->options[i], *y = &b->options[i];
    if (x->number != y->number || x->length != y->length ||
        (x->length && memcmp(x->value, y->value, x->length)))
      abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  coap_msg_t msg, again;
  if (coap_msg_parse(&msg, data, size) == 0) {
    uint8_t buf[70000];
    int n = coap_msg_encode(&msg, buf, sizeof buf);
    if (n < 0 || (size_t)n != coap_msg_encoded_size(&msg)) abort();
    if (coap_msg_parse(&again, buf, (size_t)n) != 0) abort();
    same_or_die(&msg, &again);
    char line[512], path[512];
    coap_msg_format(&msg, line, sizeof line);
    coap_msg_uri_path(&msg, path, sizeof path);
  }
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  coap_uri_t uri;
  if (coap_uri_parse(&uri, text) == 0) {
    coap_msg_t m;
    uint8_t store[2048];
    char out[2400];
    coap_msg_init(&m, COAP_TYPE_CON, COAP_GET, 1);
    coap_uri_to_options(&uri, &m, store, sizeof store);
    coap_uri_format(&uri, out, sizeof out);
  }
  size_t cursor = 0;
  const char *href, *attrs;
  size_t href_len, attrs_len;
  while (coap_link_next(text, size, &cursor, &href, &href_len, &attrs, &attrs_len) > 0) {
  }
  coap_link_attr_t attr = {"rt", "temperature"};
  coap_link_matches("/x", &attr, 1, text);
  free(text);
  return 0;
}
