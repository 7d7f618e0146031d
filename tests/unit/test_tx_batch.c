/* Send batching on real loopback sockets: what is queued arrives exactly
 * as separate sends would have delivered it — every datagram, its bytes,
 * its order — while the queue needs fewer system calls than datagrams.
 * Consecutive equal-size datagrams to one destination go out as one UDP
 * GSO message and must still arrive one by one. */
#define _GNU_SOURCE /* struct mmsghdr, used by io/tx_batch.h */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "io/tx_batch.h"

static coap_tx_batch_t *b;
static int tx_fd, rx_a, rx_b;
static coap_address_t addr_a, addr_b;

static int bound_socket(coap_address_t *out) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  int big = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  if (out) {
    memset(out, 0, sizeof(*out));
    out->size = sizeof out->addr.st;
    assert_int_equal(getsockname(fd, &out->addr.sa, &out->size), 0);
  }
  return fd;
}

static int setup(void **state) {
  b = calloc(1, sizeof(*b));
  assert_non_null(b);
  coap_tx_batch_init(b);
  tx_fd = bound_socket(NULL);
  rx_a = bound_socket(&addr_a);
  rx_b = bound_socket(&addr_b);
  return 0;
}

static int teardown(void **state) {
  close(tx_fd);
  close(rx_a);
  close(rx_b);
  free(b);
  return 0;
}

/* Datagram |i| of a test: |len| bytes, each byte telling its index. */
static void fill(uint8_t *buf, size_t len, unsigned i) {
  memset(buf, (int)(i & 0xff), len);
}

static void queue(const coap_address_t *to, unsigned i, size_t len) {
  uint8_t buf[COAP_TX_DATAGRAM_MAX + 512];
  fill(buf, len, i);
  assert_int_equal(coap_tx_batch_add(b, tx_fd, to, buf, len), 0);
}

/* The next datagram on |fd| must be number |i|, |len| bytes long. */
static void expect(int fd, unsigned i, size_t len) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&p, 1, 2000), 1);
  uint8_t got[COAP_TX_DATAGRAM_MAX + 512], want[sizeof got];
  ssize_t n = recv(fd, got, sizeof got, MSG_DONTWAIT);
  assert_int_equal(n, (ssize_t)len);
  fill(want, len, i);
  assert_memory_equal(got, want, len);
}

