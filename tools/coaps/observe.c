/* coaps get --observe (coaps observe): register, print each notification
 * as it comes, and on --count, --duration, SIGINT or SIGTERM deregister
 * with coap_observe_cancel() and wait for the server's answer (bounded)
 * before exiting, so the server does not keep notifying a client that is
 * gone until a CON notification goes unanswered. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "request.h"

/* How long the deregistration's answer is waited for: a lost GET with
 * Observe=1 is no reason to hang; the server then drops us at its next
 * CON notification, which we answer with RST once we are gone. */
#define DEREGISTER_WAIT_MS 2000

typedef struct observation {
  const request_args_t *a;
  unsigned printed; /* representations printed */
  int registered;   /* the first answer carried Observe */
  int ended;        /* the callback's last call came (observing 0) */
  int cancelling;   /* coap_observe_cancel() was called */
  int status;       /* of the last call */
  uint8_t code;
  char detail[640];
} observation_t;

static int count_reached(const observation_t *ob) {
  return ob->a->count && ob->printed >= ob->a->count;
}

/* The last call while we had not asked for it: the server ended the
 * observation, or it failed. */
static void ended_by_server(observation_t *ob, const coap_reply_t *r) {
  const request_args_t *a = ob->a;
  if (r->status < 0) return; /* explained by the caller, with the diagnosis */
  if (!count_reached(ob)) {
    if (COAP_CODE_CLASS(r->code) == 2 || a->json || a->verbose) {
      reply_print(a, r, PRINT_LINE);
    } else {
      cli_error("%s%s%.*s", coap_code_name(r->code), r->payload_len ? ": " : "",
                (int)r->payload_len, r->payload_len ? (const char *)r->payload : "");
    }
    ob->printed++;
  }
  if (COAP_CODE_CLASS(r->code) != 2) {
    if (ob->registered) /* else the error line above says it all */
      cli_error("the server ended the observation with %s", coap_code_name(r->code));
  } else if (!ob->registered)
    cli_error("the server did not register the observation: it answered without Observe");
  else
    cli_error("the server ended the observation: it answered without Observe");
}

static void on_notification(coap_context_t *ctx, const coap_reply_t *r, void *user) {
  (void)ctx;
  observation_t *ob = user;
  if (ob->ended) return;
  if (r->observing) {
    if (!ob->printed) ob->registered = 1;
    if (ob->cancelling || count_reached(ob)) return; /* late: not asked for */
    reply_print(ob->a, r, PRINT_LINE);
    ob->printed++;
    return;
  }
  ob->ended = 1;
  ob->status = r->status;
  ob->code = r->code;
  if (r->detail) snprintf(ob->detail, sizeof ob->detail, "%s", r->detail);
  if (!ob->cancelling) {
    ended_by_server(ob, r);
  } else if (ob->a->verbose) {
    if (r->status == 0)
      fprintf(stderr, "coaps: deregistered: the server answered %s\n", coap_code_name(r->code));
    else
      fprintf(stderr, "coaps: deregistered (%s)\n", coap_strerror(r->status));
  }
}

/* SIGINT and SIGTERM as a file descriptor, so that waiting for the
 * network and for a signal is one poll() without a race. Returns the fd
 * or -1 (the signals then stay as they were: Ctrl-C ends the tool at
 * once, without deregistering). */
static int signals_open(sigset_t *old) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  if (sigprocmask(SIG_BLOCK, &mask, old) < 0) return -1;
  int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) sigprocmask(SIG_SETMASK, old, NULL);
  return fd;
}

static void signals_close(int fd, const sigset_t *old) {
  if (fd < 0) return;
  close(fd);
  sigprocmask(SIG_SETMASK, old, NULL);
}

/* Wait up to |ms| (-1: no limit) for the network or a signal, then let the
 * context handle what came and its timers. Returns 1 when a signal came,
 * 0, or a negative error. */
