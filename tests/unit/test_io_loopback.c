/* The I/O shell on real loopback sockets: ephemeral ports, dual stack,
 * ICMP port unreachable reported at once, the embedding API, the blocking
 * call. Two contexts in one process, driven alternately. */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "coaps/io.h"

typedef struct box {
  int done, status;
  uint8_t code;
  char payload[256];
} box_t;

static void on_reply(coap_context_t *ctx, const coap_reply_t *r, void *user) {
  box_t *b = user;
  b->done = 1;
  b->status = r->status;
  b->code = r->code;
  size_t n = r->payload_len < sizeof b->payload - 1 ? r->payload_len : sizeof b->payload - 1;
  if (n) memcpy(b->payload, r->payload, n);
  b->payload[n] = '\0';
}

static void pong(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                 coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "pong", 4);
}

static coap_context_t *server, *client;
static uint16_t server_port;

static int setup(void **state) {
  server = coap_context_new(NULL);
  client = coap_context_new(NULL);
  assert_non_null(server);
  assert_non_null(client);
  coap_address_t any;
  coap_address_init(&any); /* [::]:0, dual stack */
  coap_endpoint_t *ep = coap_context_listen(server, COAP_PROTO_UDP, &any);
  assert_non_null(ep);
  server_port = coap_address_get_port(coap_endpoint_address(ep));
  assert_true(server_port != 0);
  coap_resource_t *r = coap_resource_add(server, "ping");
  coap_resource_set_handler(r, COAP_GET, pong, NULL);
  return 0;
}

static int teardown(void **state) {
  coap_context_free(client);
  coap_context_free(server);
  return 0;
}

/* Drive both contexts until |b| is done or about |ms| pass. The limits
 * given are generous: a pump ends as soon as the reply is there, and a
 * sanitized run on a loaded machine can take seconds for what takes
 * milliseconds alone. */
static void pump(box_t *b, int ms) {
  for (int i = 0; i < ms / 5 && !b->done; i++) {
    coap_context_process(server, 0);
    coap_context_process(client, 5);
  }
}

static void get(const char *host, box_t *b) {
  char uri[128];
  snprintf(uri, sizeof uri, "coap://%s:%u/ping", host, server_port);
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, uri);
  memset(b, 0, sizeof(*b));
  assert_int_equal(coap_send_request(client, &o, on_reply, b, NULL), 0);
  pump(b, 20000);
}

static void test_ipv4_to_dual_stack(void **state) {
  box_t b;
  get("127.0.0.1", &b);
  assert_true(b.done);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.code, COAP_CONTENT);
  assert_string_equal(b.payload, "pong");
}

static void test_ipv6(void **state) {
  box_t b;
  get("[::1]", &b);
  assert_true(b.done);
  assert_int_equal(b.code, COAP_CONTENT);
}

static void test_port_unreachable_is_immediate(void **state) {
  /* Bind a socket and close it to get a port nobody listens on. */
  coap_context_t *tmp = coap_context_new(NULL);
  coap_address_t a;
  coap_address_from_string(&a, "127.0.0.1", 0);
  coap_endpoint_t *ep = coap_context_listen(tmp, COAP_PROTO_UDP, &a);
  assert_non_null(ep);
  uint16_t dead = coap_address_get_port(coap_endpoint_address(ep));
  coap_context_free(tmp);

  char uri[64];
  snprintf(uri, sizeof uri, "coap://127.0.0.1:%u/ping", dead);
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, uri);
  /* Without the ICMP error this request would end at its 30 s timeout. */
  o.timeout_ms = 30000;
  box_t b = {0};
  uint64_t start = coap_clock_now_ms();
  assert_int_equal(coap_send_request(client, &o, on_reply, &b, NULL), 0);
  pump(&b, 40000);
  assert_true(b.done);
  assert_int_equal(b.status, COAP_E_UNREACHABLE);
  /* At once: the error of the first datagram ended it, not a resend's
   * (the socket's errors are read before due timers are run, so this
   * holds however late the loop gets to run), and the timeout did not. */
  coap_stats_t st;
  coap_context_get_stats(client, &st);
  assert_int_equal(st.retransmissions, 0);
  assert_int_equal(st.timeouts, 0);
  assert_true(coap_clock_now_ms() - start < o.timeout_ms / 3);
}

static void test_embedding_api(void **state) {
  int fd = coap_context_fd(server);
  assert_true(fd >= 0);
  assert_int_equal(coap_context_timeout_ms(server), -1); /* nothing pending */
  char uri[64];
  snprintf(uri, sizeof uri, "coap://127.0.0.1:%u/ping", server_port);
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, uri);
  box_t b = {0};
  assert_int_equal(coap_send_request(client, &o, on_reply, &b, NULL), 0);
  /* The client now has a retransmission timer (due within ACK_TIMEOUT
   * times ACK_RANDOM_FACTOR; 0 if a stalled machine let it come due). */
  int t = coap_context_timeout_ms(client);
  assert_true(t >= 0 && t <= 3000);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&p, 1, 20000), 1); /* the request woke the server */
  assert_int_equal(coap_context_process(server, 0), 0);
  pump(&b, 20000);
  assert_int_equal(b.code, COAP_CONTENT);
}

static void test_blocking_call(void **state) {
  /* The server must answer while the client blocks: fork it. It serves
   * until it has answered (with a generous limit should the client never
   * ask), not for a fixed time the client might overrun on a busy machine. */
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    coap_stats_t st = {0};
    for (int i = 0; i < 12000 && !st.requests_handled; i++) {
      coap_context_process(server, 5);
      coap_context_get_stats(server, &st);
    }
    _exit(st.requests_handled ? 0 : 1);
  }
  char uri[64];
  snprintf(uri, sizeof uri, "coap://127.0.0.1:%u/ping", server_port);
  coap_request_opts_t o;
  coap_request_opts_init(&o, COAP_GET, uri);
  coap_response_copy_t out;
  assert_int_equal(coap_request_blocking(client, &o, &out), 0);
  assert_int_equal(out.code, COAP_CONTENT);
  assert_string_equal((char *)out.payload, "pong");
  assert_true(out.raw_len > 4);
  coap_response_copy_clear(&out);
  assert_null(out.payload);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_ipv4_to_dual_stack, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ipv6, setup, teardown),
      cmocka_unit_test_setup_teardown(test_port_unreachable_is_immediate, setup, teardown),
      cmocka_unit_test_setup_teardown(test_embedding_api, setup, teardown),
      cmocka_unit_test_setup_teardown(test_blocking_call, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
