/* coaps — one negative error space for the whole library.
 *
 * Every function that can fail returns 0 (or a non-negative count) on success
 * and a negative COAP_E... code on failure. coap_strerror() turns a code into
 * one line of text. Codes below COAP_E_FATAL_THRESHOLD mean the object that
 * returned them is no longer usable.
 */
#ifndef COAPS_ERROR_H
#define COAPS_ERROR_H

#include "coaps/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum coap_error {
  COAP_OK = 0,

  /* usage and resources */
  COAP_E_INVALID_ARG = -1,      /* an argument is out of range or NULL */
  COAP_E_NOMEM = -2,            /* allocation failed */
  COAP_E_BUFFER_TOO_SMALL = -3, /* the output buffer cannot hold the result */
  COAP_E_LIMIT = -4,            /* a configured limit was reached */
  COAP_E_NOT_FOUND = -5,        /* no such resource, option, peer, ... */
  COAP_E_STATE = -6,            /* call not valid in the current state */
  COAP_E_SYSTEM = -7,           /* a system call failed (see errno) */
  COAP_E_CANCELLED = -8,        /* the operation was cancelled */
  COAP_E_EXISTS = -9,           /* already registered */

  /* wire format (RFC 7252 §3) */
  COAP_E_TRUNCATED = -20,        /* datagram shorter than its header/token */
  COAP_E_BAD_VERSION = -21,      /* version field is not 1 */
  COAP_E_BAD_TOKEN_LEN = -22,    /* token length 9..15 */
  COAP_E_BAD_OPTION = -23,       /* option delta/length nibble 15, or runs past end */
  COAP_E_EMPTY_PAYLOAD = -24,    /* payload marker followed by nothing */
  COAP_E_TOO_MANY_OPTIONS = -25, /* more options than COAP_MAX_OPTIONS */
  COAP_E_BAD_EMPTY = -26,        /* code 0.00 with a token, options or payload */
  COAP_E_BAD_CODE = -27,         /* reserved code class (1, 6, 7) */
  COAP_E_OPTION_ORDER = -28,     /* options not added in a valid order */
  COAP_E_OPTION_VALUE = -29,     /* option value length outside its registered range */

  /* URIs */
  COAP_E_URI_SCHEME = -40,   /* not coap:// or coaps:// */
  COAP_E_URI_HOST = -41,     /* missing or malformed host */
  COAP_E_URI_PORT = -42,     /* port not a number in 1..65535 */
  COAP_E_URI_ENCODING = -43, /* bad percent-encoding or fragment present */
  COAP_E_RESOLVE = -44,      /* host name could not be resolved */
  COAP_E_URI_TOO_LONG = -45, /* path or query over 1023 characters */

  /* message layer */
  COAP_E_TIMEOUT = -60,        /* no response after MAX_RETRANSMIT / timeout */
  COAP_E_RESET = -61,          /* the peer answered with RST */
  COAP_E_BAD_RESPONSE = -62,   /* response rejected (e.g. unknown critical option) */
  COAP_E_UNREACHABLE = -63,    /* ICMP port/host unreachable */
  COAP_E_WRONG_PROTOCOL = -64, /* coaps:// to a plain CoAP port, or the reverse */
  COAP_E_TOO_LARGE = -65,      /* a response body over max_body, or a request
                                  that fits no datagram even in 16-byte blocks */
  COAP_E_BLOCKWISE = -66,      /* a block-wise transfer (RFC 7959) could not be
                                  completed: blocks that do not fit together, a
                                  representation that kept changing, a server
                                  that ignored Block1 */

  /* security (DTLS); the structured diagnosis says more */
  COAP_E_DTLS_NO_CREDENTIALS = -80, /* coaps:// with nothing configured */
  COAP_E_DTLS_CREDENTIALS = -81,    /* credentials could not be loaded */
  COAP_E_DTLS_HANDSHAKE = -82,      /* handshake failed; see diagnosis */
  COAP_E_DTLS_TIMEOUT = -83,        /* handshake got no answer */
  COAP_E_DTLS_CLOSED = -84,         /* peer closed the session */
  COAP_E_DTLS_RECORD = -85,         /* record could not be authenticated */

  COAP_E_FATAL_THRESHOLD = -500,
  COAP_E_INTERNAL = -501 /* invariant broken: a bug in coaps */
} coap_error_t;

/* One line describing |code|; never NULL, static storage. */
COAPS_API const char *coap_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif
