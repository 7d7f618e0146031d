/* CoAP message parse and encode (RFC 7252 §3). Parsing fills a coap_msg_t
 * with views into the datagram and never reads past its end; encoding
 * never writes past the caller's capacity. */
#include <string.h>

#include "coaps/error.h"
#include "coaps/wire.h"

/* Read an option delta/length nibble with its 13/14 extension. */
static int read_extended(unsigned nibble, const uint8_t **p, const uint8_t *end, uint32_t *out) {
  if (nibble < 13) {
    *out = nibble;
    return 0;
  }
  if (nibble == 13) {
    if (end - *p < 1) return COAP_E_BAD_OPTION;
    *out = 13u + (*p)[0];
    *p += 1;
    return 0;
  }
  if (nibble == 14) {
    if (end - *p < 2) return COAP_E_BAD_OPTION;
    *out = 269u + ((uint32_t)(*p)[0] << 8 | (*p)[1]);
    *p += 2;
    return 0;
  }
  return COAP_E_BAD_OPTION; /* 15 is reserved outside the payload marker */
}

static int parse_options(coap_msg_t *msg, const uint8_t *p, const uint8_t *end) {
  uint32_t number = 0;
  while (p < end) {
    if (*p == COAP_PAYLOAD_MARKER) {
      p++;
      if (p == end) return COAP_E_EMPTY_PAYLOAD;
      msg->payload = p;
      msg->payload_len = (size_t)(end - p);
      return 0;
    }
    unsigned delta_nibble = *p >> 4, len_nibble = *p & 0x0F;
    p++;
    uint32_t delta, len;
    int rc = read_extended(delta_nibble, &p, end, &delta);
    if (rc < 0) return rc;
    if ((rc = read_extended(len_nibble, &p, end, &len)) < 0) return rc;
    number += delta;
    /* A length past 65535 (possible with nibble 14) cannot be held in
     * coap_option_t.length: reject it instead of truncating it. */
    if (number > 0xFFFF || len > 0xFFFF || len > (size_t)(end - p)) return COAP_E_BAD_OPTION;
    if (msg->n_options == COAP_MAX_OPTIONS) return COAP_E_TOO_MANY_OPTIONS;
    coap_option_t *o = &msg->options[msg->n_options++];
    o->number = (uint16_t)number;
    o->length = (uint16_t)len;
    o->value = p;
    p += len;
  }
  return 0;
}

int coap_msg_parse(coap_msg_t *msg, const uint8_t *data, size_t len) {
  if (!msg || (!data && len)) return COAP_E_INVALID_ARG;
  memset(msg, 0, offsetof(coap_msg_t, options));
  msg->payload = NULL;
  msg->payload_len = 0;
  msg->scratch_used = 0;
  if (len < COAP_HEADER_LEN) return COAP_E_TRUNCATED;
  unsigned version = data[0] >> 6, tkl = data[0] & 0x0F;
  msg->type = (data[0] >> 4) & 3;
  msg->code = data[1];
  msg->mid = (uint16_t)(data[2] << 8 | data[3]);
  if (version != COAP_VERSION) return COAP_E_BAD_VERSION;
  if (tkl > COAP_MAX_TOKEN_LEN) return COAP_E_BAD_TOKEN_LEN;
  if (len < COAP_HEADER_LEN + tkl) return COAP_E_TRUNCATED;
  msg->token_len = (uint8_t)tkl;
  memcpy(msg->token, data + COAP_HEADER_LEN, tkl);
  unsigned cls = COAP_CODE_CLASS(msg->code);
  if (cls == 1 || cls == 6 || cls == 7) return COAP_E_BAD_CODE;
  if (msg->code == COAP_CODE_EMPTY && len != COAP_HEADER_LEN) return COAP_E_BAD_EMPTY;
  return parse_options(msg, data + COAP_HEADER_LEN + tkl, data + len);
}

