/* The metrics listener: HTTP from libmicrohttpd in a thread of its own
 * (never a worker's), serving /metrics, / and /status.json from the
 * board. Bounded: at most METRICS_MAX_CONNECTIONS connections (fewer per
 * address), each closed after METRICS_IDLE_S seconds without progress,
 * with a small memory pool; anything but GET and HEAD is refused. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "metrics.h"

#define METRICS_DEFAULT_HOST "127.0.0.1"

int metrics_parse_address(const char *text, coap_address_t *out) {
  char host[64];
  const char *port_text = text;
  const char *colon = strrchr(text, ':');
  if (colon) {
    size_t n = (size_t)(colon - text);
    const char *h = text;
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') h++, n -= 2;
    if (n == 0 || n >= sizeof host) goto bad;
    memcpy(host, h, n);
    host[n] = '\0';
    port_text = colon + 1;
  } else {
    snprintf(host, sizeof host, "%s", METRICS_DEFAULT_HOST);
  }
  char *end;
  long port = strtol(port_text, &end, 10);
  if (*port_text == '\0' || *end || port < 0 || port > 65535) goto bad;
  if (coap_address_from_string(out, host, (uint16_t)port) < 0) goto bad;
  return 0;
bad:
  cli_error(
      "--metrics wants PORT (on 127.0.0.1), ADDR:PORT or [IPV6]:PORT with a numeric "
      "address and a port from 0 to 65535, got '%s'",
      text);
  return -1;
}

#ifdef COAPS_HAVE_MICROHTTPD
#include <microhttpd.h>

#define METRICS_MAX_CONNECTIONS 32
#define METRICS_MAX_PER_ADDRESS 16
#define METRICS_IDLE_S 10
#define METRICS_POOL_BYTES (32 * 1024)

struct metrics_server {
  struct MHD_Daemon *daemon;
  metrics_board_t *board;
  coap_address_t addr;
};

int metrics_available(void) {
  return 1;
}

static enum MHD_Result send_buffer(struct MHD_Connection *c, unsigned status, const char *type,
                                   char *data, size_t len, enum MHD_ResponseMemoryMode mode) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, data, mode);
  if (!r) {
    if (mode == MHD_RESPMEM_MUST_FREE) free(data);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  /* The page loads nothing from elsewhere and talks only to us. */
  MHD_add_response_header(r, "Content-Security-Policy",
                          "default-src 'none'; script-src 'unsafe-inline'; "
                          "style-src 'unsafe-inline'; connect-src 'self'");
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, "Allow", "GET, HEAD");
  enum MHD_Result rc = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return rc;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *msg) {
  return send_buffer(c, status, "text/plain; charset=utf-8", (char *)msg, strlen(msg),
                     MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result send_view(struct MHD_Connection *c, metrics_board_t *board, int prometheus) {
  metrics_view_t *v = malloc(sizeof(*v));
  if (!v) return send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
  metrics_collect(board, v);
  text_buf_t b = {0};
  if (prometheus)
    metrics_prometheus(v, &b);
  else
    status_json(v, &b);
  free(v);
  if (b.failed || !b.data) {
    text_buf_free(&b);
    return send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
  }
  return send_buffer(c, MHD_HTTP_OK,
                     prometheus ? "text/plain; version=0.0.4; charset=utf-8" : "application/json",
                     b.data, b.len, MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **req_state) {
  (void)version;
  (void)upload_data;
  metrics_server_t *s = cls;
  static int seen;
  if (!*req_state) { /* headers only so far: answer once any body is in */
    *req_state = &seen;
    return MHD_YES;
  }
  if (*upload_size) {
    *upload_size = 0; /* a body to a GET: ignored */
    return MHD_YES;
  }
  if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
    return send_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
  if (strcmp(url, "/metrics") == 0) return send_view(c, s->board, 1);
  if (strcmp(url, "/status.json") == 0) return send_view(c, s->board, 0);
  if (strcmp(url, "/") == 0)
    return send_buffer(c, MHD_HTTP_OK, "text/html; charset=utf-8", (char *)status_page_html,
                       strlen(status_page_html), MHD_RESPMEM_PERSISTENT);
  return send_text(c, MHD_HTTP_NOT_FOUND, "not found: try /, /metrics or /status.json\n");
}

/* Our own listening socket, so that a port in use is named precisely. */
static int listen_on(coap_address_t *addr, int *exit_code) {
  char text[80];
  coap_address_format(addr, text, sizeof text);
  int fd = socket(addr->addr.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, &addr->addr.sa, addr->size) < 0 || listen(fd, 64) < 0) {
    int err = errno;
    cli_error("cannot listen for --metrics on %s: %s%s", text, strerror(err),
              err == EADDRINUSE ? " (another program uses that port: pick another one, or 0 "
                                  "for a free one)"
                                : "");
    if (fd >= 0) close(fd);
    *exit_code = EXIT_CONFIG;
    return -1;
  }
  socklen_t len = sizeof addr->addr;
  if (getsockname(fd, &addr->addr.sa, &len) == 0) addr->size = len;
  return fd;
}

metrics_server_t *metrics_server_start(const coap_address_t *addr, metrics_board_t *b,
                                       int *exit_code) {
  *exit_code = EXIT_NETWORK;
  metrics_server_t *s = calloc(1, sizeof(*s));
  if (!s) {
    cli_error("out of memory");
    return NULL;
  }
  s->board = b;
  s->addr = *addr;
  int fd = listen_on(&s->addr, exit_code);
  if (fd < 0) {
    free(s);
    return NULL;
  }
  /* Its thread must not take the signals the main thread waits for. */
  sigset_t mask, old;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &mask, &old);
  s->daemon = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, on_request, s,
      MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_MAX_CONNECTIONS,
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)METRICS_MAX_PER_ADDRESS,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_IDLE_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      (size_t)METRICS_POOL_BYTES, MHD_OPTION_END);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (!s->daemon) {
    cli_error("cannot start the --metrics HTTP server (libmicrohttpd refused to start)");
    close(fd);
    free(s);
    return NULL;
  }
  return s;
}

const coap_address_t *metrics_server_address(const metrics_server_t *s) {
  return &s->addr;
}

void metrics_server_stop(metrics_server_t *s) {
  if (!s) return;
  MHD_stop_daemon(s->daemon); /* closes the listening socket too */
  free(s);
}

#else /* built without libmicrohttpd */

struct metrics_server {
  int unused;
};

int metrics_available(void) {
  return 0;
}

metrics_server_t *metrics_server_start(const coap_address_t *addr, metrics_board_t *b,
                                       int *exit_code) {
  (void)addr;
  (void)b;
  cli_error(
      "--metrics needs libmicrohttpd, and this coaps was built without it (install "
      "libmicrohttpd-dev and build again)");
  *exit_code = EXIT_CONFIG;
  return NULL;
}

const coap_address_t *metrics_server_address(const metrics_server_t *s) {
  (void)s;
  return NULL;
}

void metrics_server_stop(metrics_server_t *s) {
  (void)s;
}

#endif