static void expect_nothing_more(int fd) {
  uint8_t buf[16];
  assert_int_equal(recv(fd, buf, sizeof buf, MSG_DONTWAIT), -1);
  assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

static void test_nothing_leaves_before_the_flush(void **state) {
  queue(&addr_a, 1, 20);
  expect_nothing_more(rx_a);
  assert_int_equal(b->stats.syscalls, 0);
  coap_tx_batch_flush(b);
  expect(rx_a, 1, 20);
  assert_int_equal(b->stats.datagrams, 1);
}

/* Two destinations interleaved, sizes varying: each receiver sees its
 * datagrams in the order queued, and one system call did it all. */
static void test_order_and_bytes_kept(void **state) {
  for (unsigned i = 0; i < 12; i++) queue(i % 3 == 2 ? &addr_b : &addr_a, i, 10 + i * 7);
  coap_tx_batch_flush(b);
  for (unsigned i = 0; i < 12; i++) expect(i % 3 == 2 ? rx_b : rx_a, i, 10 + i * 7);
  expect_nothing_more(rx_a);
  expect_nothing_more(rx_b);
  assert_int_equal(b->stats.datagrams, 12);
  assert_int_equal(b->stats.syscalls, 1);
  assert_int_equal(b->stats.dropped, 0);
}

/* A window of equal answers to one client, then a shorter one: one GSO
 * message on the wire, six datagrams at the receiver. */
static void test_equal_datagrams_share_one_gso_send(void **state) {
  for (unsigned i = 0; i < 5; i++) queue(&addr_a, i, 300);
  queue(&addr_a, 5, 120);
  queue(&addr_a, 6, 300); /* longer than the last one: a new message */
  coap_tx_batch_flush(b);
  for (unsigned i = 0; i < 5; i++) expect(rx_a, i, 300);
  expect(rx_a, 5, 120);
  expect(rx_a, 6, 300);
  expect_nothing_more(rx_a);
  assert_int_equal(b->stats.datagrams, 7);
  assert_int_equal(b->stats.dropped, 0);
  /* Linux has had UDP GSO since 4.18; the batch only turns it off when
   * the kernel refuses it. */
  assert_int_equal(b->use_gso, 1);
  assert_int_equal(b->stats.gso_sends, 1);
}

/* More than a queue's worth: the queue flushes itself when full. */
static void test_full_queue_flushes_itself(void **state) {
  unsigned n = COAP_TX_BATCH + 9;
  for (unsigned i = 0; i < n; i++) queue(i % 2 ? &addr_b : &addr_a, i, 40);
  assert_int_equal(b->stats.datagrams, COAP_TX_BATCH);
  coap_tx_batch_flush(b);
  for (unsigned i = 0; i < n; i++) expect(i % 2 ? rx_b : rx_a, i, 40);
  assert_int_equal(b->stats.datagrams, n);
}

/* A datagram too large for a slot goes out at once, after what was
 * queued before it. */
static void test_oversize_datagram_keeps_its_place(void **state) {
  queue(&addr_a, 1, 50);
  queue(&addr_a, 2, COAP_TX_DATAGRAM_MAX + 100);
  queue(&addr_a, 3, 50);
  coap_tx_batch_flush(b);
  expect(rx_a, 1, 50);
  expect(rx_a, 2, COAP_TX_DATAGRAM_MAX + 100);
  expect(rx_a, 3, 50);
}

/* A datagram the kernel refuses (an IPv6 destination on an IPv4 socket)
 * is counted as dropped; the ones after it still go. */
static void test_refused_datagram_dropped_rest_sent(void **state) {
  coap_address_t v6;
  memset(&v6, 0, sizeof v6);
  v6.addr.sin6.sin6_family = AF_INET6;
  v6.addr.sin6.sin6_addr = in6addr_loopback;
  v6.addr.sin6.sin6_port = htons(9);
  v6.size = sizeof(struct sockaddr_in6);
  queue(&addr_a, 1, 30);
  queue(&v6, 2, 30);
  queue(&addr_a, 3, 30);
  coap_tx_batch_flush(b);
  expect(rx_a, 1, 30);
  expect(rx_a, 3, 30);
  expect_nothing_more(rx_a);
  assert_int_equal(b->stats.dropped, 1);
  assert_int_equal(b->stats.datagrams, 2);
}

/* A socket the kernel will not do GSO on (UDP-Lite: EIO): the group goes
 * out again one datagram at a time, and GSO stays off afterwards. */
static void test_gso_refused_falls_back_to_single_sends(void **state) {
  int lite_tx = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE);
  int lite_rx = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE);
  if (lite_tx < 0 || lite_rx < 0) skip(); /* a kernel built without UDP-Lite */
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(lite_rx, (struct sockaddr *)&sin, sizeof sin), 0);
  coap_address_t to;
  memset(&to, 0, sizeof to);
  to.size = sizeof to.addr.st;
  assert_int_equal(getsockname(lite_rx, &to.addr.sa, &to.size), 0);
  uint8_t buf[200];
  for (unsigned i = 0; i < 4; i++) {
    fill(buf, sizeof buf, i);
    assert_int_equal(coap_tx_batch_add(b, lite_tx, &to, buf, sizeof buf), 0);
  }
  coap_tx_batch_flush(b);
  for (unsigned i = 0; i < 4; i++) expect(lite_rx, i, sizeof buf);
  expect_nothing_more(lite_rx);
  assert_int_equal(b->use_gso, 0);
  assert_int_equal(b->stats.gso_sends, 0);
  assert_int_equal(b->stats.datagrams, 4);
  assert_int_equal(b->stats.dropped, 0);
  close(lite_tx);
  close(lite_rx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_nothing_leaves_before_the_flush, setup, teardown),
      cmocka_unit_test_setup_teardown(test_order_and_bytes_kept, setup, teardown),
      cmocka_unit_test_setup_teardown(test_equal_datagrams_share_one_gso_send, setup, teardown),
      cmocka_unit_test_setup_teardown(test_full_queue_flushes_itself, setup, teardown),
      cmocka_unit_test_setup_teardown(test_oversize_datagram_keeps_its_place, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused_datagram_dropped_rest_sent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gso_refused_falls_back_to_single_sends, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
