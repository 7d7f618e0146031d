/* coap:// and coaps:// URIs (RFC 7252 §6, RFC 3986): parse, map to
 * Uri-Host/Uri-Path/Uri-Query options, and compose back. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "coaps/error.h"
#include "coaps/wire.h"

static int hex_value(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int is_unreserved(int c) {
  return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static int is_sub_delim(int c) {
  return c && strchr("!$&'()*+,;=", c) != NULL;
}

/* Percent-decode [s, s+n) into |out| (cap bytes). Returns the decoded
 * length or a negative error. */
static int pct_decode(const char *s, size_t n, uint8_t *out, size_t cap) {
  size_t len = 0;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (c == '%') {
      if (i + 2 >= n) return COAP_E_URI_ENCODING;
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return COAP_E_URI_ENCODING;
      c = hi << 4 | lo;
      i += 2;
    }
    if (len == cap) return COAP_E_BUFFER_TOO_SMALL;
    out[len++] = (uint8_t)c;
  }
  return (int)len;
}

/* Check the characters of a path or query: pchar / "/" / "?" and valid
 * percent-encodings only. */
static int check_encoded(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (c == '%') {
      if (i + 2 >= n || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0)
        return COAP_E_URI_ENCODING;
      i += 2;
    } else if (!(is_unreserved(c) || is_sub_delim(c) || c == ':' || c == '@' || c == '/' ||
                 c == '?')) {
      return COAP_E_URI_ENCODING;
    }
  }
  return 0;
}

static int parse_host(coap_uri_t *uri, const char *s, size_t n) {
  if (n == 0) return COAP_E_URI_HOST;
  if (s[0] == '[') {
    if (n < 3 || s[n - 1] != ']' || n - 2 >= sizeof uri->host) return COAP_E_URI_HOST;
    memcpy(uri->host, s + 1, n - 2);
    uri->host[n - 2] = '\0';
    struct in6_addr a6;
    if (inet_pton(AF_INET6, uri->host, &a6) != 1) return COAP_E_URI_HOST;
    uri->host_is_literal = 6;
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (!(is_unreserved(c) || is_sub_delim(c) || c == '%')) return COAP_E_URI_HOST;
  }
  int len = pct_decode(s, n, (uint8_t *)uri->host, sizeof uri->host - 1);
  if (len < 0) return len == COAP_E_BUFFER_TOO_SMALL ? COAP_E_URI_HOST : len;
  if (len == 0 || memchr(uri->host, '\0', (size_t)len)) return COAP_E_URI_HOST;
  uri->host[len] = '\0';
  struct in_addr a4;
  if (inet_pton(AF_INET, uri->host, &a4) == 1) {
    uri->host_is_literal = 4;
  } else {
    /* Host names are case-insensitive: Uri-Host carries them in lower case
     * (RFC 7252 §6.4). */
    for (int i = 0; i < len; i++) uri->host[i] = (char)tolower((unsigned char)uri->host[i]);
  }
  return 0;
}

static int parse_port(coap_uri_t *uri, const char *s, size_t n) {
  if (n == 0) return 0; /* "host:" means the default port */
  if (n > 5) return COAP_E_URI_PORT;
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i])) return COAP_E_URI_PORT;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v == 0 || v > 65535) return COAP_E_URI_PORT;
  uri->port = (uint16_t)v;
  uri->port_explicit = 1;
  return 0;
}

static int parse_authority(coap_uri_t *uri, const char *s, size_t n) {
  if (memchr(s, '@', n)) return COAP_E_URI_HOST; /* no userinfo in CoAP */
  size_t host_len = n;
  if (n && s[0] == '[') {
    const char *close = memchr(s, ']', n);
    if (!close) return COAP_E_URI_HOST;
    host_len = (size_t)(close - s) + 1;
    if (host_len < n && s[host_len] != ':') return COAP_E_URI_HOST;
  } else {
    const char *colon = memchr(s, ':', n);
    if (colon) host_len = (size_t)(colon - s);
  }
  int rc = parse_host(uri, s, host_len);
  if (rc < 0) return rc;
  if (host_len < n) return parse_port(uri, s + host_len + 1, n - host_len - 1);
  return 0;
}

static int copy_part(char *dst, size_t cap, const char *s, size_t n) {
  if (check_encoded(s, n) < 0) return COAP_E_URI_ENCODING;
  if (n >= cap) return COAP_E_URI_TOO_LONG;
  memcpy(dst, s, n);
  dst[n] = '\0';
  return 0;
}

int coap_uri_parse(coap_uri_t *uri, const char *text) {
  if (!uri || !text) return COAP_E_INVALID_ARG;
  memset(uri, 0, sizeof(*uri));
  const char *p;
  if (strncasecmp(text, "coap://", 7) == 0) {
    uri->scheme = COAP_SCHEME_COAP;
    uri->port = COAP_DEFAULT_PORT;
    p = text + 7;
  } else if (strncasecmp(text, "coaps://", 8) == 0) {
    uri->scheme = COAP_SCHEME_COAPS;
    uri->port = COAPS_DEFAULT_PORT;
    p = text + 8;
  } else {
    return COAP_E_URI_SCHEME;
  }
  if (strchr(p, '#')) return COAP_E_URI_ENCODING; /* §6: no fragments */
  size_t auth_len = strcspn(p, "/?");
  int rc = parse_authority(uri, p, auth_len);
  if (rc < 0) return rc;
  p += auth_len;
  size_t path_len = strcspn(p, "?");
  if ((rc = copy_part(uri->path, sizeof uri->path, p, path_len)) < 0) return rc;
  p += path_len;
  if (*p == '?') {
    p++;
    if ((rc = copy_part(uri->query, sizeof uri->query, p, strlen(p))) < 0) return rc;
  }
  return 0;
}

