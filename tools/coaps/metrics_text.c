/* Text for the metrics listener: a growing buffer and the two escapes
 * (JSON strings, Prometheus label values) everything from the network
 * goes through. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

void text_buf_free(text_buf_t *b) {
  free(b->data);
  memset(b, 0, sizeof(*b));
}

static int text_reserve(text_buf_t *b, size_t more) {
  if (b->failed) return -1;
  if (b->len + more + 1 <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more + 1) cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p) {
    b->failed = 1;
    return -1;
  }
  b->data = p;
  b->cap = cap;
  return 0;
}

void text_printf(text_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || text_reserve(b, (size_t)n) < 0) return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

static void text_byte(text_buf_t *b, char c) {
  if (text_reserve(b, 1) < 0) return;
  b->data[b->len++] = c;
  b->data[b->len] = '\0';
}

void text_json_string(text_buf_t *b, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    unsigned char c = *p;
    if (c == '"' || c == '\\') {
      text_byte(b, '\\');
      text_byte(b, (char)c);
    } else if (c == '\n') {
      text_printf(b, "\\n");
    } else if (c < 0x20 || c > 0x7e || c == '<' || c == '>' || c == '&') {
      /* A byte above 0x7e stands for itself as a code point (Latin-1):
       * an identity that is not UTF-8 still makes valid JSON. */
      text_printf(b, "\\u%04x", c);
    } else {
      text_byte(b, (char)c);
    }
  }
}

void text_label_value(text_buf_t *b, const char *s) {
  for (const char *p = s; *p; p++) {
    if (*p == '\\' || *p == '"') {
      text_byte(b, '\\');
      text_byte(b, *p);
    } else if (*p == '\n') {
      text_printf(b, "\\n");
    } else {
      text_byte(b, *p);
    }
  }
}
