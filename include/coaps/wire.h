/* coaps — the CoAP wire format (RFC 7252 §3, §5.4, §5.10, §12), URIs (§6)
 * and CoRE link format (RFC 6690).
 *
 * coap_msg_t is a value type: parsing fills it with views into the datagram
 * (nothing is allocated, nothing is copied but the token), and building fills
 * it with views into the caller's memory before coap_msg_encode() writes the
 * datagram. Options are kept sorted by number; repeated options keep the order
 * in which they were added.
 */
#ifndef COAPS_WIRE_H
#define COAPS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "coaps/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define COAP_VERSION 1
#define COAP_MAX_TOKEN_LEN 8
#define COAP_MAX_OPTIONS 64 /* more in one message is rejected */
#define COAP_HEADER_LEN 4
#define COAP_PAYLOAD_MARKER 0xFF
#define COAP_DEFAULT_PORT 5683
#define COAPS_DEFAULT_PORT 5684

typedef enum coap_type {
  COAP_TYPE_CON = 0,
  COAP_TYPE_NON = 1,
  COAP_TYPE_ACK = 2,
  COAP_TYPE_RST = 3
} coap_type_t;

/* Codes are class << 5 | detail. */
#define COAP_CODE(c, d) ((uint8_t)(((c) << 5) | (d)))
#define COAP_CODE_CLASS(code) ((code) >> 5)
#define COAP_CODE_DETAIL(code) ((code)&0x1F)

enum coap_code {
  COAP_CODE_EMPTY = 0,
  COAP_GET = 1,
  COAP_POST = 2,
  COAP_PUT = 3,
  COAP_DELETE = 4,
  COAP_FETCH = 5,
  COAP_PATCH = 6,
  COAP_IPATCH = 7,

  COAP_CREATED = COAP_CODE(2, 1),
  COAP_DELETED = COAP_CODE(2, 2),
  COAP_VALID = COAP_CODE(2, 3),
  COAP_CHANGED = COAP_CODE(2, 4),
  COAP_CONTENT = COAP_CODE(2, 5),
  COAP_CONTINUE = COAP_CODE(2, 31),

  COAP_BAD_REQUEST = COAP_CODE(4, 0),
  COAP_UNAUTHORIZED = COAP_CODE(4, 1),
  COAP_BAD_OPTION = COAP_CODE(4, 2),
  COAP_FORBIDDEN = COAP_CODE(4, 3),
  COAP_NOT_FOUND = COAP_CODE(4, 4),
  COAP_METHOD_NOT_ALLOWED = COAP_CODE(4, 5),
  COAP_NOT_ACCEPTABLE = COAP_CODE(4, 6),
  COAP_REQUEST_ENTITY_INCOMPLETE = COAP_CODE(4, 8),
  COAP_CONFLICT = COAP_CODE(4, 9),
  COAP_PRECONDITION_FAILED = COAP_CODE(4, 12),
  COAP_REQUEST_ENTITY_TOO_LARGE = COAP_CODE(4, 13),
  COAP_UNSUPPORTED_CONTENT_FORMAT = COAP_CODE(4, 15),
  COAP_UNPROCESSABLE_ENTITY = COAP_CODE(4, 22),
  COAP_TOO_MANY_REQUESTS = COAP_CODE(4, 29),

  COAP_INTERNAL_SERVER_ERROR = COAP_CODE(5, 0),
  COAP_NOT_IMPLEMENTED = COAP_CODE(5, 1),
  COAP_BAD_GATEWAY = COAP_CODE(5, 2),
  COAP_SERVICE_UNAVAILABLE = COAP_CODE(5, 3),
  COAP_GATEWAY_TIMEOUT = COAP_CODE(5, 4),
  COAP_PROXYING_NOT_SUPPORTED = COAP_CODE(5, 5)
};

/* Registered option numbers (RFC 7252 §12.2, RFC 7641, RFC 7959, RFC 8613,
 * RFC 7967, RFC 9175). */
