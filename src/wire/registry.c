/* The IANA registries CoAP needs at run time: options (number, name,
 * format, length bounds, repeatability), content formats, code names. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "coaps/wire.h"

#define E COAP_OPTFMT_EMPTY
#define O COAP_OPTFMT_OPAQUE
#define U COAP_OPTFMT_UINT
#define S COAP_OPTFMT_STRING

static const coap_option_info_t options[] = {
    {COAP_OPTION_IF_MATCH, "If-Match", O, 0, 8, 1},
    {COAP_OPTION_URI_HOST, "Uri-Host", S, 1, 255, 0},
    {COAP_OPTION_ETAG, "ETag", O, 1, 8, 1},
    {COAP_OPTION_IF_NONE_MATCH, "If-None-Match", E, 0, 0, 0},
    {COAP_OPTION_OBSERVE, "Observe", U, 0, 3, 0},
    {COAP_OPTION_URI_PORT, "Uri-Port", U, 0, 2, 0},
    {COAP_OPTION_LOCATION_PATH, "Location-Path", S, 0, 255, 1},
    {COAP_OPTION_OSCORE, "OSCORE", O, 0, 255, 0},
    {COAP_OPTION_URI_PATH, "Uri-Path", S, 0, 255, 1},
    {COAP_OPTION_CONTENT_FORMAT, "Content-Format", U, 0, 2, 0},
    {COAP_OPTION_MAX_AGE, "Max-Age", U, 0, 4, 0},
    {COAP_OPTION_URI_QUERY, "Uri-Query", S, 0, 255, 1},
    {COAP_OPTION_HOP_LIMIT, "Hop-Limit", U, 1, 1, 0},
    {COAP_OPTION_ACCEPT, "Accept", U, 0, 2, 0},
    {COAP_OPTION_Q_BLOCK1, "Q-Block1", U, 0, 3, 0},
    {COAP_OPTION_LOCATION_QUERY, "Location-Query", S, 0, 255, 1},
    {COAP_OPTION_BLOCK2, "Block2", U, 0, 3, 0},
    {COAP_OPTION_BLOCK1, "Block1", U, 0, 3, 0},
    {COAP_OPTION_SIZE2, "Size2", U, 0, 4, 0},
    {COAP_OPTION_Q_BLOCK2, "Q-Block2", U, 0, 3, 0},
    {COAP_OPTION_PROXY_URI, "Proxy-Uri", S, 1, 1034, 0},
    {COAP_OPTION_PROXY_SCHEME, "Proxy-Scheme", S, 1, 255, 0},
    {COAP_OPTION_SIZE1, "Size1", U, 0, 4, 0},
    {COAP_OPTION_ECHO, "Echo", O, 1, 40, 0},
    {COAP_OPTION_NO_RESPONSE, "No-Response", U, 0, 1, 0},
    {COAP_OPTION_REQUEST_TAG, "Request-Tag", O, 0, 8, 1},
};

const coap_option_info_t *coap_option_info(uint16_t number) {
  size_t lo = 0, hi = sizeof options / sizeof options[0];
  while (lo < hi) { /* the table is sorted by number */
    size_t mid = (lo + hi) / 2;
    if (options[mid].number == number) return &options[mid];
    if (options[mid].number < number)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

static const struct {
  int format;
  const char *name;
  const char *short_name;
} formats[] = {
    {COAP_FORMAT_TEXT_PLAIN, "text/plain;charset=utf-8", "text"},
    {COAP_FORMAT_COSE_ENCRYPT0, "application/cose;cose-type=\"cose-encrypt0\"", NULL},
    {COAP_FORMAT_COSE_MAC0, "application/cose;cose-type=\"cose-mac0\"", NULL},
    {COAP_FORMAT_COSE_SIGN1, "application/cose;cose-type=\"cose-sign1\"", NULL},
    {COAP_FORMAT_LINK_FORMAT, "application/link-format", "link"},
    {COAP_FORMAT_XML, "application/xml", "xml"},
    {COAP_FORMAT_OCTET_STREAM, "application/octet-stream", "octet"},
    {COAP_FORMAT_EXI, "application/exi", NULL},
    {COAP_FORMAT_JSON, "application/json", "json"},
    {COAP_FORMAT_JSON_PATCH, "application/json-patch+json", NULL},
    {COAP_FORMAT_MERGE_PATCH, "application/merge-patch+json", NULL},
    {COAP_FORMAT_CBOR, "application/cbor", "cbor"},
    {COAP_FORMAT_CWT, "application/cwt", NULL},
    {COAP_FORMAT_SENML_JSON, "application/senml+json", NULL},
    {COAP_FORMAT_SENSML_JSON, "application/sensml+json", NULL},
    {COAP_FORMAT_SENML_CBOR, "application/senml+cbor", NULL},
    {COAP_FORMAT_SENSML_CBOR, "application/sensml+cbor", NULL},
    {COAP_FORMAT_SENML_EXI, "application/senml-exi", NULL},
    {COAP_FORMAT_SENSML_EXI, "application/sensml-exi", NULL},
    {COAP_FORMAT_COAP_GROUP_JSON, "application/coap-group+json", NULL},
    {COAP_FORMAT_SENML_XML, "application/senml+xml", NULL},
    {COAP_FORMAT_SENSML_XML, "application/sensml+xml", NULL},
};

