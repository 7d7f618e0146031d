/* coaps serve --metrics, the parts without HTTP (the tool's files compiled
 * in): the escapes everything from the network goes through, the board's
 * sums over workers and merge of their failures, and the two bodies made
 * from them. tests/interop/metrics*.sh run the whole thing against
 * promtool, jq and a browser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../tools/coaps/metrics_board.c"
#include "../../tools/coaps/metrics_prom.c"
#include "../../tools/coaps/metrics_text.c"
#include "../../tools/coaps/status_page.c"

static void test_json_string_escapes(void **state) {
  text_buf_t b = {0};
  text_json_string(&b, "a\"b\\c\nd\x01<script>&\xff\xc3\xa9");
  assert_false(b.failed);
  assert_string_equal(b.data,
                      "a\\\"b\\\\c\\nd\\u0001\\u003cscript\\u003e\\u0026\\u00ff"
                      "\\u00c3\\u00a9");
  text_buf_free(&b);
}

static void test_label_value_escapes(void **state) {
  text_buf_t b = {0};
  text_label_value(&b, "a\"b\\c\nd");
  assert_string_equal(b.data, "a\\\"b\\\\c\\nd");
  text_buf_free(&b);
}

static coap_failure_record_t failure(uint64_t seq, uint64_t at_ms, const char *identity) {
  coap_failure_record_t f;
  memset(&f, 0, sizeof f);
  f.seq = seq;
  f.at_ms = at_ms;
  f.cause = COAP_CAUSE_PSK_KEY_MISMATCH;
  f.mode = COAP_DTLS_MODE_PSK;
  f.is_server = 1;
  snprintf(f.peer, sizeof f.peer, "192.0.2.%u:5684", (unsigned)seq);
  snprintf(f.identity, sizeof f.identity, "%s", identity);
  snprintf(f.fix, sizeof f.fix, "give the client the key for \"%s\"", identity);
  return f;
}

/* Two workers' slots filled by hand, as metrics_publish would. */
static void fill_board(metrics_board_t *b) {
  assert_int_equal(metrics_board_init(b, 2), 0);
  for (int w = 0; w < 2; w++) {
    metrics_slot_t *s = &b->slots[w];
    s->published = 1;
    s->stats.rx_datagrams = 10 + w;
    s->stats.peers = 3;
    s->stats.dtls_handshakes = 5;
    s->stats.dtls_handshakes_by_mode[COAP_DTLS_MODE_PSK][0] = 5;
    s->stats.failures_by_cause[COAP_CAUSE_PSK_KEY_MISMATCH] = 2;
    s->stats.dtls_failures_by_mode[COAP_DTLS_MODE_PSK] = 2;
    s->stats.dtls_sessions_by_mode[COAP_DTLS_MODE_X509] = 1;
    s->stats.responses_by_class[2] = 7;
  }
  /* Newest first in each slot; worker 1's are interleaved with worker 0's. */
  b->slots[0].failures[0] = failure(2, 4000, "<script>alert(1)</script>");
  b->slots[0].failures[1] = failure(1, 1000, "dev-a");
  b->slots[0].n_failures = 2;
  b->slots[1].failures[0] = failure(2, 3000, "dev-c");
  b->slots[1].failures[1] = failure(1, 2000, "dev-b");
  b->slots[1].n_failures = 2;
}

static void test_collect_sums_and_merges(void **state) {
  metrics_board_t b;
  fill_board(&b);
  metrics_note_reload(&b, 1);
  metrics_note_reload(&b, 0);
  metrics_note_reload(NULL, 1); /* no --metrics: nothing */
  metrics_view_t v;
  metrics_collect(&b, &v);
  assert_int_equal(v.workers_published, 2);
  assert_int_equal(v.sum.rx_datagrams, 21);
  assert_int_equal(v.sum.peers, 6);
  assert_int_equal(v.sum.dtls_handshakes_by_mode[COAP_DTLS_MODE_PSK][0], 10);
  assert_int_equal(v.sum.failures_by_cause[COAP_CAUSE_PSK_KEY_MISMATCH], 4);
  assert_int_equal(v.n_failures, 4);
  assert_string_equal(v.failures[0].identity, "<script>alert(1)</script>");
  assert_string_equal(v.failures[1].identity, "dev-c");
  assert_string_equal(v.failures[2].identity, "dev-b");
  assert_string_equal(v.failures[3].identity, "dev-a");
  assert_int_equal(v.reloads.ok, 1);
  assert_int_equal(v.reloads.failed, 1);
  assert_true(v.reloads.last_success_unix > 0);
  metrics_board_free(&b);
}

/* Every sample line belongs to a family announced by HELP and TYPE just
 * before it, counters end in _total, and values are integers. */
static void test_prometheus_shape(void **state) {
  metrics_board_t b;
  fill_board(&b);
  metrics_view_t v;
  metrics_collect(&b, &v);
  text_buf_t t = {0};
  metrics_prometheus(&v, &t);
  assert_false(t.failed);
  char family[128] = "", type[32] = "";
  int samples = 0;
  for (char *line = strtok(t.data, "\n"); line; line = strtok(NULL, "\n")) {
    char name[128];
    if (sscanf(line, "# HELP %127s", name) == 1) {
      snprintf(family, sizeof family, "%s", name);
      type[0] = '\0';
      continue;
    }
    if (sscanf(line, "# TYPE %127s %31s", name, type) == 2) {
      assert_string_equal(name, family);
      if (strcmp(type, "counter") == 0) {
        size_t n = strlen(name);
        assert_true(n > 6 && strcmp(name + n - 6, "_total") == 0);
      }
      continue;
    }
    assert_true(type[0] != '\0');
    size_t n = strlen(family);
    assert_memory_equal(line, family, n);
    assert_true(line[n] == ' ' || line[n] == '{');
    const char *value = strrchr(line, ' ');
    assert_non_null(value);
    for (const char *p = value + 1; *p; p++) assert_true(*p >= '0' && *p <= '9');
    samples++;
  }
  assert_true(samples > 40);
  text_buf_free(&t);
  metrics_board_free(&b);
}

static void test_status_json_escapes_identities(void **state) {
  metrics_board_t b;
  fill_board(&b);
  metrics_view_t v;
  metrics_collect(&b, &v);
  text_buf_t t = {0};
  status_json(&v, &t);
  assert_false(t.failed);
  assert_null(strchr(t.data, '<'));
  assert_non_null(
      strstr(t.data, "\"identity\":\"\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\""));
  assert_non_null(strstr(t.data, "\"cause\":\"psk-key-mismatch\""));
  assert_non_null(strstr(t.data, "\"x509\":2"));
  assert_non_null(strstr(t.data, "\"success_rate\":0.7143")); /* 10 of 14 */
  text_buf_free(&t);
  metrics_board_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_string_escapes),
      cmocka_unit_test(test_label_value_escapes),
      cmocka_unit_test(test_collect_sums_and_merges),
      cmocka_unit_test(test_prometheus_shape),
      cmocka_unit_test(test_status_json_escapes_identities),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