enum coap_option_number {
  COAP_OPTION_IF_MATCH = 1,
  COAP_OPTION_URI_HOST = 3,
  COAP_OPTION_ETAG = 4,
  COAP_OPTION_IF_NONE_MATCH = 5,
  COAP_OPTION_OBSERVE = 6,
  COAP_OPTION_URI_PORT = 7,
  COAP_OPTION_LOCATION_PATH = 8,
  COAP_OPTION_OSCORE = 9,
  COAP_OPTION_URI_PATH = 11,
  COAP_OPTION_CONTENT_FORMAT = 12,
  COAP_OPTION_MAX_AGE = 14,
  COAP_OPTION_URI_QUERY = 15,
  COAP_OPTION_HOP_LIMIT = 16,
  COAP_OPTION_ACCEPT = 17,
  COAP_OPTION_Q_BLOCK1 = 19,
  COAP_OPTION_LOCATION_QUERY = 20,
  COAP_OPTION_BLOCK2 = 23,
  COAP_OPTION_BLOCK1 = 27,
  COAP_OPTION_SIZE2 = 28,
  COAP_OPTION_Q_BLOCK2 = 31,
  COAP_OPTION_PROXY_URI = 35,
  COAP_OPTION_PROXY_SCHEME = 39,
  COAP_OPTION_SIZE1 = 60,
  COAP_OPTION_ECHO = 252,
  COAP_OPTION_NO_RESPONSE = 258,
  COAP_OPTION_REQUEST_TAG = 292
};

/* Option number properties (RFC 7252 §5.4.6). */
#define COAP_OPTION_IS_CRITICAL(n) (((n)&1) != 0)
#define COAP_OPTION_IS_UNSAFE(n) (((n)&2) != 0)
#define COAP_OPTION_IS_NOCACHEKEY(n) (((n)&0x1e) == 0x1c)

typedef enum coap_option_format {
  COAP_OPTFMT_UNKNOWN = 0,
  COAP_OPTFMT_EMPTY,
  COAP_OPTFMT_OPAQUE,
  COAP_OPTFMT_UINT,
  COAP_OPTFMT_STRING
} coap_option_format_t;

/* Made by the library (the registry): fields only ever appended (export.h). */
typedef struct coap_option_info {
  uint16_t number;
  const char *name; /* "Uri-Path" */
  coap_option_format_t format;
  uint16_t min_len, max_len; /* value length bounds in bytes */
  int repeatable;
} coap_option_info_t;

/* Registry entry for |number|, or NULL when the number is not registered. */
COAPS_API const coap_option_info_t *coap_option_info(uint16_t number);

/* Content-Format registry (RFC 7252 §12.3 and later registrations). */
enum coap_content_format {
  COAP_FORMAT_TEXT_PLAIN = 0,
  COAP_FORMAT_COSE_ENCRYPT0 = 16,
  COAP_FORMAT_COSE_MAC0 = 17,
  COAP_FORMAT_COSE_SIGN1 = 18,
  COAP_FORMAT_LINK_FORMAT = 40,
  COAP_FORMAT_XML = 41,
  COAP_FORMAT_OCTET_STREAM = 42,
  COAP_FORMAT_EXI = 47,
  COAP_FORMAT_JSON = 50,
  COAP_FORMAT_JSON_PATCH = 51,
  COAP_FORMAT_MERGE_PATCH = 52,
  COAP_FORMAT_CBOR = 60,
  COAP_FORMAT_CWT = 61,
  COAP_FORMAT_SENML_JSON = 110,
  COAP_FORMAT_SENSML_JSON = 111,
  COAP_FORMAT_SENML_CBOR = 112,
  COAP_FORMAT_SENSML_CBOR = 113,
  COAP_FORMAT_SENML_EXI = 114,
  COAP_FORMAT_SENSML_EXI = 115,
  COAP_FORMAT_COAP_GROUP_JSON = 256,
  COAP_FORMAT_SENML_XML = 310,
  COAP_FORMAT_SENSML_XML = 311,
  COAP_FORMAT_NONE = -1
};