const char *coap_content_format_name(int format) {
  for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
    if (formats[i].format == format) return formats[i].name;
  return NULL;
}

int coap_content_format_parse(const char *name) {
  if (!name || !*name) return COAP_FORMAT_NONE;
  char *end;
  long v = strtol(name, &end, 10);
  if (*end == '\0') return v >= 0 && v <= 65535 ? (int)v : COAP_FORMAT_NONE;
  for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
    if (strcasecmp(formats[i].name, name) == 0) return formats[i].format;
    if (formats[i].short_name && strcasecmp(formats[i].short_name, name) == 0)
      return formats[i].format;
  }
  if (strcasecmp(name, "text/plain") == 0) return COAP_FORMAT_TEXT_PLAIN;
  return COAP_FORMAT_NONE;
}

static const struct {
  uint8_t code;
  const char *name;
} codes[] = {
    {COAP_CODE_EMPTY, "0.00 Empty"},
    {COAP_GET, "GET"},
    {COAP_POST, "POST"},
    {COAP_PUT, "PUT"},
    {COAP_DELETE, "DELETE"},
    {COAP_FETCH, "FETCH"},
    {COAP_PATCH, "PATCH"},
    {COAP_IPATCH, "iPATCH"},
    {COAP_CREATED, "2.01 Created"},
    {COAP_DELETED, "2.02 Deleted"},
    {COAP_VALID, "2.03 Valid"},
    {COAP_CHANGED, "2.04 Changed"},
    {COAP_CONTENT, "2.05 Content"},
    {COAP_CONTINUE, "2.31 Continue"},
    {COAP_BAD_REQUEST, "4.00 Bad Request"},
    {COAP_UNAUTHORIZED, "4.01 Unauthorized"},
    {COAP_BAD_OPTION, "4.02 Bad Option"},
    {COAP_FORBIDDEN, "4.03 Forbidden"},
    {COAP_NOT_FOUND, "4.04 Not Found"},
    {COAP_METHOD_NOT_ALLOWED, "4.05 Method Not Allowed"},
    {COAP_NOT_ACCEPTABLE, "4.06 Not Acceptable"},
    {COAP_REQUEST_ENTITY_INCOMPLETE, "4.08 Request Entity Incomplete"},
    {COAP_CONFLICT, "4.09 Conflict"},
    {COAP_PRECONDITION_FAILED, "4.12 Precondition Failed"},
    {COAP_REQUEST_ENTITY_TOO_LARGE, "4.13 Request Entity Too Large"},
    {COAP_UNSUPPORTED_CONTENT_FORMAT, "4.15 Unsupported Content-Format"},
    {COAP_UNPROCESSABLE_ENTITY, "4.22 Unprocessable Entity"},
    {COAP_TOO_MANY_REQUESTS, "4.29 Too Many Requests"},
    {COAP_INTERNAL_SERVER_ERROR, "5.00 Internal Server Error"},
    {COAP_NOT_IMPLEMENTED, "5.01 Not Implemented"},
    {COAP_BAD_GATEWAY, "5.02 Bad Gateway"},
    {COAP_SERVICE_UNAVAILABLE, "5.03 Service Unavailable"},
    {COAP_GATEWAY_TIMEOUT, "5.04 Gateway Timeout"},
    {COAP_PROXYING_NOT_SUPPORTED, "5.05 Proxying Not Supported"},
};

/* "c.dd" for every code without a registered name: a constant table, so
 * the result needs no buffer and is safe from any thread. */
#define DD(c, d) #c "." #d
#define ROW(c)                                                                                \
  DD(c, 00), DD(c, 01), DD(c, 02), DD(c, 03), DD(c, 04), DD(c, 05), DD(c, 06), DD(c, 07),     \
      DD(c, 08), DD(c, 09), DD(c, 10), DD(c, 11), DD(c, 12), DD(c, 13), DD(c, 14), DD(c, 15), \
      DD(c, 16), DD(c, 17), DD(c, 18), DD(c, 19), DD(c, 20), DD(c, 21), DD(c, 22), DD(c, 23), \
      DD(c, 24), DD(c, 25), DD(c, 26), DD(c, 27), DD(c, 28), DD(c, 29), DD(c, 30), DD(c, 31)
static const char *const numeric[256] = {ROW(0), ROW(1), ROW(2), ROW(3),
                                         ROW(4), ROW(5), ROW(6), ROW(7)};

const char *coap_code_name(uint8_t code) {
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    if (codes[i].code == code) return codes[i].name;
  return numeric[code];
}

const char *coap_type_name(uint8_t type) {
  static const char *const names[] = {"CON", "NON", "ACK", "RST"};
  return names[type & 3];
}
