#include "peer/peer_table.h"

#include <stdlib.h>
#include <string.h>

#include "coaps/error.h"
#include "common/invariant.h"

#define INITIAL_BUCKETS 64

/* A keyed 64-bit mix (splitmix-style finaliser over the address words):
 * cheap, and the per-table seed keeps remote hosts from steering entries
 * into one bucket. */
static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

static uint64_t hash_key(uint64_t seed, const coap_endpoint_t *ep, const coap_address_t *a) {
  uint64_t h = mix(seed, (uint64_t)(uintptr_t)ep);
  if (a->addr.sa.sa_family == AF_INET) {
    h = mix(h, a->addr.sin.sin_addr.s_addr);
    return mix(h, a->addr.sin.sin_port);
  }
  uint64_t words[2];
  memcpy(words, &a->addr.sin6.sin6_addr, sizeof words);
  h = mix(h, words[0]);
  h = mix(h, words[1]);
  return mix(h, a->addr.sin6.sin6_port);
}

int coap_peer_table_init(coap_peer_table_t *t, uint64_t seed) {
  t->buckets = calloc(INITIAL_BUCKETS, sizeof(*t->buckets));
  if (!t->buckets) return COAP_E_NOMEM;
  t->n_buckets = INITIAL_BUCKETS;
  t->count = 0;
  t->seed = seed;
  t->oldest = t->newest = NULL;
  t->check_ops = 0;
  return 0;
}

void coap_peer_table_free(coap_peer_table_t *t) {
  free(t->buckets);
  t->buckets = NULL;
  t->n_buckets = t->count = 0;
  t->oldest = t->newest = NULL;
}

static size_t bucket_of(const coap_peer_table_t *t, const coap_endpoint_t *ep,
                        const coap_address_t *a) {
  return (size_t)(hash_key(t->seed, ep, a) & (t->n_buckets - 1));
}

coap_peer_t *coap_peer_table_find(const coap_peer_table_t *t, const coap_endpoint_t *ep,
                                  const coap_address_t *addr) {
  COAPS_INVARIANT(t->buckets && addr);
  for (coap_peer_t *p = t->buckets[bucket_of(t, ep, addr)]; p; p = p->hash_next)
    if (p->ep == ep && coap_address_equal(&p->addr, addr)) return p;
  return NULL;
}

static const char *buckets_broken(const coap_peer_table_t *t) {
  size_t seen = 0;
  for (size_t b = 0; b < t->n_buckets; b++)
    for (const coap_peer_t *p = t->buckets[b]; p; p = p->hash_next) {
      if (++seen > t->count) return "peer table: more entries in the buckets than count";
      if (bucket_of(t, p->ep, &p->addr) != b) return "peer table: an entry in the wrong bucket";
    }
  return seen == t->count ? NULL : "peer table: fewer entries in the buckets than count";
}

static const char *recency_broken(const coap_peer_table_t *t) {
  if (!t->oldest != !t->newest) return "peer recency list: only one end set";
  if (t->oldest && (t->oldest->older || t->newest->newer))
    return "peer recency list: an end has a neighbour beyond it";
  size_t n = 0;
  for (const coap_peer_t *p = t->oldest; p; p = p->newer) {
    if (++n > t->count)
      return "peer recency list: longer than count (a removed peer still linked, or a loop)";
    if (p->newer ? p->newer->older != p : t->newest != p)
      return "peer recency list: newer->older is not the entry";
    if (p->newer && p->newer->last_active < p->last_active)
      return "peer recency list: not oldest first";
    if (coap_peer_table_find(t, p->ep, &p->addr) != p)
      return "peer recency list: an entry that is not in the hash";
  }
  return n == t->count ? NULL : "peer recency list: shorter than count";
}

const char *coap_peer_table_broken(const coap_peer_table_t *t) {
  if (!t->buckets || !t->n_buckets || (t->n_buckets & (t->n_buckets - 1)))
    return "peer table: bucket count not a power of two";
  const char *why = buckets_broken(t);
  return why ? why : recency_broken(t);
}

/* Around each change: the whole table now and then (invariant.h). */
static void check_table(coap_peer_table_t *t) {
  if (coap_invariant_walk_due(&t->check_ops, t->count + t->n_buckets))
    COAPS_INVARIANT_HOLDS(coap_peer_table_broken(t));
}

/* Doubling keeps chains short; a failed grow leaves the table as it was
 * (only slower). */
static void grow(coap_peer_table_t *t) {
  size_t n = t->n_buckets * 2;
  coap_peer_t **nb = calloc(n, sizeof(*nb));
  if (!nb) return;
  coap_peer_t **old = t->buckets;
  size_t old_n = t->n_buckets;
  t->buckets = nb;
  t->n_buckets = n;
  for (size_t i = 0; i < old_n; i++) {
    coap_peer_t *p = old[i];
    while (p) {
      coap_peer_t *next = p->hash_next;
      size_t b = bucket_of(t, p->ep, &p->addr);
      p->hash_next = nb[b];
      nb[b] = p;
      p = next;
    }
  }
  free(old);
}

static void recency_link_newest(coap_peer_table_t *t, coap_peer_t *p) {
  p->older = t->newest;
  p->newer = NULL;
  if (t->newest)
    t->newest->newer = p;
  else
    t->oldest = p;
  t->newest = p;
}

static void recency_unlink(coap_peer_table_t *t, coap_peer_t *p) {
  if (p->older)
    p->older->newer = p->newer;
  else
    t->oldest = p->newer;
  if (p->newer)
    p->newer->older = p->older;
  else
    t->newest = p->older;
  p->older = p->newer = NULL;
}

coap_peer_t *coap_peer_table_add(coap_peer_table_t *t, coap_endpoint_t *ep,
                                 const coap_address_t *addr) {
  COAPS_INVARIANT(addr && !coap_peer_table_find(t, ep, addr));
  /* Before linking: the caller sets the newcomer's last_active after. */
  check_table(t);
  coap_peer_t *p = calloc(1, sizeof(*p));
  if (!p) return NULL;
  p->ep = ep;
  p->addr = *addr;
  if (t->count >= t->n_buckets) grow(t);
  size_t b = bucket_of(t, ep, addr);
  p->hash_next = t->buckets[b];
  t->buckets[b] = p;
  t->count++;
  recency_link_newest(t, p);
  return p;
}

void coap_peer_table_remove(coap_peer_table_t *t, coap_peer_t *p) {
  coap_peer_t **link = &t->buckets[bucket_of(t, p->ep, &p->addr)];
  while (*link && *link != p) link = &(*link)->hash_next;
  /* Not in its bucket: removed twice, or its key changed while linked;
   * freeing it would leave it in the recency list. */
  COAPS_INVARIANT(*link == p);
  if (*link) {
    *link = p->hash_next;
    t->count--;
    recency_unlink(t, p);
  }
  free(p);
  check_table(t);
}

void coap_peer_table_touch(coap_peer_table_t *t, coap_peer_t *p) {
  if (t->newest == p) return; /* the usual case under load: the same peer again */
  /* Linked: the ends of the list have no neighbour beyond them. */
  COAPS_INVARIANT(p->newer && (p->older || t->oldest == p));
  recency_unlink(t, p);
  recency_link_newest(t, p);
}

void coap_peer_set_local(coap_peer_t *p, const coap_address_t *local) {
  if (!local) return;
  const void *ip;
  size_t n;
  uint32_t scope = 0;
  if (local->addr.sa.sa_family == AF_INET) {
    ip = &local->addr.sin.sin_addr;
    n = 4;
  } else if (local->addr.sa.sa_family == AF_INET6) {
    ip = &local->addr.sin6.sin6_addr;
    n = 16;
    scope = local->addr.sin6.sin6_scope_id;
  } else {
    return;
  }
  /* Usually the same as last time: compare before writing. */
  if (p->local_family == local->addr.sa.sa_family && p->local_scope == scope &&
      memcmp(p->local_ip, ip, n) == 0)
    return;
  p->local_family = (uint8_t)local->addr.sa.sa_family;
  p->local_scope = scope;
  memcpy(p->local_ip, ip, n);
}

int coap_peer_get_local(const coap_peer_t *p, uint16_t port, coap_address_t *out) {
  if (p->local_family == AF_INET) {
    memset(&out->addr.sin, 0, sizeof out->addr.sin);
    out->addr.sin.sin_family = AF_INET;
    out->addr.sin.sin_port = htons(port);
    memcpy(&out->addr.sin.sin_addr, p->local_ip, 4);
    out->size = sizeof(struct sockaddr_in);
    return 1;
  }
  if (p->local_family == AF_INET6) {
    memset(&out->addr.sin6, 0, sizeof out->addr.sin6);
    out->addr.sin6.sin6_family = AF_INET6;
    out->addr.sin6.sin6_port = htons(port);
    memcpy(&out->addr.sin6.sin6_addr, p->local_ip, 16);
    out->addr.sin6.sin6_scope_id = p->local_scope;
    out->size = sizeof(struct sockaddr_in6);
    return 1;
  }
  return 0;
}

coap_peer_t *coap_peer_table_any(const coap_peer_table_t *t, size_t *cursor) {
  for (; *cursor < t->n_buckets; ++*cursor)
    if (t->buckets[*cursor]) return t->buckets[*cursor];
  return NULL;
}

int coap_peer_table_move(coap_peer_table_t *t, coap_peer_t *p, const coap_address_t *addr) {
  if (coap_peer_table_find(t, p->ep, addr)) return COAP_E_STATE;
  coap_peer_t **link = &t->buckets[bucket_of(t, p->ep, &p->addr)];
  while (*link && *link != p) link = &(*link)->hash_next;
  COAPS_INVARIANT(*link == p); /* |p| is an entry of |t| */
  if (!*link) return COAP_E_STATE;
  *link = p->hash_next;
  p->addr = *addr;
  size_t b = bucket_of(t, p->ep, addr);
  p->hash_next = t->buckets[b];
  t->buckets[b] = p;
  check_table(t);
  return 0;
}

