/* The default randomness (coap_system_rand): tokens drawn one after
 * another are distinct, draws larger than the pool work, and a forked
 * child never hands out the bytes its parent hands out next — the pool
 * each thread keeps is forgotten in the child. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/util.h"

#define TOKENS 2000

static void test_tokens_distinct(void **state) {
  static uint64_t token[TOKENS];
  for (int i = 0; i < TOKENS; i++) coap_system_rand(NULL, (uint8_t *)&token[i], sizeof token[i]);
  for (int i = 0; i < TOKENS; i++)
    for (int j = i + 1; j < TOKENS; j++) assert_true(token[i] != token[j]);
}

/* Odd sizes walk the pool out of step with its refills; big ones bypass it. */
static void test_sizes(void **state) {
  uint8_t buf[1000];
  for (size_t len = 1; len <= sizeof buf; len = len * 3 + 1) {
    memset(buf, 0, sizeof buf);
    coap_system_rand(NULL, buf, len);
    size_t zeros = 0;
    for (size_t i = 0; i < len; i++) zeros += buf[i] == 0;
    assert_true(zeros <= len / 16 + 2); /* random, not left zeroed */
    for (size_t i = len; i < sizeof buf; i++) assert_int_equal(buf[i], 0); /* no overrun */
  }
}

static void test_fork_child_draws_other_bytes(void **state) {
  uint8_t warm[4];
  coap_system_rand(NULL, warm, sizeof warm); /* the pool now holds unread bytes */
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    uint8_t mine[16];
    coap_system_rand(NULL, mine, sizeof mine);
    _exit(write(fds[1], mine, sizeof mine) == (ssize_t)sizeof mine ? 0 : 1);
  }
  uint8_t parent[16], child[16];
  coap_system_rand(NULL, parent, sizeof parent);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_int_equal(read(fds[0], child, sizeof child), (ssize_t)sizeof child);
  close(fds[0]);
  close(fds[1]);
  assert_memory_not_equal(parent, child, sizeof parent);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tokens_distinct),
      cmocka_unit_test(test_sizes),
      cmocka_unit_test(test_fork_child_draws_other_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
