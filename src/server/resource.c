/* Resource registry: a hash map from normalised path to resource, plus a
 * list in registration order for /.well-known/core. */
#include <stdlib.h>
#include <string.h>

#include "common/invariant.h"
#include "server/server.h"

#define MAX_ATTRS 8
#define MAX_FORMATS 8

struct coap_resource {
  coap_resource_t *next, *hash_next;
  char *path; /* without leading or trailing '/' */
  struct {
    coap_handler_fn fn;
    void *user;
  } handlers[COAP_IPATCH + 1];
  coap_link_attr_t attrs[MAX_ATTRS];
  size_t n_attrs;
  int formats[MAX_FORMATS];
  size_t n_formats;
  int hidden;
  coap_server_t *server;
  coap_obs_res_t obs; /* Observe (observe.c) */
};

static uint64_t path_hash(const char *p, size_t len) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (size_t i = 0; i < len; i++) {
    h ^= (uint8_t)p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

static void normalise(const char *path, const char **start, size_t *len) {
  while (*path == '/') path++;
  size_t n = strlen(path);
  while (n > 0 && path[n - 1] == '/') n--;
  *start = path;
  *len = n;
}

static void *zalloc_default(size_t size) {
  return calloc(1, size);
}

int coap_server_init(coap_server_t *s, size_t max_payload, const coap_logger_t *log) {
  memset(s, 0, sizeof(*s));
  s->zalloc = zalloc_default;
  s->n_buckets = 64;
  s->buckets = calloc(s->n_buckets, sizeof(*s->buckets));
  s->max_payload = max_payload;
  s->log = log;
  return s->buckets ? 0 : COAP_E_NOMEM;
}

void coap_server_configure(coap_server_t *s, const coap_context_config_t *cfg,
                           coap_timer_heap_t *timers) {
  s->cfg = cfg;
  s->timers = timers;
}

static void resource_free(coap_resource_t *r) {
  for (size_t i = 0; i < r->n_attrs; i++) {
    free((char *)r->attrs[i].name);
    free((char *)r->attrs[i].value);
  }
  free(r->path);
  free(r);
}

void coap_server_free(coap_server_t *s) {
  coap_observe_free_all(s); /* before the resources its groups point to */
  coap_resource_t *r = s->first;
  while (r) {
    coap_resource_t *next = r->next;
    resource_free(r);
    r = next;
  }
  coap_b1_free_all(s);
  coap_qblock_free(s);
  free(s->buckets);
  memset(s, 0, sizeof(*s));
}

coap_resource_t *coap_server_lookup(const coap_server_t *s, const char *path, size_t len) {
  size_t b = (size_t)(path_hash(path, len) & (s->n_buckets - 1));
  for (coap_resource_t *r = s->buckets[b]; r; r = r->hash_next)
    if (strlen(r->path) == len && memcmp(r->path, path, len) == 0) return r;
  return NULL;
}

static size_t bucket_of(const coap_server_t *s, const char *path) {
  return (size_t)(path_hash(path, strlen(path)) & (s->n_buckets - 1));
}

static void link_bucket(coap_server_t *s, coap_resource_t *r) {
  size_t b = bucket_of(s, r->path);
  r->hash_next = s->buckets[b];
  s->buckets[b] = r;
}

static void grow(coap_server_t *s) {
  coap_resource_t **nb = calloc(s->n_buckets * 2, sizeof(*nb));
  if (!nb) return;
  free(s->buckets);
  s->buckets = nb;
  s->n_buckets *= 2;
  for (coap_resource_t *r = s->first; r; r = r->next) link_bucket(s, r);
}

/* ---- invariants (common/invariant.h) ---- */

/* The list in registration order: count long, |last| its end, each entry
 * a well-formed resource of |s|. */
static const char *list_broken(const coap_server_t *s) {
  size_t n = 0;
  const coap_resource_t *last = NULL;
  for (const coap_resource_t *r = s->first; r; r = r->next) {
    if (++n > s->count)
      return "resource registry: the list is longer than count (a removed resource still "
             "linked, or a loop)";
    if (r->server != s) return "resource registry: a resource of another server";
    size_t len = r->path ? strlen(r->path) : 0;
    if (!r->path || (len && (r->path[0] == '/' || r->path[len - 1] == '/')))
      return "resource registry: a path that is not normalised";
    if (r->n_attrs > MAX_ATTRS || r->n_formats > MAX_FORMATS)
      return "resource registry: more attributes or formats than there is room for";
    last = r;
  }
  if (n != s->count) return "resource registry: fewer resources in the list than count";
  if (last != s->last) return "resource registry: last is not the list's end";
  return NULL;
}

/* The hash: count entries, each in its path's bucket, no path twice (two
 * resources of one path: the second would never be found). */
static const char *buckets_broken(const coap_server_t *s) {
  if (!s->n_buckets || (s->n_buckets & (s->n_buckets - 1)))
    return "resource registry: n_buckets is not a power of two";
  size_t n = 0;
  for (size_t b = 0; b < s->n_buckets; b++)
    for (const coap_resource_t *r = s->buckets[b]; r; r = r->hash_next) {
      if (++n > s->count) return "resource registry: more resources in the buckets than count";
      if (bucket_of(s, r->path) != b) return "resource registry: a resource in the wrong bucket";
      for (const coap_resource_t *q = r->hash_next; q; q = q->hash_next)
        if (strcmp(q->path, r->path) == 0) return "resource registry: two resources of one path";
    }
  if (n != s->count) return "resource registry: fewer resources in the buckets than count";
  return NULL;
}

const char *coap_server_registry_broken(const coap_server_t *s) {
  const char *why = list_broken(s);
  return why ? why : buckets_broken(s);
}

/* After each change: the whole registry now and then (invariant.h). */
static void check_sampled(coap_server_t *s) {
  if (coap_invariant_walk_due(&s->check_ops, s->count + s->n_buckets))
    COAPS_INVARIANT_HOLDS(coap_server_registry_broken(s));
}

coap_resource_t *coap_server_resource_next(const coap_server_t *s, const coap_resource_t *r) {
  return r ? r->next : s->first;
}

int coap_server_resource_add(coap_server_t *s, const char *path, coap_resource_t **out) {
  *out = NULL;
  if (!path) return COAP_E_INVALID_ARG;
  const char *p;
  size_t len;
  normalise(path, &p, &len);
  if (coap_server_lookup(s, p, len)) return COAP_E_EXISTS;
  coap_resource_t *r = s->zalloc(sizeof(*r));
  if (!r || !(r->path = s->zalloc(len + 1))) {
    free(r);
    return COAP_E_NOMEM;
  }
  memcpy(r->path, p, len);
  r->server = s;
  if (s->count >= s->n_buckets) grow(s);
  link_bucket(s, r);
  if (s->last)
    s->last->next = r;
  else
    s->first = r;
  s->last = r;
  s->count++;
  *out = r;
  check_sampled(s);
  return 0;
}

coap_resource_t *coap_server_resource_find(const coap_server_t *s, const char *path) {
  const char *p;
  size_t len;
  if (!path) return NULL;
  normalise(path, &p, &len);
  return coap_server_lookup(s, p, len);
}

int coap_server_resource_remove(coap_server_t *s, coap_resource_t *res) {
  coap_resource_t **link = &s->first, *prev = NULL;
  while (*link && *link != res) {
    prev = *link;
    link = &(*link)->next;
  }
  if (!*link) return COAP_E_NOT_FOUND;
  if (s->obs.building) return COAP_E_STATE; /* from a handler building a notification */
  /* Its observers learn that it is gone (RFC 7641 §3.2: 4.04 ends it). */
  coap_observe_end_all(s, res, COAP_NOT_FOUND);
  *link = res->next;
  if (s->last == res) s->last = prev;
  coap_resource_t **h = &s->buckets[bucket_of(s, res->path)];
  while (*h != res) h = &(*h)->hash_next;
  *h = res->hash_next;
  s->count--;
  resource_free(res);
  check_sampled(s);
  return 0;
}

int coap_resource_set_handler(coap_resource_t *res, uint8_t method, coap_handler_fn fn,
                              void *user) {
  if (!res || method < COAP_GET || method > COAP_IPATCH) return COAP_E_INVALID_ARG;
  res->handlers[method].fn = fn;
  res->handlers[method].user = user;
  return 0;
}

/* Drop the attribute |name| if it is there. */
static void remove_attr(coap_resource_t *res, const char *name) {
  for (size_t i = 0; i < res->n_attrs; i++) {
    if (strcmp(res->attrs[i].name, name) != 0) continue;
    free((char *)res->attrs[i].name);
    free((char *)res->attrs[i].value);
    memmove(&res->attrs[i], &res->attrs[i + 1], (res->n_attrs - i - 1) * sizeof res->attrs[0]);
    res->n_attrs--;
    return;
  }
}

int coap_resource_set_observable(coap_resource_t *res, int observable) {
  if (!res) return COAP_E_INVALID_ARG;
  if (res->server->obs.building) return COAP_E_STATE; /* see coap_resource_remove */
  if (!observable) {
    /* A last answer from the GET handler, without Observe, ends each
     * observation (RFC 7641 §3.2). */
    coap_observe_end_all(res->server, res, 0);
    res->obs.observable = 0;
    remove_attr(res, "obs");
    return 0;
  }
  int rc = coap_resource_set_attr(res, "obs", NULL);
  if (rc < 0) return rc;
  res->obs.observable = 1;
  return 0;
}

int coap_resource_set_attr(coap_resource_t *res, const char *name, const char *value) {
  if (!res || !name || !*name) return COAP_E_INVALID_ARG;
  for (size_t i = 0; i < res->n_attrs; i++) {
    if (strcmp(res->attrs[i].name, name) != 0) continue;
    char *v = value ? strdup(value) : NULL;
    if (value && !v) return COAP_E_NOMEM;
    free((char *)res->attrs[i].value);
    res->attrs[i].value = v;
    return 0;
  }
  if (res->n_attrs == MAX_ATTRS) return COAP_E_LIMIT;
  char *n = strdup(name), *v = value ? strdup(value) : NULL;
  if (!n || (value && !v)) {
    free(n);
    free(v);
    return COAP_E_NOMEM;
  }
  res->attrs[res->n_attrs].name = n;
  res->attrs[res->n_attrs].value = v;
  res->n_attrs++;
  return 0;
}

int coap_resource_set_accepted_formats(coap_resource_t *res, const int *formats, size_t n) {
  if (!res || n > MAX_FORMATS || (n && !formats)) return COAP_E_INVALID_ARG;
  if (n) memcpy(res->formats, formats, n * sizeof(*formats));
  res->n_formats = n;
  return 0;
}

void coap_resource_set_hidden(coap_resource_t *res, int hidden) {
  if (res) res->hidden = hidden;
}

const char *coap_resource_path(const coap_resource_t *res) {
  return res ? res->path : NULL;
}

/* ---- used by dispatch and observe ---- */

coap_obs_res_t *coap_resource_obs(coap_resource_t *r) {
  return &r->obs;
}
coap_server_t *coap_resource_server(const coap_resource_t *r) {
  return r->server;
}

coap_handler_fn coap_resource_handler(const coap_resource_t *r, uint8_t method, void **user) {
  if (method < COAP_GET || method > COAP_IPATCH) return NULL;
  *user = r->handlers[method].user;
  return r->handlers[method].fn;
}

int coap_resource_accepts_format(const coap_resource_t *r, int format) {
  if (r->n_formats == 0) return 1;
  for (size_t i = 0; i < r->n_formats; i++)
    if (r->formats[i] == format) return 1;
  return 0;
}

/* Append every visible resource matching |query| as a link. */
int coap_server_write_links(const coap_server_t *s, const char *query, char *buf, size_t cap,
                            size_t *len) {
  for (const coap_resource_t *r = s->first; r; r = r->next) {
    if (r->hidden) continue;
    char href[512];
    size_t plen = strlen(r->path);
    if (plen + 2 > sizeof href) continue;
    href[0] = '/';
    memcpy(href + 1, r->path, plen + 1);
    if (!coap_link_matches(href, r->attrs, r->n_attrs, query)) continue;
    int rc = coap_link_append(buf, cap, len, href, r->attrs, r->n_attrs);
    if (rc < 0) return rc;
  }
  return 0;
}