/* No-Response (RFC 7967) option value bits: the response classes a
 * request does not want. */
enum { COAP_NO_RESPONSE_2XX = 0x02, COAP_NO_RESPONSE_4XX = 0x08, COAP_NO_RESPONSE_5XX = 0x10 };

/* "application/json" for 50, NULL when unknown. */
COAPS_API const char *coap_content_format_name(int format);
/* Inverse of coap_content_format_name; also accepts a decimal number and the
 * short names "text", "json", "cbor", "link", "octet", "xml".
 * Returns the format or COAP_FORMAT_NONE. */
COAPS_API int coap_content_format_parse(const char *name);

/* coap_option_t, coap_msg_t, coap_block_t, coap_uri_t and coap_link_attr_t
 * are value types (arrays of them cross the API): their layouts are
 * frozen, and changing one changes the SONAME (export.h). */
typedef struct coap_option {
  uint16_t number;
  uint16_t length;
  const uint8_t *value;
} coap_option_t;

typedef struct coap_msg {
  uint8_t type; /* coap_type_t */
  uint8_t code;
  uint16_t mid;
  uint8_t token_len;
  uint8_t token[COAP_MAX_TOKEN_LEN];
  uint16_t n_options;
  coap_option_t options[COAP_MAX_OPTIONS]; /* sorted by number */
  const uint8_t *payload;
  size_t payload_len;
  /* Storage for values the builder encodes itself (uint options). */
  uint8_t scratch[64];
  uint8_t scratch_used;
} coap_msg_t;

/* Parse one datagram into |msg|. |msg| keeps pointers into |data|.
 * Returns 0 or COAP_E_TRUNCATED, COAP_E_BAD_VERSION, COAP_E_BAD_TOKEN_LEN,
 * COAP_E_BAD_OPTION, COAP_E_EMPTY_PAYLOAD, COAP_E_TOO_MANY_OPTIONS,
 * COAP_E_BAD_EMPTY, COAP_E_BAD_CODE. Even on error the header fields (type,
 * code, mid) are filled when the first 4 bytes were present, so the caller
 * can answer a malformed CON with RST (RFC 7252 §4.2). */
COAPS_API int coap_msg_parse(coap_msg_t *msg, const uint8_t *data, size_t len);

/* Reset |msg| to an empty message with the given header fields. */
COAPS_API void coap_msg_init(coap_msg_t *msg, coap_type_t type, uint8_t code, uint16_t mid);
/* 0 to 8 bytes; NULL with |len| 0 is no token. */
COAPS_API int coap_msg_set_token(coap_msg_t *msg, const uint8_t *token, size_t len);

/* Add an option; |value| must outlive |msg|. Keeps options sorted.
 * Returns 0, COAP_E_TOO_MANY_OPTIONS or COAP_E_OPTION_VALUE (length outside
 * the registered bounds of a known option). */
COAPS_API int coap_msg_add_option(coap_msg_t *msg, uint16_t number, const void *value, size_t len);
/* Add a uint option in minimal length (value stored in msg->scratch). */
COAPS_API int coap_msg_add_uint(coap_msg_t *msg, uint16_t number, uint32_t value);
/* Add a string option (strlen; NULL is the empty string). */
COAPS_API int coap_msg_add_string(coap_msg_t *msg, uint16_t number, const char *value);
/* Remove every option with |number|. */
COAPS_API void coap_msg_remove_option(coap_msg_t *msg, uint16_t number);
/* NULL |payload| (or |len| 0) is no payload. */
COAPS_API void coap_msg_set_payload(coap_msg_t *msg, const void *payload, size_t len);

/* First option with |number| or NULL; coap_msg_next_option continues after
 * |prev| with the same number. */