static int wait_once(coap_context_t *ctx, int sigfd, int ms) {
  int next = coap_context_timeout_ms(ctx);
  if (next >= 0 && (ms < 0 || next < ms)) ms = next;
  struct pollfd p[2] = {{.fd = coap_context_fd(ctx), .events = POLLIN},
                        {.fd = sigfd, .events = POLLIN}};
  int n = poll(p, sigfd >= 0 ? 2 : 1, ms);
  if (n < 0 && errno != EINTR) return COAP_E_SYSTEM;
  int signalled = 0;
  if (n > 0 && sigfd >= 0 && (p[1].revents & POLLIN)) {
    struct signalfd_siginfo si;
    signalled = read(sigfd, &si, sizeof si) > 0;
  }
  int rc = coap_context_process(ctx, 0);
  return rc < 0 ? rc : signalled;
}

/* Milliseconds left until |deadline|, 0 once it has passed; -1 when
 * there is none (|deadline| 0). */
static int ms_left(uint64_t deadline) {
  if (!deadline) return -1;
  uint64_t now = coap_clock_now_ms();
  return now >= deadline ? 0 : (int)(deadline - now);
}

/* Until the observation ends, --count or --duration is reached, or a
 * signal comes. Returns 0 or a negative error. */
static int watch(coap_context_t *ctx, observation_t *ob, int sigfd) {
  const request_args_t *a = ob->a;
  uint64_t deadline = a->duration_ms ? coap_clock_now_ms() + a->duration_ms : 0;
  while (!ob->ended && !count_reached(ob)) {
    int left = ms_left(deadline);
    if (left == 0) {
      if (a->verbose) fprintf(stderr, "coaps: --duration reached\n");
      return 0;
    }
    int rc = wait_once(ctx, sigfd, left);
    if (rc < 0) return rc;
    if (rc == 1) {
      if (a->verbose) fprintf(stderr, "coaps: interrupted\n");
      return 0;
    }
  }
  if (!ob->ended && a->verbose) fprintf(stderr, "coaps: --count reached\n");
  return 0;
}

/* Deregister (GET with Observe=1) and wait a bounded time for the answer;
 * a second signal stops waiting. */
static void deregister(coap_context_t *ctx, observation_t *ob, coap_request_id_t id, int sigfd) {
  ob->cancelling = 1;
  if (coap_observe_cancel(ctx, id) < 0) {
    coap_cancel_request(ctx, id);
    ob->ended = 1;
    return;
  }
  uint64_t deadline = coap_clock_now_ms() + DEREGISTER_WAIT_MS;
  int left;
  while (!ob->ended && (left = ms_left(deadline)) > 0)
    if (wait_once(ctx, sigfd, left) != 0) break;
  if (ob->ended) return;
  if (ob->a->verbose)
    fprintf(stderr,
            "coaps: the deregistration was not answered within %d ms; leaving (the "
            "server's next notification gets an RST)\n",
            DEREGISTER_WAIT_MS);
  coap_cancel_request(ctx, id);
  ob->ended = 1;
}

static int exit_code(const request_args_t *a, coap_context_t *ctx, const observation_t *ob,
                     int rc) {
  if (rc < 0) return request_explain_failure(a, ctx, rc, ob->detail);
  if (!ob->cancelling) { /* the server ended it, or it failed */
    if (ob->status < 0) return request_explain_failure(a, ctx, ob->status, ob->detail);
    return request_exit_for_code(ob->code);
  }
  if (!ob->printed) { /* stopped before any answer came */
    cli_error("%s: no answer before the observation was stopped", a->uri);
    return EXIT_TIMEOUT;
  }
  return EXIT_2XX;
}

int observe_run(const request_args_t *a, coap_context_t *ctx, const coap_request_opts_t *o) {
  observation_t ob = {.a = a};
  coap_request_id_t id;
  sigset_t old;
  int sigfd = signals_open(&old);
  int rc = coap_send_request(ctx, o, on_notification, &ob, &id);
  if (rc < 0) {
    signals_close(sigfd, &old);
    return request_explain_failure(a, ctx, rc, coap_context_last_error(ctx));
  }
  rc = watch(ctx, &ob, sigfd);
  if (rc == 0 && !ob.ended) deregister(ctx, &ob, id, sigfd);
  if (!ob.ended) coap_cancel_request(ctx, id); /* |ob| goes with this frame */
  int status = exit_code(a, ctx, &ob, rc);
  signals_close(sigfd, &old);
  return status;
}
