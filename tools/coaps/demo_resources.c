/* The demo resources of 'coaps serve': a simulated sensor, the time, a
 * store that accepts PUT/POST/DELETE, and an echo. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* Bodies up to the context's max_body: large ones come and go block-wise
 * (the library reassembles Block1 and cuts Block2). */
static struct {
  uint8_t *data;
  size_t len, cap;
  int format;
  int exists;
  uint64_t version; /* the ETag: a conditional PUT (If-Match) needs one */
} store;
/* `coaps serve --workers N` runs the handlers on N threads: one store. */
static pthread_mutex_t store_lock = PTHREAD_MUTEX_INITIALIZER;

/* The second /time and /temp show, once a tick has announced one
 * (demo_resources_tick): that second, not the wall clock's. 'coaps serve'
 * ticks a little after each second begins; an answer in between showing
 * the new second already was then notified again as new by the tick, and
 * a client registering in that gap saw the same second twice. Per thread,
 * like the contexts ('coaps serve' drives each from its own thread);
 * demo_resources_register starts it again. */
static _Thread_local time_t announced;

static time_t shown_second(void) {
  return announced ? announced : time(NULL);
}

/* A reading that drifts like a room sensor's, plus a little noise that
 * moves it from one second to the next (what an observer of /temp, told
 * every second, can see change). One value per second, the same for every
 * request within it, as a sensor sampled once a second would give. */
static double simulated_temperature(void) {
  double t = (double)shown_second();
  return 21.5 + 1.5 * sin(t / 60.0) + 0.2 * sin(t / 7.0) + 0.15 * sin(t * 2.3);
}

static void temp_get(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                     coap_response_t *resp, void *user) {
  char text[64];
  int n;
  int accept =
      (int)coap_msg_get_uint(coap_request_msg(req), COAP_OPTION_ACCEPT, COAP_FORMAT_TEXT_PLAIN);
  if (accept == COAP_FORMAT_JSON) {
    n = snprintf(text, sizeof text, "{\"temperature\":%.1f,\"unit\":\"C\"}",
                 simulated_temperature());
  } else if (accept == COAP_FORMAT_TEXT_PLAIN) {
    n = snprintf(text, sizeof text, "%.1f C", simulated_temperature());
  } else {
    coap_response_set_code(resp, COAP_NOT_ACCEPTABLE);
    coap_response_set_payload(resp, COAP_FORMAT_NONE, "text or json only", 17);
    return;
  }
  coap_response_set_payload(resp, accept, text, (size_t)n);
  coap_response_set_max_age(resp, 5);
}

static void time_get(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                     coap_response_t *resp, void *user) {
  int accept =
      (int)coap_msg_get_uint(coap_request_msg(req), COAP_OPTION_ACCEPT, COAP_FORMAT_TEXT_PLAIN);
  if (accept != COAP_FORMAT_TEXT_PLAIN) {
    coap_response_set_code(resp, COAP_NOT_ACCEPTABLE);
    coap_response_set_payload(resp, COAP_FORMAT_NONE, "text only", 9);
    return;
  }
  /* The text changes once a second: format it then, not per request
   * (per worker thread: workers share nothing). */
  static _Thread_local struct {
    time_t at;
    size_t len;
    char text[32];
  } shown;
  time_t now = shown_second();
  if (now != shown.at || !shown.len) {
    struct tm tm;
    gmtime_r(&now, &tm);
    shown.len = strftime(shown.text, sizeof shown.text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    shown.at = now;
  }
  coap_response_set_payload(resp, COAP_FORMAT_TEXT_PLAIN, shown.text, shown.len);
  coap_response_set_max_age(resp, 1);
}

/* A new version for every change; the first one differs from run to run,
 * so an ETag from a former run matches nothing. */
static void store_changed(void) {
  if (!store.version) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    store.version = (uint64_t)ts.tv_sec << 20 ^ (uint64_t)ts.tv_nsec;
  }
  store.version++;
}

static void store_get_locked(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                             coap_response_t *resp, void *user) {
  if (!store.exists) {
    coap_response_set_code(resp, COAP_NOT_FOUND);
    coap_response_set_payload(resp, COAP_FORMAT_NONE, "store is empty: PUT something", 29);
    return;
  }
  uint8_t tag[8];
  for (int i = 0; i < 8; i++) tag[i] = (uint8_t)(store.version >> (56 - 8 * i));
  coap_response_set_etag(resp, tag, sizeof tag);
  coap_response_set_payload(resp, store.format, store.data, store.len);
}

static int store_write(coap_context_t *ctx, const coap_request_t *req, coap_response_t *resp,
                       int append) {
  size_t len;
  const uint8_t *p = coap_request_payload(req, &len);
  size_t base = append && store.exists ? store.len : 0;
  size_t max = coap_context_max_body(ctx);
  if (base + len > max) {
    coap_response_set_code(resp, COAP_REQUEST_ENTITY_TOO_LARGE);
    coap_response_add_uint(resp, COAP_OPTION_SIZE1, (uint32_t)max);
    return -1;
  }
  if (base + len > store.cap) {
    size_t cap = store.cap ? store.cap : 1024;
    while (cap < base + len) cap *= 2;
    uint8_t *d = realloc(store.data, cap);
    if (!d) {
      coap_response_set_code(resp, COAP_SERVICE_UNAVAILABLE);
      return -1;
    }
    store.data = d;
    store.cap = cap;
  }
  /* An empty payload comes as NULL: memcpy must not see it, even for 0
   * bytes (an empty PUT is a valid way to make the store empty). */
  if (len) memcpy(store.data + base, p, len);
  store.len = base + len;
  store.format = coap_msg_content_format(coap_request_msg(req));
  store_changed();
  return 0;
}