COAPS_API const coap_option_t *coap_msg_find_option(const coap_msg_t *msg, uint16_t number);
COAPS_API const coap_option_t *coap_msg_next_option(const coap_msg_t *msg,
                                                    const coap_option_t *prev);
/* Decode a uint option value (0..4 bytes, big endian). -1 on bad length. */
COAPS_API int64_t coap_option_uint(const coap_option_t *opt);
/* Convenience: the uint value of the first |number| option or |dflt|. */
COAPS_API int64_t coap_msg_get_uint(const coap_msg_t *msg, uint16_t number, int64_t dflt);
/* Content-Format of the message, or COAP_FORMAT_NONE. */
COAPS_API int coap_msg_content_format(const coap_msg_t *msg);

/* First unrecognized critical option (not in the registry), or NULL.
 * |known| may list extra numbers the application handles (n_known entries;
 * NULL: none). */
COAPS_API const coap_option_t *coap_msg_unknown_critical(const coap_msg_t *msg,
                                                         const uint16_t *known, size_t n_known);

/* ---- Observe (RFC 7641) ---- */

/* Is the notification with sequence number |v2| received at |t2| (ms)
 * newer than the one with |v1| received at |t1|? The 24-bit numbers wrap:
 * RFC 7641 §3.4 (newer when ahead by less than 2^23, or when 128 s have
 * passed). */
COAPS_API int coap_observe_is_newer(uint32_t v1, uint64_t t1, uint32_t v2, uint64_t t2);

/* ---- Block1 / Block2 (RFC 7959 §2.2) ---- */

typedef struct coap_block {
  uint32_t num; /* block number, 0..2^20-1 */
  uint8_t more; /* M: more blocks follow (Block1: more to come; Block2: more exist) */
  uint8_t szx;  /* size exponent 0..6: blocks of 2^(szx+4) bytes, 16..1024 */
} coap_block_t;

/* Block size in bytes for |szx| (0..6), 0 for anything else. */
COAPS_API size_t coap_block_size(uint8_t szx);
/* The largest szx whose blocks are at most |bytes| (16 at least). */
COAPS_API uint8_t coap_block_szx_for(size_t bytes);
/* Decode a Block1/Block2 option value (0..3 bytes). Returns 0, or
 * COAP_E_OPTION_VALUE for a value over 3 bytes or the reserved szx 7
 * (the RFC's 4.00 Bad Request). */
COAPS_API int coap_block_decode(const coap_option_t *opt, coap_block_t *out);
/* Encode |b| into |out| (3 bytes at most, minimal length: block 0 of
 * szx 0 without M is the empty value). Returns the length, or
 * COAP_E_OPTION_VALUE when num is over 2^20-1 or szx over 6. */
COAPS_API int coap_block_encode(const coap_block_t *b, uint8_t out[3]);
/* Add a Block1/Block2 option for |b| to |msg| (value in msg->scratch). */
COAPS_API int coap_msg_add_block(coap_msg_t *msg, uint16_t number, const coap_block_t *b);

/* Bytes coap_msg_encode would write. */
COAPS_API size_t coap_msg_encoded_size(const coap_msg_t *msg);
/* Write the datagram. Returns the length or COAP_E_BUFFER_TOO_SMALL (also
 * for a NULL |buf| with |cap| 0). */
COAPS_API int coap_msg_encode(const coap_msg_t *msg, uint8_t *buf, size_t cap);

/* "2.05 Content", "GET", "4.04 Not Found"; never NULL. */
COAPS_API const char *coap_code_name(uint8_t code);
/* "CON"/"NON"/"ACK"/"RST". */
COAPS_API const char *coap_type_name(uint8_t type);
/* One-line human readable dump of a message into |buf| (for verbose modes):
 * "CON GET mid=0x1234 token=a1b2c3d4 Uri-Path:temp Accept:50 payload=12B".
 * Returns the length written (truncated to cap-1, always NUL terminated). */
