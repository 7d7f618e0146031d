/* How the request commands print a response: the payload as it came (a
 * single response), one escaped line (each notification of an
 * observation: a payload with a newline must not look like two), or one
 * JSON object a line (--json); -v adds the details on standard error. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "request.h"

/* Length of the UTF-8 sequence at |p| (at most |n| bytes), 0 when it is
 * not one: overlong forms, surrogates and values past U+10FFFF are not. */
static size_t utf8_seq(const uint8_t *p, size_t n) {
  uint8_t c = p[0];
  size_t len;
  uint32_t v;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF)
    len = 2, v = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF)
    len = 3, v = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4)
    len = 4, v = c & 0x07;
  else
    return 0;
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    v = v << 6 | (p[i] & 0x3F);
  }
  if ((len == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) ||
      (len == 4 && (v < 0x10000 || v > 0x10FFFF)))
    return 0;
  return len;
}

static int is_utf8(const uint8_t *p, size_t n) {
  for (size_t i = 0, k; i < n; i += k)
    if (!(k = utf8_seq(p + i, n - i))) return 0;
  return 1;
}

/* The payload on one line: text as it is, control bytes and bytes that
 * are no UTF-8 as \n, \r, \t or \xNN. */
static void print_line_safe(const uint8_t *p, size_t n) {
  for (size_t i = 0, k; i < n; i += k) {
    uint8_t c = p[i];
    k = utf8_seq(p + i, n - i);
    if (k > 1) {
      fwrite(p + i, 1, k, stdout);
    } else {
      k = 1;
      if (c == '\n')
        fputs("\\n", stdout);
      else if (c == '\r')
        fputs("\\r", stdout);
      else if (c == '\t')
        fputs("\\t", stdout);
      else if (c < 0x20 || c >= 0x7F)
        printf("\\x%02x", c);
      else
        putchar(c);
    }
  }
  putchar('\n');
}

static void json_text(const uint8_t *p, size_t n) {
  putchar('"');
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c == '\n')
      fputs("\\n", stdout);
    else if (c == '\r')
      fputs("\\r", stdout);
    else if (c == '\t')
      fputs("\\t", stdout);
    else if (c < 0x20 || c == 0x7F)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

/* {"code":"2.05","observe":7,"max_age":60,"format":"text/plain",
 *  "size":6,"payload":"21.5 C"}: "observe" only on an observation,
 * "format" null without Content-Format (a number when it has no name),
 * and "payload_hex" instead of "payload" for bytes that are no UTF-8. */
static void print_json(const coap_reply_t *r) {
  printf("{\"code\":\"%u.%02u\"", COAP_CODE_CLASS(r->code), r->code & 0x1F);
  if (r->has_observe) printf(",\"observe\":%u", (unsigned)r->observe);
  if (r->msg)
    printf(",\"max_age\":%lld", (long long)coap_msg_get_uint(r->msg, COAP_OPTION_MAX_AGE, 60));
  const char *name = coap_content_format_name(r->content_format);
  if (r->content_format == COAP_FORMAT_NONE)
    fputs(",\"format\":null", stdout);
  else if (name)
    printf(",\"format\":\"%s\"", name);
  else
    printf(",\"format\":%d", r->content_format);
  printf(",\"size\":%zu", r->payload_len);
  if (is_utf8(r->payload, r->payload_len)) {
    fputs(",\"payload\":", stdout);
    json_text(r->payload, r->payload_len);
  } else {
    fputs(",\"payload_hex\":\"", stdout);
    for (size_t i = 0; i < r->payload_len; i++) printf("%02x", r->payload[i]);
    putchar('"');
  }
  fputs("}\n", stdout);
}

/* -v: "coaps: 2.05 Content, Observe 7, Max-Age 60 s, text/plain, 6 bytes" */
static void print_details(const coap_reply_t *r) {
  char format[32];
  const char *name = coap_content_format_name(r->content_format);
  if (r->content_format == COAP_FORMAT_NONE)
    snprintf(format, sizeof format, "no Content-Format");
  else if (name)
    snprintf(format, sizeof format, "%s", name);
  else
    snprintf(format, sizeof format, "Content-Format %d", r->content_format);
  fprintf(stderr, "coaps: %s", coap_code_name(r->code));
  if (r->has_observe) fprintf(stderr, ", Observe %u", (unsigned)r->observe);
  if (r->msg)
    fprintf(stderr, ", Max-Age %lld s",
            (long long)coap_msg_get_uint(r->msg, COAP_OPTION_MAX_AGE, 60));
  fprintf(stderr, ", %s, %zu bytes\n", format, r->payload_len);
}

void reply_print(const request_args_t *a, const coap_reply_t *r, print_mode_t mode) {
  if (a->verbose) print_details(r);
  if (a->json) {
    print_json(r);
  } else if (!a->quiet && mode == PRINT_LINE) {
    print_line_safe(r->payload, r->payload_len);
  } else if (!a->quiet && r->payload_len) {
    fwrite(r->payload, 1, r->payload_len, stdout);
    if (r->payload[r->payload_len - 1] != '\n' && isatty(STDOUT_FILENO)) fputc('\n', stdout);
  }
  fflush(stdout);
}
