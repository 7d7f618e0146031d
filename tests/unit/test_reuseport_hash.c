/* What the session state file of several workers relies on (coaps
 * serve --workers N --state-file, src/context/sessions_state.c): the
 * kernel hands a datagram without a Connection ID to the same socket of
 * a SO_REUSEPORT group after the group is closed and opened again with
 * as many sockets, joined in the same order, with the same steering
 * program attached (src/io/io.c: its out-of-range answer leaves the
 * address hash in charge). Checked here on this kernel over loopback:
 * 64 client ports to a group of 2 and of 3 sockets, before and after
 * the group is made again; the flows spread over every socket (so the
 * check means something), land where they did before, and a tls12_cid
 * record goes to the socket its byte 11 names. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <cmocka.h>

#define FLOWS 64
#define GROUP_MAX 3

/* The steering program of src/io/io.c (attach_cid_steering), the same
 * instructions: byte 0 == 25 returns byte 11, anything else ~0. */
static int attach_steering(int fd) {
  struct sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 25, 0, 2),
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 11), BPF_STMT(BPF_RET | BPF_A, 0),
      BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
  };
  struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog);
}

static struct sockaddr_in loopback(uint16_t port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

/* A port nobody holds: a socket without SO_REUSEPORT picks it (with the
 * option, the kernel may hand out a port another group of this user
 * holds, and that group's sockets would join ours: coaps serve's
 * port_claim does the same). */
static uint16_t free_port(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = loopback(0);
  socklen_t len = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

/* |n| sockets joined in order on |port|. */
static void group_open(int *fds, size_t n, uint16_t port) {
  for (size_t i = 0; i < n; i++) {
    fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    assert_true(fds[i] >= 0);
    int on = 1;
    assert_int_equal(setsockopt(fds[i], SOL_SOCKET, SO_REUSEPORT, &on, sizeof on), 0);
    struct sockaddr_in a = loopback(port);
    assert_int_equal(bind(fds[i], (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(attach_steering(fds[i]), 0);
  }
}

static void group_close(int *fds, size_t n) {
  for (size_t i = 0; i < n; i++) close(fds[i]);
}

/* Send |msg| from each client socket; which group socket got flow i. */
static void where_they_land(const int *clients, const int *group, size_t n, uint8_t *msg,
                            size_t len, uint16_t port, int *landed) {
  struct sockaddr_in to = loopback(port);
  for (int f = 0; f < FLOWS; f++) {
    landed[f] = -1;
    msg[1] = (uint8_t)f; /* the flow, to tell them apart */
    assert_int_equal(sendto(clients[f], msg, len, 0, (struct sockaddr *)&to, sizeof to),
                     (ssize_t)len);
  }
  int got = 0;
  for (int rounds = 0; got < FLOWS && rounds < 200; rounds++) {
    struct pollfd p[GROUP_MAX];
    for (size_t i = 0; i < n; i++) p[i] = (struct pollfd){.fd = group[i], .events = POLLIN};
    poll(p, n, 10);
    uint8_t buf[64];
    for (size_t i = 0; i < n; i++)
      while (recv(group[i], buf, sizeof buf, 0) > 1) {
        landed[buf[1]] = (int)i;
        got++;
      }
  }
  assert_int_equal(got, FLOWS);
}

static void same_after_reopen(size_t n) {
  int clients[FLOWS], group[GROUP_MAX];
  for (int f = 0; f < FLOWS; f++) {
    clients[f] = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(clients[f] >= 0);
    struct sockaddr_in a = loopback(0);
    assert_int_equal(bind(clients[f], (struct sockaddr *)&a, sizeof a), 0);
  }
  uint16_t port = free_port();
  group_open(group, n, port);
  uint8_t record[16] = {23}; /* application data, no CID */
  int before[FLOWS], after[FLOWS];
  where_they_land(clients, group, n, record, sizeof record, port, before);
  int per_socket[GROUP_MAX] = {0};
  for (int f = 0; f < FLOWS; f++) per_socket[before[f]]++;
  for (size_t i = 0; i < n; i++) assert_true(per_socket[i] > 0); /* spread: a real check */
  group_close(group, n);
  group_open(group, n, port); /* the next process: same count, same order */
  where_they_land(clients, group, n, record, sizeof record, port, after);
  assert_memory_equal(before, after, sizeof before);
  /* A tls12_cid record goes where its CID's first byte says. */
  uint8_t cid_record[16] = {25};
  for (size_t i = 0; i < n; i++) {
    cid_record[11] = (uint8_t)i;
    where_they_land(clients, group, n, cid_record, sizeof cid_record, port, after);
    for (int f = 0; f < FLOWS; f++) assert_int_equal(after[f], (int)i);
  }
  group_close(group, n);
  for (int f = 0; f < FLOWS; f++) close(clients[f]);
}

static void test_two_sockets(void **state) {
  same_after_reopen(2);
}

static void test_three_sockets(void **state) {
  same_after_reopen(3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_two_sockets),
      cmocka_unit_test(test_three_sockets),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