int coap_peer_table_move_endpoint(coap_peer_table_t *t, coap_peer_t *p, coap_endpoint_t *ep) {
  if (coap_peer_table_find(t, ep, &p->addr)) return COAP_E_STATE;
  coap_peer_t **link = &t->buckets[bucket_of(t, p->ep, &p->addr)];
  while (*link && *link != p) link = &(*link)->hash_next;
  COAPS_INVARIANT(*link == p); /* |p| is an entry of |t| */
  if (!*link) return COAP_E_STATE;
  *link = p->hash_next;
  p->ep = ep;
  size_t b = bucket_of(t, ep, &p->addr);
  p->hash_next = t->buckets[b];
  t->buckets[b] = p;
  check_table(t);
  return 0;
}

/* ---- the CID map ---- */

#define CID_INITIAL_BUCKETS 64

static size_t cid_bucket(const coap_cid_map_t *m, const uint8_t *cid, size_t len) {
  uint64_t h = mix(m->seed, len);
  for (size_t i = 0; i < len; i += 8) {
    uint64_t w = 0;
    memcpy(&w, cid + i, len - i < 8 ? len - i : 8);
    h = mix(h, w);
  }
  return (size_t)(h & (m->n_buckets - 1));
}

static int cid_grow(coap_cid_map_t *m) {
  size_t n = m->n_buckets ? m->n_buckets * 2 : CID_INITIAL_BUCKETS;
  coap_cid_entry_t **nb = calloc(n, sizeof(*nb));
  if (!nb) return m->n_buckets ? 0 : COAP_E_NOMEM; /* a full table only gets slower */
  coap_cid_entry_t **old = m->buckets;
  size_t old_n = m->n_buckets;
  m->buckets = nb;
  m->n_buckets = n;
  for (size_t i = 0; i < old_n; i++)
    for (coap_cid_entry_t *e = old[i], *next; e; e = next) {
      next = e->next;
      size_t b = cid_bucket(m, e->cid, e->len);
      e->next = nb[b];
      nb[b] = e;
    }
  free(old);
  return 0;
}

const char *coap_cid_map_broken(const coap_cid_map_t *m) {
  if (!m->n_buckets) return m->buckets || m->count ? "CID map: entries without buckets" : NULL;
  if (!m->buckets || (m->n_buckets & (m->n_buckets - 1)))
    return "CID map: bucket count not a power of two";
  size_t seen = 0;
  for (size_t b = 0; b < m->n_buckets; b++)
    for (const coap_cid_entry_t *e = m->buckets[b]; e; e = e->next) {
      if (++seen > m->count) return "CID map: more entries than count";
      if (!e->peer || e->len > COAP_CID_KEY_MAX)
        return "CID map: an entry without a peer or too long";
      if (cid_bucket(m, e->cid, e->len) != b) return "CID map: an entry in the wrong bucket";
    }
  return seen == m->count ? NULL : "CID map: fewer entries than count";
}

static void check_cid_map(coap_cid_map_t *m) {
  if (coap_invariant_walk_due(&m->check_ops, m->count + m->n_buckets))
    COAPS_INVARIANT_HOLDS(coap_cid_map_broken(m));
}

coap_peer_t *coap_cid_map_find(const coap_cid_map_t *m, const uint8_t *cid, size_t len) {
  if (!m->n_buckets || len > COAP_CID_KEY_MAX) return NULL;
  for (coap_cid_entry_t *e = m->buckets[cid_bucket(m, cid, len)]; e; e = e->next)
    if (e->len == len && memcmp(e->cid, cid, len) == 0) return e->peer;
  return NULL;
}

int coap_cid_map_add(coap_cid_map_t *m, coap_cid_entry_t *e) {
  if (e->len > COAP_CID_KEY_MAX) return COAP_E_INVALID_ARG;
  if (coap_cid_map_find(m, e->cid, e->len)) return COAP_E_STATE;
  if (m->count >= m->n_buckets && cid_grow(m) < 0) return COAP_E_NOMEM;
  size_t b = cid_bucket(m, e->cid, e->len);
  e->next = m->buckets[b];
  m->buckets[b] = e;
  m->count++;
  check_cid_map(m);
  return 0;
}

void coap_cid_map_remove(coap_cid_map_t *m, coap_cid_entry_t *e) {
  if (!m->n_buckets) return;
  coap_cid_entry_t **link = &m->buckets[cid_bucket(m, e->cid, e->len)];
  while (*link && *link != e) link = &(*link)->next;
  if (!*link) return;
  *link = e->next;
  e->next = NULL;
  if (--m->count == 0) { /* nothing left to find: no array kept */
    free(m->buckets);
    m->buckets = NULL;
    m->n_buckets = 0;
  }
  check_cid_map(m);
}
