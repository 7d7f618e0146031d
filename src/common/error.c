#include "coaps/error.h"

#include <stddef.h>

const char *coap_strerror(int code) {
  switch ((coap_error_t)code) {
    case COAP_OK: return "success";
    case COAP_E_INVALID_ARG: return "invalid argument";
    case COAP_E_NOMEM: return "out of memory";
    case COAP_E_BUFFER_TOO_SMALL: return "buffer too small";
    case COAP_E_LIMIT: return "a configured limit was reached";
    case COAP_E_NOT_FOUND: return "not found";
    case COAP_E_STATE: return "operation not valid in the current state";
    case COAP_E_SYSTEM: return "system call failed";
    case COAP_E_CANCELLED: return "cancelled";
    case COAP_E_EXISTS: return "already exists";
    case COAP_E_TRUNCATED: return "message truncated: shorter than its header and token";
    case COAP_E_BAD_VERSION: return "unsupported CoAP version (not 1)";
    case COAP_E_BAD_TOKEN_LEN: return "token length 9-15 is reserved";
    case COAP_E_BAD_OPTION: return "malformed option (reserved nibble 15 or runs past the end)";
    case COAP_E_EMPTY_PAYLOAD: return "payload marker followed by an empty payload";
    case COAP_E_TOO_MANY_OPTIONS: return "too many options in one message";
    case COAP_E_BAD_EMPTY: return "empty message (0.00) with token, options or payload";
    case COAP_E_BAD_CODE: return "reserved code class";
    case COAP_E_OPTION_ORDER: return "options out of order";
    case COAP_E_OPTION_VALUE: return "option value length outside its registered range";
    case COAP_E_URI_SCHEME: return "URI scheme must be coap:// or coaps://";
    case COAP_E_URI_HOST: return "URI has a missing or malformed host";
    case COAP_E_URI_PORT: return "URI port is not a number from 1 to 65535";
    case COAP_E_URI_ENCODING: return "URI has bad percent-encoding or a fragment";
    case COAP_E_RESOLVE: return "host name could not be resolved";
    case COAP_E_URI_TOO_LONG: return "URI path or query is longer than 1023 characters";
    case COAP_E_TIMEOUT: return "no response: request timed out";
    case COAP_E_RESET: return "the peer rejected the message with RST";
    case COAP_E_BAD_RESPONSE: return "response rejected (malformed or unknown critical option)";
    case COAP_E_UNREACHABLE: return "peer unreachable: nothing listening on that port (ICMP)";
    case COAP_E_WRONG_PROTOCOL: return "the port speaks the other protocol (coap:// vs coaps://)";
    case COAP_E_TOO_LARGE: return "too large to send or to take";
    case COAP_E_BLOCKWISE: return "block-wise transfer failed";
    case COAP_E_DTLS_NO_CREDENTIALS:
      return "coaps:// needs credentials: a PSK, a CA to verify the server, or a pinned raw public "
             "key";
    case COAP_E_DTLS_CREDENTIALS: return "DTLS credentials could not be loaded";
    case COAP_E_DTLS_HANDSHAKE: return "DTLS handshake failed";
    case COAP_E_DTLS_TIMEOUT: return "DTLS handshake got no answer";
    case COAP_E_DTLS_CLOSED: return "DTLS session closed by the peer";
    case COAP_E_DTLS_RECORD: return "DTLS record could not be authenticated";
    case COAP_E_FATAL_THRESHOLD: break;
    case COAP_E_INTERNAL: return "internal error (a bug in coaps)";
  }
  return "unknown error";
}
