/* Send batching with source addresses, on real loopback sockets: a
 * datagram queued with a local address (what a socket bound to a wildcard
 * address does for its answers) leaves from exactly that address, also
 * inside a UDP GSO group, and a group never mixes sources. IPv4 sockets
 * (IP_PKTINFO), dual-stack IPv6 sockets with v4-mapped and IPv6 peers
 * (IPV6_PKTINFO); datagrams without a source carry no control message. */
#define _GNU_SOURCE /* struct mmsghdr, in6_pktinfo, used by io/tx_batch.h */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "io/tx_batch.h"

static coap_tx_batch_t *b;
static int tx4, tx6, rx4, rx6;
static coap_address_t to4, to4_mapped, to6;

static int bound_socket(int family, const char *host, coap_address_t *out) {
  int fd = socket(family, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  int big = 1 << 20, off = 0;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  coap_address_t a;
  assert_int_equal(coap_address_from_string(&a, host, 0), 0);
  assert_int_equal(bind(fd, &a.addr.sa, a.size), 0);
  if (out) {
    memset(out, 0, sizeof(*out));
    out->size = sizeof out->addr.st;
    assert_int_equal(getsockname(fd, &out->addr.sa, &out->size), 0);
  }
  return fd;
}

static coap_address_t addr(const char *host) {
  coap_address_t a;
  assert_int_equal(coap_address_from_string(&a, host, 0), 0);
  return a;
}

static int setup(void **state) {
  b = calloc(1, sizeof(*b));
  assert_non_null(b);
  coap_tx_batch_init(b);
  /* The senders are bound like a server's sockets: to the any-address. */
  tx4 = bound_socket(AF_INET, "0.0.0.0", NULL);
  tx6 = bound_socket(AF_INET6, "::", NULL);
  rx4 = bound_socket(AF_INET, "127.0.0.1", &to4);
  rx6 = bound_socket(AF_INET6, "::1", &to6);
  char host[64];
  snprintf(host, sizeof host, "::ffff:127.0.0.1");
  to4_mapped = addr(host);
  coap_address_set_port(&to4_mapped, coap_address_get_port(&to4));
  return 0;
}

static int teardown(void **state) {
  close(tx4);
  close(tx6);
  close(rx4);
  close(rx6);
  free(b);
  return 0;
}

static void fill(uint8_t *buf, size_t len, unsigned i) {
  memset(buf, (int)(i & 0xff), len);
}

static void queue(int fd, const char *src, const coap_address_t *to, unsigned i, size_t len) {
  uint8_t buf[COAP_TX_DATAGRAM_MAX + 512];
  fill(buf, len, i);
  coap_address_t local;
  if (src) local = addr(src);
  assert_int_equal(coap_tx_batch_add_from(b, fd, src ? &local : NULL, to, buf, len), 0);
}

/* The next datagram on |fd| is number |i|, |len| bytes, from |src| (as
 * coap_address_format prints the address, without ":port"). */
static void expect(int fd, unsigned i, size_t len, const char *src) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&p, 1, 2000), 1);
  uint8_t got[COAP_TX_DATAGRAM_MAX + 512], want[sizeof got];
  coap_address_t from;
  memset(&from, 0, sizeof from);
  from.size = sizeof from.addr.st;
  ssize_t n = recvfrom(fd, got, sizeof got, MSG_DONTWAIT, &from.addr.sa, &from.size);
  assert_int_equal(n, (ssize_t)len);
  fill(want, len, i);
  assert_memory_equal(got, want, len);
  char text[80];
  coap_address_format(&from, text, sizeof text);
  *strrchr(text, ':') = '\0';
  assert_string_equal(text, src);
}

