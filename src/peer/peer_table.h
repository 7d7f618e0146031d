/* The peer table: one entry per (local endpoint, remote address), found by
 * hashing so per-packet cost does not grow with the number of peers. An
 * entry holds the peer's message-layer state and, for coaps://, its DTLS
 * session. The hash is keyed with a random seed so remote addresses cannot
 * be chosen to collide. */
#ifndef COAPS_PEER_TABLE_H
#define COAPS_PEER_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "coaps/context.h"
#include "common/timer.h"
#include "exchange/exchange.h"

typedef struct coap_peer {
  struct coap_peer *hash_next;
  /* Recency order, oldest first: which peer has been silent longest, in
   * O(1), when the table is full and a newcomer needs room. */
  struct coap_peer *older, *newer;
  coap_endpoint_t *ep;
  coap_address_t addr;
  coap_exch_peer_t exch;
  void *security;          /* the peer's DTLS session, NULL for coap:// */
  coap_timer_t idle_timer; /* fires to check whether the peer can go */
  uint64_t last_active;
  uint64_t first_tx;      /* first datagram sent to a peer not heard yet */
  unsigned rx;            /* datagrams received from it (saturating) */
  unsigned tx_unanswered; /* coap:// sends since it last spoke */
  /* coap://: the first ICMP port-unreachable since it last spoke, 0: none
   * (a server restarting: coap_context_input_unreachable). */
  uint64_t unreachable_since;
  /* The local address its datagrams arrive at, when the transport said
   * (a wildcard-bound socket): replies leave from it. Kept compact (no
   * coap_address_t): family 0 means none; the port is the endpoint's. */
  uint32_t local_scope; /* IPv6 scope (interface) id */
  uint8_t local_ip[16]; /* 4 bytes for AF_INET */
  uint8_t local_family; /* 0, AF_INET or AF_INET6 */
  uint8_t probed;       /* the other protocol was probed for */
  uint8_t asked;        /* we sent it requests: a server of ours */
  char name[56];        /* "[addr:port]" for log lines */
} coap_peer_t;

typedef struct coap_peer_table {
  coap_peer_t **buckets;
  size_t n_buckets; /* power of two */
  size_t count;
  uint64_t seed;
  coap_peer_t *oldest, *newest; /* the recency list */
  unsigned check_ops;           /* changes since the last invariant walk */
} coap_peer_table_t;

/* Returns 0 or COAP_E_NOMEM. */
int coap_peer_table_init(coap_peer_table_t *t, uint64_t seed);
/* Frees the bucket array only; the caller frees entries first
 * (coap_peer_table_first / remove). */
void coap_peer_table_free(coap_peer_table_t *t);

coap_peer_t *coap_peer_table_find(const coap_peer_table_t *t, const coap_endpoint_t *ep,
                                  const coap_address_t *addr);
/* Allocate a zeroed entry for (ep, addr) and link it, as the newest. Grows
 * the table when the load passes 1. Returns NULL when out of memory. */
coap_peer_t *coap_peer_table_add(coap_peer_table_t *t, coap_endpoint_t *ep,
                                 const coap_address_t *addr);
/* Unlink and free |p| (the caller has cleared its state). */
void coap_peer_table_remove(coap_peer_table_t *t, coap_peer_t *p);
/* |p| was just heard from: it becomes the newest. O(1). */
void coap_peer_table_touch(coap_peer_table_t *t, coap_peer_t *p);
/* The entry touched (or added) least recently, or NULL; coap_peer_newer
 * walks on towards the newest. */
static inline coap_peer_t *coap_peer_table_oldest(const coap_peer_table_t *t) {
  return t->oldest;
}
static inline coap_peer_t *coap_peer_newer(const coap_peer_t *p) {
  return p->newer;
}
/* Remember |local| (an IPv4 or IPv6 address; the port is ignored) as the
 * address |p|'s datagrams arrive at. NULL or another family: no change. */
void coap_peer_set_local(coap_peer_t *p, const coap_address_t *local);
/* The address remembered by coap_peer_set_local, with the port |port|, in
 * |out|. Returns 1, or 0 when there is none (|out| untouched). */
int coap_peer_get_local(const coap_peer_t *p, uint16_t port, coap_address_t *out);
/* For tear-down: an entry in bucket *cursor or a later one (the cursor
 * moves to it), or NULL when there is none. Start at 0 and remove each
 * entry returned: the walk over all buckets is done once, not once per
 * entry. */
coap_peer_t *coap_peer_table_any(const coap_peer_table_t *t, size_t *cursor);
/* NULL when the table is sound, else which invariant is broken: count is
 * the number of entries in the buckets, each in the bucket its key hashes
 * to; the recency list is doubly linked from oldest to newest, holds
 * exactly the entries of the buckets (no removed peer still linked) and
 * is in last_active order. O(n); common/invariant.h says when it runs. */
const char *coap_peer_table_broken(const coap_peer_table_t *t);

/* Move |p| to |addr| (a DTLS peer that authenticated from there: RFC 9146
 * §6): rehashed in O(1). Returns 0, or COAP_E_STATE when another entry
 * of its endpoint holds |addr| (nothing changes). */
int coap_peer_table_move(coap_peer_table_t *t, coap_peer_t *p, const coap_address_t *addr);
/* The same for a move to another local endpoint |ep| (a client's fresh
 * source port). */
int coap_peer_table_move_endpoint(coap_peer_table_t *t, coap_peer_t *p, coap_endpoint_t *ep);

/* ---- Connection IDs (RFC 9146): the server's CIDs to their peers ----
 * A keyed hash of the CID bytes (the server chose them, mostly random;
 * the seed keeps them from being steered into one bucket anyway). The
 * entries live in their owners (intrusive): adding allocates nothing but
 * the bucket array, freed when the last entry goes. */
#define COAP_CID_KEY_MAX 32

typedef struct coap_cid_entry {
  struct coap_cid_entry *next;
  coap_peer_t *peer;
  uint8_t len;
  uint8_t cid[COAP_CID_KEY_MAX];
} coap_cid_entry_t;

typedef struct coap_cid_map {
  coap_cid_entry_t **buckets;
  size_t n_buckets, count; /* n_buckets: a power of two, or 0 */
  uint64_t seed;
  unsigned check_ops; /* changes since the last invariant walk */
} coap_cid_map_t;

/* Link |e| (its peer, len and cid filled in). Returns 0, COAP_E_NOMEM, or
 * COAP_E_STATE when the CID is taken (|e| stays unlinked). */
int coap_cid_map_add(coap_cid_map_t *m, coap_cid_entry_t *e);
coap_peer_t *coap_cid_map_find(const coap_cid_map_t *m, const uint8_t *cid, size_t len);
/* Unlink |e| if it is linked (a no-op otherwise). */
void coap_cid_map_remove(coap_cid_map_t *m, coap_cid_entry_t *e);
/* NULL when the map is sound, else which invariant is broken: no bucket
 * array exactly when it is empty, else a power of two of them; count is
 * the number of entries, each with a peer, a CID of at most
 * COAP_CID_KEY_MAX bytes, in the bucket its CID hashes to. */
const char *coap_cid_map_broken(const coap_cid_map_t *m);

#endif
