#include "support_msg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

/* Big enough for the largest message a test builds (a 16 KiB payload is
 * kept here too). */
static uint8_t pool[16384];
static size_t pool_used;

void sim_msg_reset(void) {
  pool_used = 0;
}

const uint8_t *sim_keep(const void *v, size_t n) {
  assert_true(pool_used + n <= sizeof pool);
  uint8_t *p = pool + pool_used;
  if (n) memcpy(p, v, n);
  pool_used += n;
  return p;
}

void sim_msg_begin(coap_msg_t *m, coap_type_t type, uint8_t code, uint16_t mid, uint16_t tag,
                   const char *path) {
  sim_msg_reset();
  coap_msg_init(m, type, code, mid);
  uint8_t tok[4] = {(uint8_t)(tag >> 8), (uint8_t)tag, (uint8_t)(mid >> 8), (uint8_t)mid};
  coap_msg_set_token(m, tok, sizeof tok);
  if (path) sim_opt(m, COAP_OPTION_URI_PATH, path, strlen(path));
}

void sim_opt(coap_msg_t *m, uint16_t number, const void *v, size_t n) {
  const uint8_t *p = sim_keep(v, n);
  size_t at = m->n_options;
  while (at > 0 && m->options[at - 1].number > number) at--;
  memmove(&m->options[at + 1], &m->options[at], (m->n_options - at) * sizeof m->options[0]);
  m->options[at].number = number;
  m->options[at].length = (uint16_t)n;
  m->options[at].value = p;
  m->n_options++;
}

void sim_opt_uint(coap_msg_t *m, uint16_t number, uint32_t v) {
  uint8_t be[4];
  size_t n = 0;
  for (int s = 24; s >= 0; s -= 8)
    if (n || (v >> s) & 0xFF) be[n++] = (uint8_t)(v >> s);
  sim_opt(m, number, be, n);
}

void sim_opt_block(coap_msg_t *m, uint16_t number, uint32_t num, int more, uint8_t szx) {
  coap_block_t b = {num, (uint8_t)more, szx};
  uint8_t v[3];
  int n = coap_block_encode(&b, v);
  assert_true(n >= 0);
  sim_opt(m, number, v, (size_t)n);
}

int sim_block_of(const coap_msg_t *r, uint16_t number, coap_block_t *b) {
  const coap_option_t *o = coap_msg_find_option(r, number);
  if (!o) return 0;
  assert_int_equal(coap_block_decode(o, b), 0);
  return 1;
}