void coap_msg_init(coap_msg_t *msg, coap_type_t type, uint8_t code, uint16_t mid) {
  if (!msg) return;
  memset(msg, 0, offsetof(coap_msg_t, options));
  msg->type = (uint8_t)type;
  msg->code = code;
  msg->mid = mid;
  msg->payload = NULL;
  msg->payload_len = 0;
  msg->scratch_used = 0;
}

int coap_msg_set_token(coap_msg_t *msg, const uint8_t *token, size_t len) {
  if (!msg) return COAP_E_INVALID_ARG;
  if (len > COAP_MAX_TOKEN_LEN || (len && !token)) return COAP_E_INVALID_ARG;
  if (len) memcpy(msg->token, token, len);
  msg->token_len = (uint8_t)len;
  return 0;
}

int coap_msg_add_option(coap_msg_t *msg, uint16_t number, const void *value, size_t len) {
  if (!msg) return COAP_E_INVALID_ARG;
  if (len > 0xFFFF || (len && !value)) return COAP_E_INVALID_ARG;
  const coap_option_info_t *info = coap_option_info(number);
  if (info && (len < info->min_len || len > info->max_len)) return COAP_E_OPTION_VALUE;
  if (msg->n_options == COAP_MAX_OPTIONS) return COAP_E_TOO_MANY_OPTIONS;
  /* Insert after every option with a number <= |number|: sorted, and
   * repeated options stay in the order they were added. */
  size_t at = msg->n_options;
  while (at > 0 && msg->options[at - 1].number > number) at--;
  memmove(&msg->options[at + 1], &msg->options[at], (msg->n_options - at) * sizeof(coap_option_t));
  msg->options[at].number = number;
  msg->options[at].length = (uint16_t)len;
  msg->options[at].value = value;
  msg->n_options++;
  return 0;
}

int coap_msg_add_uint(coap_msg_t *msg, uint16_t number, uint32_t value) {
  if (!msg) return COAP_E_INVALID_ARG;
  uint8_t be[4];
  size_t n = 0;
  for (int shift = 24; shift >= 0; shift -= 8)
    if (n || ((value >> shift) & 0xFF)) be[n++] = (uint8_t)(value >> shift);
  if (msg->scratch_used + n > sizeof msg->scratch) return COAP_E_BUFFER_TOO_SMALL;
  uint8_t *dst = msg->scratch + msg->scratch_used;
  memcpy(dst, be, n);
  int rc = coap_msg_add_option(msg, number, dst, n);
  if (rc == 0) msg->scratch_used = (uint8_t)(msg->scratch_used + n);
  return rc;
}

int coap_msg_add_string(coap_msg_t *msg, uint16_t number, const char *value) {
  return coap_msg_add_option(msg, number, value, value ? strlen(value) : 0);
}

void coap_msg_remove_option(coap_msg_t *msg, uint16_t number) {
  if (!msg) return;
  size_t out = 0;
  for (size_t i = 0; i < msg->n_options; i++)
    if (msg->options[i].number != number) msg->options[out++] = msg->options[i];
  msg->n_options = (uint16_t)out;
}

void coap_msg_set_payload(coap_msg_t *msg, const void *payload, size_t len) {
  if (!msg) return;
  msg->payload = len ? payload : NULL;
  msg->payload_len = payload ? len : 0;
}

const coap_option_t *coap_msg_find_option(const coap_msg_t *msg, uint16_t number) {
  if (!msg) return NULL;
  for (size_t i = 0; i < msg->n_options; i++) {
    if (msg->options[i].number == number) return &msg->options[i];
    if (msg->options[i].number > number) break;
  }
  return NULL;
}

const coap_option_t *coap_msg_next_option(const coap_msg_t *msg, const coap_option_t *prev) {
  if (!msg || !prev) return NULL;
  const coap_option_t *end = msg->options + msg->n_options;
  const coap_option_t *next = prev + 1;
  return next < end && next->number == prev->number ? next : NULL;
}