/* Decode each |sep|-separated part of |s| into |store| and add it as
 * option |number|. */
static int add_parts(coap_msg_t *msg, uint16_t number, const char *s, char sep, uint8_t *store,
                     size_t cap, size_t *used) {
  while (1) {
    size_t n = strcspn(s, sep == '/' ? "/" : "&");
    int len = pct_decode(s, n, store + *used, cap - *used);
    if (len < 0) return len;
    int rc = coap_msg_add_option(msg, number, store + *used, (size_t)len);
    if (rc < 0) return rc;
    *used += (size_t)len;
    if (s[n] == '\0') return 0;
    s += n + 1;
  }
}

int coap_uri_to_options(const coap_uri_t *uri, coap_msg_t *msg, uint8_t *store, size_t store_cap) {
  if (!uri || !msg || (!store && store_cap)) return COAP_E_INVALID_ARG;
  size_t used = 0;
  int rc;
  if (!uri->host_is_literal) {
    size_t n = strlen(uri->host);
    if (n > store_cap) return COAP_E_BUFFER_TOO_SMALL;
    memcpy(store, uri->host, n);
    used = n;
    if ((rc = coap_msg_add_option(msg, COAP_OPTION_URI_HOST, store, n)) < 0) return rc;
  }
  /* An empty path or a lone "/" means no Uri-Path at all (§6.4 step 8). */
  if (uri->path[0] == '/' && uri->path[1] != '\0' &&
      (rc = add_parts(msg, COAP_OPTION_URI_PATH, uri->path + 1, '/', store, store_cap, &used)) < 0)
    return rc;
  if (uri->query[0] &&
      (rc = add_parts(msg, COAP_OPTION_URI_QUERY, uri->query, '&', store, store_cap, &used)) < 0)
    return rc;
  return 0;
}

typedef struct text {
  char *buf;
  size_t cap, len;
  int overflow;
} text_t;

static void text_putc(text_t *t, char c) {
  if (t->len + 1 >= t->cap) {
    t->overflow = 1;
    return;
  }
  t->buf[t->len++] = c;
  t->buf[t->len] = '\0';
}

static void text_puts(text_t *t, const char *s) {
  while (*s) text_putc(t, *s++);
}

/* Percent-encode a decoded value; |extra| lists delimiters allowed as is. */
static void text_encode(text_t *t, const uint8_t *v, size_t n, const char *extra) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    int c = v[i];
    if (is_unreserved(c) || (c && strchr(extra, c))) {
      text_putc(t, (char)c);
    } else {
      text_putc(t, '%');
      text_putc(t, hex[c >> 4]);
      text_putc(t, hex[c & 15]);
    }
  }
}

int coap_msg_uri_path(const coap_msg_t *msg, char *buf, size_t cap) {
  if (!msg) return COAP_E_INVALID_ARG;
  if (!buf || cap == 0) return COAP_E_BUFFER_TOO_SMALL;
  text_t t = {buf, cap, 0, 0};
  buf[0] = '\0';
  const coap_option_t *o = coap_msg_find_option(msg, COAP_OPTION_URI_PATH);
  if (!o) text_putc(&t, '/');
  for (; o; o = coap_msg_next_option(msg, o)) {
    text_putc(&t, '/');
    text_encode(&t, o->value, o->length, "!$&'()*+,;=:@");
  }
  char sep = '?';
  for (o = coap_msg_find_option(msg, COAP_OPTION_URI_QUERY); o; o = coap_msg_next_option(msg, o)) {
    text_putc(&t, sep);
    sep = '&';
    text_encode(&t, o->value, o->length, "!$'()*+,;=:@/?");
  }
  return t.overflow ? COAP_E_BUFFER_TOO_SMALL : (int)t.len;
}

int coap_uri_format(const coap_uri_t *uri, char *buf, size_t cap) {
  if (!uri) return COAP_E_INVALID_ARG;
  if (!buf || cap == 0) return COAP_E_BUFFER_TOO_SMALL;
  text_t t = {buf, cap, 0, 0};
  buf[0] = '\0';
  text_puts(&t, uri->scheme == COAP_SCHEME_COAPS ? "coaps://" : "coap://");
  if (uri->host_is_literal == 6) {
    text_putc(&t, '[');
    text_puts(&t, uri->host);
    text_putc(&t, ']');
  } else {
    text_encode(&t, (const uint8_t *)uri->host, strlen(uri->host), "!$&'()*+,;=");
  }
  uint16_t dflt = uri->scheme == COAP_SCHEME_COAPS ? COAPS_DEFAULT_PORT : COAP_DEFAULT_PORT;
  if (uri->port != dflt) {
    char port[8];
    snprintf(port, sizeof port, ":%u", uri->port);
    text_puts(&t, port);
  }
  text_puts(&t, uri->path);
  if (uri->query[0]) {
    text_putc(&t, '?');
    text_puts(&t, uri->query);
  }
  return t.overflow ? COAP_E_BUFFER_TOO_SMALL : (int)t.len;
}
