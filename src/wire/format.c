/* One-line human-readable rendering of a message, for verbose tools and
 * debug logs. */
#include <stdarg.h>
#include <stdio.h>

#include "coaps/wire.h"

typedef struct out {
  char *buf;
  size_t cap, len;
} out_t;

__attribute__((format(printf, 2, 3))) static void put(out_t *o, const char *fmt, ...) {
  if (o->len + 1 >= o->cap) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  o->len += (size_t)n;
  if (o->len >= o->cap) o->len = o->cap - 1;
}

static void put_hex(out_t *o, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) put(o, "%02x", p[i]);
}

static void put_text(out_t *o, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] >= 0x20 && p[i] < 0x7F && p[i] != '\\')
      put(o, "%c", p[i]);
    else
      put(o, "\\x%02x", p[i]);
  }
}

static void put_option(out_t *o, const coap_option_t *opt) {
  const coap_option_info_t *info = coap_option_info(opt->number);
  if (!info) {
    put(o, " #%u:", opt->number);
    put_hex(o, opt->value, opt->length);
    return;
  }
  put(o, " %s", info->name);
  switch (info->format) {
    case COAP_OPTFMT_EMPTY: break;
    case COAP_OPTFMT_UINT: put(o, ":%lld", (long long)coap_option_uint(opt)); break;
    case COAP_OPTFMT_STRING:
      put(o, ":");
      put_text(o, opt->value, opt->length);
      break;
    default:
      put(o, ":");
      put_hex(o, opt->value, opt->length);
      break;
  }
}

size_t coap_msg_format(const coap_msg_t *msg, char *buf, size_t cap) {
  if (!buf || cap == 0) return 0;
  out_t o = {buf, cap, 0};
  buf[0] = '\0';
  if (!msg) return 0;
  put(&o, "%s %s mid=0x%04x", coap_type_name(msg->type), coap_code_name(msg->code), msg->mid);
  if (msg->token_len) {
    put(&o, " token=");
    put_hex(&o, msg->token, msg->token_len);
  }
  for (size_t i = 0; i < msg->n_options; i++) put_option(&o, &msg->options[i]);
  if (msg->payload_len) put(&o, " payload=%zuB", msg->payload_len);
  return o.len;
}