int64_t coap_option_uint(const coap_option_t *opt) {
  if (!opt || opt->length > 4) return -1;
  uint32_t v = 0;
  for (size_t i = 0; i < opt->length; i++) v = v << 8 | opt->value[i];
  return v;
}

int64_t coap_msg_get_uint(const coap_msg_t *msg, uint16_t number, int64_t dflt) {
  const coap_option_t *o = coap_msg_find_option(msg, number);
  int64_t v = coap_option_uint(o);
  return v < 0 ? dflt : v;
}

int coap_msg_content_format(const coap_msg_t *msg) {
  return (int)coap_msg_get_uint(msg, COAP_OPTION_CONTENT_FORMAT, COAP_FORMAT_NONE);
}

const coap_option_t *coap_msg_unknown_critical(const coap_msg_t *msg, const uint16_t *known,
                                               size_t n_known) {
  if (!msg) return NULL;
  if (!known) n_known = 0;
  for (size_t i = 0; i < msg->n_options; i++) {
    const coap_option_t *o = &msg->options[i];
    if (!COAP_OPTION_IS_CRITICAL(o->number) || coap_option_info(o->number)) continue;
    size_t k = 0;
    while (k < n_known && known[k] != o->number) k++;
    if (k == n_known) return o;
  }
  return NULL;
}

/* Bytes of the extension for a delta or length value. */
static size_t extension_size(uint32_t v) {
  return v < 13 ? 0 : v < 269 ? 1 : 2;
}
static unsigned nibble_of(uint32_t v) {
  return v < 13 ? v : v < 269 ? 13 : 14;
}

size_t coap_msg_encoded_size(const coap_msg_t *msg) {
  if (!msg) return 0;
  size_t n = COAP_HEADER_LEN + msg->token_len;
  uint32_t prev = 0;
  for (size_t i = 0; i < msg->n_options; i++) {
    const coap_option_t *o = &msg->options[i];
    uint32_t delta = o->number - prev;
    n += 1 + extension_size(delta) + extension_size(o->length) + o->length;
    prev = o->number;
  }
  if (msg->payload_len) n += 1 + msg->payload_len;
  return n;
}

static uint8_t *write_extension(uint8_t *p, uint32_t v) {
  if (v >= 269) {
    v -= 269;
    *p++ = (uint8_t)(v >> 8);
    *p++ = (uint8_t)v;
  } else if (v >= 13) {
    *p++ = (uint8_t)(v - 13);
  }
  return p;
}

int coap_msg_encode(const coap_msg_t *msg, uint8_t *buf, size_t cap) {
  if (!msg || (!buf && cap)) return COAP_E_INVALID_ARG;
  size_t need = coap_msg_encoded_size(msg);
  if (need > cap) return COAP_E_BUFFER_TOO_SMALL;
  if (need > 0x7FFFFFFF || msg->token_len > COAP_MAX_TOKEN_LEN) return COAP_E_INVALID_ARG;
  uint8_t *p = buf;
  *p++ = (uint8_t)(COAP_VERSION << 6 | (msg->type & 3) << 4 | msg->token_len);
  *p++ = msg->code;
  *p++ = (uint8_t)(msg->mid >> 8);
  *p++ = (uint8_t)msg->mid;
  memcpy(p, msg->token, msg->token_len);
  p += msg->token_len;
  uint32_t prev = 0;
  for (size_t i = 0; i < msg->n_options; i++) {
    const coap_option_t *o = &msg->options[i];
    if (o->number < prev) return COAP_E_OPTION_ORDER;
    uint32_t delta = o->number - prev;
    *p++ = (uint8_t)(nibble_of(delta) << 4 | nibble_of(o->length));
    p = write_extension(p, delta);
    p = write_extension(p, o->length);
    if (o->length) memcpy(p, o->value, o->length);
    p += o->length;
    prev = o->number;
  }
  if (msg->payload_len) {
    *p++ = COAP_PAYLOAD_MARKER;
    memcpy(p, msg->payload, msg->payload_len);
    p += msg->payload_len;
  }
  return (int)(p - buf);
}