COAPS_API size_t coap_msg_format(const coap_msg_t *msg, char *buf, size_t cap);

/* ---- URIs (RFC 7252 §6) ---- */

typedef enum coap_scheme { COAP_SCHEME_COAP = 0, COAP_SCHEME_COAPS = 1 } coap_scheme_t;

typedef struct coap_uri {
  coap_scheme_t scheme;
  char host[256];      /* decoded host; IPv6 literal without brackets */
  int host_is_literal; /* 4 for IPv4, 6 for IPv6, 0 for a name */
  uint16_t port;       /* explicit or the scheme's default */
  int port_explicit;
  char path[1024];  /* still percent-encoded, starting with '/' or empty */
  char query[1024]; /* still percent-encoded, without '?' or empty */
} coap_uri_t;

/* Parse an absolute coap:// or coaps:// URI. Returns 0 or COAP_E_URI_*
 * (COAP_E_URI_TOO_LONG for a path or query over 1023 characters). */
COAPS_API int coap_uri_parse(coap_uri_t *uri, const char *text);

/* Add Uri-Host (only when the host is a name: a literal equals the
 * destination address), Uri-Path and Uri-Query options (no Uri-Port: the
 * request goes to that port, RFC 7252 §6.4) to |msg|, percent-decoding segments into
 * |store| (which must outlive |msg|). Returns 0, COAP_E_BUFFER_TOO_SMALL,
 * COAP_E_URI_ENCODING or COAP_E_TOO_MANY_OPTIONS. */
COAPS_API int coap_uri_to_options(const coap_uri_t *uri, coap_msg_t *msg, uint8_t *store,
                                  size_t store_cap);

/* Compose "/a/b?x=1" from a message's Uri-Path / Uri-Query options, with
 * percent-encoding where RFC 3986 requires it. Returns length or
 * COAP_E_BUFFER_TOO_SMALL. */
COAPS_API int coap_msg_uri_path(const coap_msg_t *msg, char *buf, size_t cap);

/* Compose a full URI text from |uri|. Returns length or
 * COAP_E_BUFFER_TOO_SMALL. */
COAPS_API int coap_uri_format(const coap_uri_t *uri, char *buf, size_t cap);

/* ---- CoRE link format (RFC 6690) ---- */

typedef struct coap_link_attr {
  const char *name;  /* "rt", "if", "ct", "sz", "obs", "title", ... */
  const char *value; /* NULL for a flag attribute such as "obs" */
} coap_link_attr_t;

/* Does a resource with |href| and these attributes match a discovery query
 * such as "rt=temperature", "href=/sensors*", "ct=40" (RFC 6690 §4.1)?
 * An empty or NULL query matches everything; otherwise a NULL |href|
 * matches nothing, and NULL |attrs| is no attributes. */
COAPS_API int coap_link_matches(const char *href, const coap_link_attr_t *attrs, size_t n_attrs,
                                const char *query);

/* Append one link "</href>;rt=\"x\";ct=40;obs" to |buf| at |*len|, with a
 * separating comma when *len > 0. Values of rt, if, title are quoted; ct and
 * sz are not. Returns 0 or COAP_E_BUFFER_TOO_SMALL (|*len| unchanged). */
COAPS_API int coap_link_append(char *buf, size_t cap, size_t *len, const char *href,
                               const coap_link_attr_t *attrs, size_t n_attrs);

/* Iterate over links of a link-format document. |cursor| starts at 0.
 * Fills |href| (without <>) with a view; returns 1 when a link was found,
 * 0 at the end, COAP_E_INVALID_ARG on malformed input.
 * Attributes of the link are in [*attrs, *attrs + *attrs_len) as raw text. */
COAPS_API int coap_link_next(const char *doc, size_t doc_len, size_t *cursor, const char **href,
                             size_t *href_len, const char **attrs, size_t *attrs_len);

#ifdef __cplusplus
}
#endif
#endif
