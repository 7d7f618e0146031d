/* coaps-bench: what it measures — requests/s of established sessions
 * (steady), handshakes/s of fresh ones (handshakes), idle sessions held
 * (hold) — the loop that drives them, and the report. */
#include <inttypes.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#include "bench.h"

static void run_timers(bench_t *b) {
  uint64_t now = coap_clock_now_ms();
  /* Bounded: a context whose timer stays due cannot spin the loop. */
  for (size_t n = b->heap_len; n > 0 && b->heap_len && b->heap[0]->deadline <= now; n--) {
    session_t *s = b->heap[0];
    coap_context_handle_timeouts(s->ctx, now);
    if (session_after(b, s)) continue;
    if (s->deadline <= now) { /* nothing ran: look again next tick */
      s->deadline = now + 1;
      heap_fix(b, s->heap_idx);
    }
  }
  bench_flush(b); /* what sessions on shared sockets sent */
}

static int poll_timeout_ms(const bench_t *b, uint64_t wake_us) {
  uint64_t now = coap_clock_now_ms();
  uint64_t next = b->heap_len ? b->heap[0]->deadline : UINT64_MAX;
  if (wake_us) {
    uint64_t w = wake_us / 1000 + 1;
    if (w < next) next = w;
  }
  if (next == UINT64_MAX) return 100;
  if (next <= now) return 0;
  return next - now > 100 ? 100 : (int)(next - now);
}

static void poll_once(bench_t *b, uint64_t wake_us) {
  struct epoll_event ev[EVENTS_MAX];
  int n = epoll_wait(b->epfd, ev, EVENTS_MAX, poll_timeout_ms(b, wake_us));
  for (int i = 0; i < n; i++) {
    if (b->n_shared) {
      receive_shared(b, ev[i].data.ptr);
      continue;
    }
    session_t *s = ev[i].data.ptr;
    receive_batch(b, s);
    session_after(b, s);
    b->batch_us = 0;
  }
  run_timers(b);
}

/* Steady mode: the measurement starts when every session has finished
 * its handshake, so handshakes do not dilute requests/s. */
static void maybe_start_measuring(bench_t *b) {
  if (b->measuring || b->connecting || b->started < b->target_sessions) return;
  if (b->finished >= b->target_sessions) return; /* every session failed */
  b->measuring = 1;
  b->t0_us = now_us();
  if (b->o.requests <= 0) b->t_end_us = b->t0_us + (uint64_t)(b->o.duration_s * 1e6);
  /* Windows are already full (sessions start sending once established);
   * requests sent from now on are the measured ones. */
}

static int steady_done(const bench_t *b) {
  if (!b->measuring) return b->finished >= b->target_sessions; /* all failed */
  if (b->o.requests > 0) return b->issued >= b->o.requests && !b->in_flight_measured;
  return now_us() >= b->t_end_us;
}

void run_steady(bench_t *b) {
  b->target_sessions = b->o.sessions;
  while (!*b->stop) {
    launch_sessions(b);
    maybe_start_measuring(b);
    if (steady_done(b)) break;
    poll_once(b, b->t_end_us);
  }
  if (!b->t_end_us || (b->o.requests > 0 && b->last_done_us)) b->t_end_us = b->last_done_us;
  if (*b->stop && b->measuring) b->t_end_us = now_us();
}

/* Ends after C sessions, or at --duration if given: a server that slows
 * down as sessions pile up (--leave-open) may never get through C.
 * Sessions still handshaking at the cap are not counted. */
void run_handshakes(bench_t *b) {
  b->target_sessions = b->o.handshakes;
  b->measuring = 1;
  b->t0_us = now_us();
  uint64_t cap = b->o.duration_set ? b->t0_us + (uint64_t)(b->o.duration_s * 1e6) : 0;
  while (!*b->stop && b->finished < b->target_sessions) {
    launch_sessions(b);
    poll_once(b, cap);
    if (cap && now_us() >= cap) break;
  }
  b->t_end_us = now_us();
}

void run_hold(bench_t *b) {
  b->target_sessions = b->o.sessions;
  b->t0_us = now_us();
  while (!*b->stop && b->started < b->target_sessions) {
    launch_sessions(b);
    poll_once(b, 0);
  }
  while (!*b->stop && b->connecting) poll_once(b, 0);
  b->t_end_us = now_us();
}