static void expect_nothing_more(int fd) {
  uint8_t buf[16];
  assert_int_equal(recv(fd, buf, sizeof buf, MSG_DONTWAIT), -1);
  assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Equal datagrams to one client from alternating sources: one GSO group
 * per run of one source, each datagram from its own address. */
static void test_groups_split_by_source(void **state) {
  const char *src[] = {"127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3",
                       NULL,        NULL,        "127.0.0.2", "127.0.0.2"};
  size_t n = sizeof src / sizeof src[0];
  for (unsigned i = 0; i < n; i++) queue(tx4, src[i], &to4, i, 300);
  assert_null(b->msgs[5].msg_hdr.msg_control); /* no source: no control message */
  assert_int_equal(b->msgs[5].msg_hdr.msg_controllen, 0);
  coap_tx_batch_flush(b);
  for (unsigned i = 0; i < n; i++) expect(rx4, i, 300, src[i] ? src[i] : "127.0.0.1");
  expect_nothing_more(rx4);
  assert_int_equal(b->stats.datagrams, n);
  assert_int_equal(b->stats.dropped, 0);
  assert_int_equal(b->stats.syscalls, 1);
  assert_int_equal(b->stats.gso_sends, 4);
}

/* Single datagrams, interleaved destinations, and the immediate paths
 * (an oversize datagram, coap_tx_send_now_from) keep their sources too. */
static void test_sources_on_every_path(void **state) {
  queue(tx4, "127.0.0.5", &to4, 1, 40);
  queue(tx4, NULL, &to4, 2, 41);
  queue(tx4, "127.0.0.6", &to4, 3, COAP_TX_DATAGRAM_MAX + 100); /* at once */
  queue(tx4, "127.0.0.7", &to4, 4, 42);
  coap_tx_batch_flush(b);
  uint8_t buf[60];
  fill(buf, sizeof buf, 5);
  coap_address_t local = addr("127.0.0.8");
  assert_int_equal(coap_tx_send_now_from(b, tx4, &local, &to4, buf, sizeof buf), 0);
  expect(rx4, 1, 40, "127.0.0.5");
  expect(rx4, 2, 41, "127.0.0.1");
  expect(rx4, 3, COAP_TX_DATAGRAM_MAX + 100, "127.0.0.6");
  expect(rx4, 4, 42, "127.0.0.7");
  expect(rx4, 5, sizeof buf, "127.0.0.8");
  expect_nothing_more(rx4);
}

/* A dual-stack socket: an IPv4 client (v4-mapped) and an IPv6 one. */
static void test_dual_stack_sources(void **state) {
  for (unsigned i = 0; i < 3; i++) queue(tx6, "::ffff:127.0.0.9", &to4_mapped, i, 200);
  queue(tx6, "::1", &to6, 3, 200);
  queue(tx6, "::ffff:127.0.0.10", &to4_mapped, 4, 200);
  coap_tx_batch_flush(b);
  for (unsigned i = 0; i < 3; i++) expect(rx4, i, 200, "127.0.0.9");
  expect(rx6, 3, 200, "[::1]");
  expect(rx4, 4, 200, "127.0.0.10");
  expect_nothing_more(rx4);
  expect_nothing_more(rx6);
  assert_int_equal(b->stats.dropped, 0);
}

/* A source that is not ours: the kernel refuses that datagram (dropped,
 * counted, as a vanished address would be); the others still go. */
static void test_foreign_source_dropped_rest_sent(void **state) {
  queue(tx4, "127.0.0.2", &to4, 1, 30);
  queue(tx4, "192.0.2.1", &to4, 2, 30);
  queue(tx4, "192.0.2.1", &to4, 3, 30);
  queue(tx4, "127.0.0.2", &to4, 4, 30);
  coap_tx_batch_flush(b);
  expect(rx4, 1, 30, "127.0.0.2");
  expect(rx4, 4, 30, "127.0.0.2");
  expect_nothing_more(rx4);
  assert_int_equal(b->stats.dropped, 2);
  assert_int_equal(b->stats.datagrams, 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_groups_split_by_source, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sources_on_every_path, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dual_stack_sources, setup, teardown),
      cmocka_unit_test_setup_teardown(test_foreign_source_dropped_rest_sent, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