static void store_put_locked(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                             coap_response_t *resp, void *user) {
  int created = !store.exists;
  if (store_write(ctx, req, resp, 0) < 0) return;
  store.exists = 1;
  coap_response_set_code(resp, created ? COAP_CREATED : COAP_CHANGED);
}

static void store_post_locked(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                              coap_response_t *resp, void *user) {
  int created = !store.exists;
  if (store_write(ctx, req, resp, 1) < 0) return;
  store.exists = 1;
  coap_response_set_code(resp, created ? COAP_CREATED : COAP_CHANGED);
}

static void store_delete_locked(coap_context_t *ctx, coap_resource_t *res,
                                const coap_request_t *req, coap_response_t *resp, void *user) {
  store.exists = 0;
  store.len = 0;
  store_changed();
  coap_response_set_code(resp, COAP_DELETED);
}

static void echo(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                 coap_response_t *resp, void *user) {
  size_t len;
  const uint8_t *p = coap_request_payload(req, &len);
  coap_response_set_code(resp, COAP_CONTENT);
  coap_response_set_payload(resp, coap_msg_content_format(coap_request_msg(req)), p, len);
}

static void store_get(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                      coap_response_t *resp, void *user) {
  pthread_mutex_lock(&store_lock);
  store_get_locked(ctx, res, req, resp, user);
  pthread_mutex_unlock(&store_lock);
}

static void store_put(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                      coap_response_t *resp, void *user) {
  pthread_mutex_lock(&store_lock);
  store_put_locked(ctx, res, req, resp, user);
  pthread_mutex_unlock(&store_lock);
}

static void store_post(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                       coap_response_t *resp, void *user) {
  pthread_mutex_lock(&store_lock);
  store_post_locked(ctx, res, req, resp, user);
  pthread_mutex_unlock(&store_lock);
}

static void store_delete(coap_context_t *ctx, coap_resource_t *res, const coap_request_t *req,
                         coap_response_t *resp, void *user) {
  pthread_mutex_lock(&store_lock);
  store_delete_locked(ctx, res, req, resp, user);
  pthread_mutex_unlock(&store_lock);
}

/* The observable resources (RFC 7641): 'coaps serve' notifies their
 * observers once a second (demo_resources_tick). */
const char *const demo_observable[DEMO_OBSERVABLE_COUNT] = {"temp", "time"};

/* A new second, if the wall clock shows another one than the last tick
 * announced: the resources change and their observers are told. A tick
 * that finds the same one (a clock that has not moved on yet) tells
 * nothing, so that a notification never shows an old state as new; a late
 * one skips a second rather than repeating one. A clock set back is a
 * change too: /time follows it rather than standing still until the clock
 * catches up. */
void demo_resources_tick(coap_context_t *ctx) {
  time_t now = time(NULL);
  if (announced && now == announced) return;
  announced = now;
  for (size_t i = 0; i < DEMO_OBSERVABLE_COUNT; i++) {
    coap_resource_t *r = coap_resource_find(ctx, demo_observable[i]);
    if (r) coap_resource_notify(r);
  }
}

void demo_resources_register(coap_context_t *ctx) {
  announced = 0; /* a new context: its first tick is news */
  coap_resource_t *r = coap_resource_add(ctx, "temp");
  coap_resource_set_handler(r, COAP_GET, temp_get, NULL);
  coap_resource_set_observable(r, 1);
  coap_resource_set_attr(r, "rt", "temperature-c");
  coap_resource_set_attr(r, "if", "sensor");
  coap_resource_set_attr(r, "ct", "0 50");
  coap_resource_set_attr(r, "title", "Simulated temperature");

  r = coap_resource_add(ctx, "time");
  coap_resource_set_handler(r, COAP_GET, time_get, NULL);
  coap_resource_set_observable(r, 1);
  coap_resource_set_attr(r, "rt", "time");
  coap_resource_set_attr(r, "ct", "0");

  r = coap_resource_add(ctx, "store");
  coap_resource_set_handler(r, COAP_GET, store_get, NULL);
  coap_resource_set_handler(r, COAP_PUT, store_put, NULL);
  coap_resource_set_handler(r, COAP_POST, store_post, NULL);
  coap_resource_set_handler(r, COAP_DELETE, store_delete, NULL);
  coap_resource_set_attr(r, "rt", "store");
  coap_resource_set_attr(r, "title", "PUT/POST/DELETE storage");

  r = coap_resource_add(ctx, "echo");
  coap_resource_set_handler(r, COAP_POST, echo, NULL);
  coap_resource_set_handler(r, COAP_PUT, echo, NULL);
  coap_resource_set_handler(r, COAP_FETCH, echo, NULL);
  coap_resource_set_attr(r, "rt", "echo");
}