void hold_idle(bench_t *b) {
  uint64_t until = b->o.hold_s > 0 ? now_us() + (uint64_t)(b->o.hold_s * 1e6) : UINT64_MAX;
  while (!g_stop && now_us() < until) poll_once(b, 0);
}

/* ---- report ---- */

static double elapsed_s(const bench_t *b) {
  return b->t_end_us > b->t0_us ? (double)(b->t_end_us - b->t0_us) / 1e6 : 0;
}

uint64_t errors_total(const counters_t *c) {
  return c->timeouts + c->handshake_failures + c->non_2xx + c->other_errors;
}

static const char *mode_name(const bench_opts_t *o) {
  return o->handshakes > 0 ? "handshakes" : o->hold_s >= 0 ? "hold" : "steady";
}

void report(const bench_t *b, FILE *out) {
  const counters_t *c = &b->c;
  double t = elapsed_s(b);
  double rps = t > 0 ? (double)c->completed / t : 0;
  double hps = t > 0 && b->o.handshakes > 0 ? (double)c->handshakes / t : 0;
  if (b->o.hold_s >= 0 && t > 0) hps = (double)c->handshakes / t;
  uint64_t p50 = hist_percentile(&b->lat, 0.50), p90 = hist_percentile(&b->lat, 0.90);
  uint64_t p99 = hist_percentile(&b->lat, 0.99);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
               ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
  if (b->o.json) {
    fprintf(out,
            "{\"mode\":\"%s\",\"uri\":\"%s\",\"sessions\":%ld,\"window\":%ld,"
            "\"parallel\":%ld,\"seconds\":%.3f,\"requests\":%" PRIu64
            ","
            "\"requests_per_s\":%.1f,\"handshakes\":%" PRIu64
            ",\"handshakes_per_s\":%.1f,"
            "\"latency_us\":{\"p50\":%" PRIu64 ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64
            ",\"max\":%" PRIu64 "},\"retransmissions\":%" PRIu64 ",\"errors\":%" PRIu64
            ","
            "\"timeouts\":%" PRIu64 ",\"handshake_failures\":%" PRIu64 ",\"non_2xx\":%" PRIu64
            ",\"other_errors\":%" PRIu64 ",\"tx_dropped\":%" PRIu64
            ",\"generator_cpu_s\":%.3f,"
            "\"gro\":%d,\"shared_sockets\":%ld,\"source_addresses\":%ld,"
            "\"close_notify\":%d,\"generator_rss_kb\":%ld}\n",
            mode_name(&b->o), b->o.uri, b->o.sessions, b->o.window, b->o.parallel, t, c->completed,
            rps, c->handshakes, hps, p50, p90, p99, b->lat.max, c->retransmissions, errors_total(c),
            c->timeouts, c->handshake_failures, c->non_2xx, c->other_errors, b->tx.stats.dropped,
            cpu, b->gro, b->n_shared, b->n_shared ? b->started : 0, !b->o.leave_open, ru.ru_maxrss);
  } else {
    fprintf(out, "%s %s: %.3f s\n", mode_name(&b->o), b->o.uri, t);
    fprintf(out, "  requests      %" PRIu64 " (%.1f/s)\n", c->completed, rps);
    if (b->o.handshakes > 0 || b->o.hold_s >= 0)
      fprintf(out, "  handshakes    %" PRIu64 " (%.1f/s)%s\n", c->handshakes, hps,
              b->o.leave_open ? ", sessions left open (no close_notify)" : "");
    fprintf(out,
            "  latency (us)  p50 %" PRIu64 "  p90 %" PRIu64 "  p99 %" PRIu64 "  max %" PRIu64 "\n",
            p50, p90, p99, b->lat.max);
    fprintf(out, "  retransmissions %" PRIu64 "\n", c->retransmissions);
    fprintf(out,
            "  errors        %" PRIu64 " (timeouts %" PRIu64 ", failed handshakes %" PRIu64
            ", non-2.xx %" PRIu64 ", other %" PRIu64 ")\n",
            errors_total(c), c->timeouts, c->handshake_failures, c->non_2xx, c->other_errors);
    if (b->n_shared)
      fprintf(out, "  sockets       %ld shared by %ld source addresses (127.1.0.0 on)\n",
              b->n_shared, b->started);
    fprintf(out, "  generator CPU %.2f s, peak RSS %ld kB\n", cpu, ru.ru_maxrss);
  }
  fflush(out);
}
