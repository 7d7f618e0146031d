/* The I/O shell's send batching and SO_REUSEPORT, on loopback: the answers
 * to a burst of requests leave in fewer system calls than datagrams, every
 * one of them intact; two contexts (two workers) can listen on the same
 * port and between them answer every client. */
#define _GNU_SOURCE /* struct mmsghdr, used by io/tx_batch.h */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "coaps/io.h"
#include "io/io_stats.h"

#define BURST 20
#define CLIENTS 32

static void pong(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                 coap_response_t *resp, void *user) {
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, "pong", 4);
}

/* A context answering GET /ping on 127.0.0.1:|port|; the port bound in
 * |*bound|. NULL when it cannot listen. */
static coap_context_t *server_on(uint16_t port, uint16_t *bound) {
  coap_context_t *ctx = coap_context_new(NULL);
  assert_non_null(ctx);
  coap_resource_t *r = coap_resource_add(ctx, "ping");
  coap_resource_set_handler(r, COAP_GET, pong, NULL);
  assert_int_equal(coap_context_set_reuse_port(ctx, 1), 0);
  coap_address_t addr;
  assert_int_equal(coap_address_from_string(&addr, "127.0.0.1", port), 0);
  coap_endpoint_t *ep = coap_context_listen(ctx, COAP_PROTO_UDP, &addr);
  if (!ep) {
    coap_context_free(ctx);
    return NULL;
  }
  *bound = coap_address_get_port(coap_endpoint_address(ep));
  return ctx;
}

static int client_socket(uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  assert_true(fd >= 0);
  struct sockaddr_in to = {
      .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof to), 0);
  return fd;
}

/* CON GET /ping with message ID |mid| and a one-byte token. */
static void send_get(int fd, uint16_t mid) {
  const uint8_t d[] = {0x41, 0x01, (uint8_t)(mid >> 8), (uint8_t)mid, 0x42, 0xb4, 'p', 'i',
                       'n',  'g'};
  assert_int_equal(send(fd, d, sizeof d, 0), (ssize_t)sizeof d);
}

/* One reply, or -1 when none is waiting. Checks it answers a GET with
 * "pong" and returns its message ID. */
static int read_reply(int fd) {
  uint8_t buf[256];
  ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n < 0) return -1;
  coap_msg_t m;
  assert_int_equal(coap_msg_parse(&m, buf, (size_t)n), 0);
  assert_int_equal(m.type, COAP_TYPE_ACK);
  assert_int_equal(m.code, COAP_CONTENT);
  assert_int_equal(m.payload_len, 4);
  assert_memory_equal(m.payload, "pong", 4);
  return m.mid;
}

static void test_burst_answered_in_fewer_syscalls(void **state) {
  uint16_t port;
  coap_context_t *srv = server_on(0, &port);
  assert_non_null(srv);
  int fd = client_socket(port);
  for (uint16_t mid = 1; mid <= BURST; mid++) send_get(fd, mid);
  int seen[BURST + 1] = {0}, got = 0;
  for (int round = 0; round < 50 && got < BURST; round++) {
    assert_int_equal(coap_context_process(srv, 100), 0);
    int mid;
    while ((mid = read_reply(fd)) >= 0) {
      assert_true(mid >= 1 && mid <= BURST);
      assert_int_equal(seen[mid]++, 0); /* each answered once */
      got++;
    }
  }
  assert_int_equal(got, BURST);
  const coap_tx_stats_t *tx = coap_io_tx_stats(srv);
  assert_non_null(tx);
  assert_int_equal(tx->datagrams, BURST);
  assert_true(tx->syscalls < tx->datagrams);
  assert_int_equal(tx->dropped, 0);
  close(fd);
  coap_context_free(srv);
}

static void test_two_contexts_share_a_port(void **state) {
  uint16_t port, port2;
  coap_context_t *one = server_on(0, &port);
  assert_non_null(one);
  coap_context_t *two = server_on(port, &port2);
  assert_non_null(two); /* SO_REUSEPORT on both */
  assert_int_equal(port2, port);
  int fds[CLIENTS], answered[CLIENTS] = {0}, total = 0;
  for (int i = 0; i < CLIENTS; i++) {
    fds[i] = client_socket(port);
    send_get(fds[i], (uint16_t)(100 + i));
  }
  for (int round = 0; round < 50 && total < CLIENTS; round++) {
    assert_int_equal(coap_context_process(one, 20), 0);
    assert_int_equal(coap_context_process(two, 20), 0);
    for (int i = 0; i < CLIENTS; i++) {
      int mid = read_reply(fds[i]);
      if (mid < 0) continue;
      assert_int_equal(mid, 100 + i);
      answered[i]++;
      total++;
    }
  }
  for (int i = 0; i < CLIENTS; i++) assert_int_equal(answered[i], 1);
  coap_stats_t s1, s2;
  coap_context_get_stats(one, &s1);
  coap_context_get_stats(two, &s2);
  assert_int_equal(s1.requests_handled + s2.requests_handled, CLIENTS);
  /* The kernel spreads clients by address hash: with 32 of them both
   * sockets get some (all on one: odds of 2^-31). */
  assert_true(s1.requests_handled > 0 && s2.requests_handled > 0);
  for (int i = 0; i < CLIENTS; i++) close(fds[i]);
  coap_context_free(two);
  coap_context_free(one);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_burst_answered_in_fewer_syscalls),
      cmocka_unit_test(test_two_contexts_share_a_port),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
