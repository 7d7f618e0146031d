/* CoRE link format (RFC 6690): writing links for /.well-known/core,
 * discovery query filtering (§4.1) and reading documents. */
#include <stdio.h>
#include <string.h>

#include "coaps/error.h"
#include "coaps/wire.h"

/* ct and sz hold a number and go unquoted; a list of numbers ("0 50")
 * needs quotes (RFC 7252 §7.2.1). */
static int unquoted(const char *name, const char *value) {
  if (strcmp(name, "ct") != 0 && strcmp(name, "sz") != 0) return 0;
  return *value && strspn(value, "0123456789") == strlen(value);
}

int coap_link_append(char *buf, size_t cap, size_t *len, const char *href,
                     const coap_link_attr_t *attrs, size_t n_attrs) {
  if (!buf || !len || !href || (!attrs && n_attrs)) return COAP_E_INVALID_ARG;
  size_t at = *len;
  int n = snprintf(buf + at, at < cap ? cap - at : 0, "%s<%s>", at ? "," : "", href);
  if (n < 0 || at + (size_t)n >= cap) return COAP_E_BUFFER_TOO_SMALL;
  at += (size_t)n;
  for (size_t i = 0; i < n_attrs; i++) {
    const coap_link_attr_t *a = &attrs[i];
    if (!a->value)
      n = snprintf(buf + at, cap - at, ";%s", a->name);
    else if (unquoted(a->name, a->value))
      n = snprintf(buf + at, cap - at, ";%s=%s", a->name, a->value);
    else
      n = snprintf(buf + at, cap - at, ";%s=\"", a->name);
    if (n < 0 || at + (size_t)n >= cap) return COAP_E_BUFFER_TOO_SMALL;
    at += (size_t)n;
    if (!a->value || unquoted(a->name, a->value)) continue;
    /* quoted-string (RFC 6690 §2): '"' and '\' inside need a backslash,
     * or a value could end the string early and inject links. */
    for (const char *v = a->value; *v; v++) {
      size_t need = (*v == '"' || *v == '\\') ? 2 : 1;
      if (at + need >= cap) return COAP_E_BUFFER_TOO_SMALL;
      if (need == 2) buf[at++] = '\\';
      buf[at++] = *v;
    }
    if (at + 1 >= cap) return COAP_E_BUFFER_TOO_SMALL;
    buf[at++] = '"';
    buf[at] = '\0';
  }
  *len = at;
  return 0;
}

/* Does |value| match |pattern| (a trailing '*' matches any suffix)? */
static int value_matches(const char *value, size_t vlen, const char *pattern, size_t plen) {
  if (plen && pattern[plen - 1] == '*')
    return vlen >= plen - 1 && memcmp(value, pattern, plen - 1) == 0;
  return vlen == plen && memcmp(value, pattern, plen) == 0;
}

/* rt, if and rel hold space-separated lists: any one entry may match. */
static int list_matches(const char *value, const char *pattern, size_t plen) {
  const char *p = value;
  while (*p) {
    while (*p == ' ') p++;
    size_t n = strcspn(p, " ");
    if (n && value_matches(p, n, pattern, plen)) return 1;
    p += n;
  }
  return 0;
}

int coap_link_matches(const char *href, const coap_link_attr_t *attrs, size_t n_attrs,
                      const char *query) {
  if (!attrs) n_attrs = 0;
  if (!query || !*query) return 1;
  if (!href) return 0;
  const char *eq = strchr(query, '=');
  size_t name_len = eq ? (size_t)(eq - query) : strlen(query);
  const char *pattern = eq ? eq + 1 : "";
  size_t plen = strlen(pattern);
  if (name_len == 4 && memcmp(query, "href", 4) == 0)
    return value_matches(href, strlen(href), pattern, plen);
  for (size_t i = 0; i < n_attrs; i++) {
    const coap_link_attr_t *a = &attrs[i];
    if (strlen(a->name) != name_len || memcmp(a->name, query, name_len) != 0) continue;
    if (!eq) return 1;
    const char *v = a->value ? a->value : "";
    /* rt, if, rel and ct may hold space-separated lists (RFC 6690 §3,
     * RFC 7252 §7.2.1): any entry may match. */
    if (strcmp(a->name, "rt") == 0 || strcmp(a->name, "if") == 0 || strcmp(a->name, "rel") == 0 ||
        strcmp(a->name, "ct") == 0) {
      if (list_matches(v, pattern, plen)) return 1;
    } else if (value_matches(v, strlen(v), pattern, plen)) {
      return 1;
    }
  }
  return 0;
}

/* Skip to the end of the current link: the next ',' outside quotes and
 * angle brackets. Returns the index of ',' or doc_len; -1 on an open
 * quote. */
static long link_end(const char *doc, size_t doc_len, size_t from) {
  int quoted = 0;
  for (size_t i = from; i < doc_len; i++) {
    if (doc[i] == '"')
      quoted = !quoted;
    else if (doc[i] == '\\' && quoted && i + 1 < doc_len)
      i++;
    else if (doc[i] == ',' && !quoted)
      return (long)i;
  }
  return quoted ? -1 : (long)doc_len;
}

int coap_link_next(const char *doc, size_t doc_len, size_t *cursor, const char **href,
                   size_t *href_len, const char **attrs, size_t *attrs_len) {
  if (!doc || !cursor || !href || !href_len || !attrs || !attrs_len) return COAP_E_INVALID_ARG;
  size_t i = *cursor;
  while (i < doc_len && (doc[i] == ' ' || doc[i] == '\n' || doc[i] == '\r' || doc[i] == ',')) i++;
  if (i >= doc_len) {
    *cursor = doc_len;
    return 0;
  }
  if (doc[i] != '<') return COAP_E_INVALID_ARG;
  const char *close = memchr(doc + i, '>', doc_len - i);
  if (!close) return COAP_E_INVALID_ARG;
  *href = doc + i + 1;
  *href_len = (size_t)(close - doc - (long)i - 1);
  size_t after = (size_t)(close - doc) + 1;
  long end = link_end(doc, doc_len, after);
  if (end < 0) return COAP_E_INVALID_ARG;
  if (after < (size_t)end && doc[after] != ';') return COAP_E_INVALID_ARG;
  *attrs = doc + after;
  *attrs_len = (size_t)end - after;
  *cursor = (size_t)end;
  return 1;
}
