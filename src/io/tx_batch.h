/* Outgoing datagrams collected while a batch of received ones is handled,
 * then put on the wire together instead of one sendto() each:
 *
 *  - one sendmmsg() per run of datagrams for the same socket, so the system
 *    call and its per-call checks are paid once per batch;
 *  - within that, consecutive datagrams to the same destination of the same
 *    size (the last may be shorter) become one UDP GSO send (UDP_SEGMENT):
 *    the kernel routes and builds one buffer for all of them and cuts it
 *    into the separate datagrams at the end, so the receiver sees exactly
 *    what separate sends would have produced. A client with several
 *    requests in flight usually gets its answers this way. When the kernel
 *    refuses GSO the datagrams go out one by one (and GSO stays off if it is
 *    not supported at all).
 *
 * A datagram may carry its source address (the *_from calls: for a socket
 * bound to a wildcard address, the address the peer sent to) as an
 * IP_PKTINFO/IPV6_PKTINFO control message; a GSO group shares one source
 * as well as one destination. Datagrams without one carry no control
 * message at all (nothing changes for a socket bound to one address).
 *
 * Datagrams keep their order; each one's bytes, destination and source are
 * copied in, so the caller's buffers and peers may go away before the
 * flush. */
#ifndef COAPS_IO_TX_BATCH_H
#define COAPS_IO_TX_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h> /* struct in6_pktinfo: needs _GNU_SOURCE too */
#include <sys/socket.h> /* struct mmsghdr: needs _GNU_SOURCE before any system header */

#include "coaps/context.h"

#define COAP_TX_BATCH 64
_Static_assert(COAP_TX_BATCH <= 255, "group_first/group_count are bytes");
/* Larger datagrams bypass the queue (after a flush, to keep the order). */
#define COAP_TX_DATAGRAM_MAX 2048

typedef struct coap_tx_stats {
  uint64_t datagrams; /* handed to the kernel */
  uint64_t syscalls;  /* sendmmsg/sendto calls made */
  uint64_t gso_sends; /* messages that carried several datagrams (UDP GSO) */
  uint64_t dropped;   /* refused by the kernel (ENOBUFS, …): CoAP/DTLS retransmit */
} coap_tx_stats_t;

typedef struct coap_tx_batch {
  size_t len;
  int use_gso; /* cleared when the kernel does not support UDP_SEGMENT */
  int fd[COAP_TX_BATCH];
  coap_address_t to[COAP_TX_BATCH];
  struct iovec iov[COAP_TX_BATCH];
  struct mmsghdr msgs[COAP_TX_BATCH]; /* one per datagram */
  /* Each datagram's source (a PKTINFO control message), src_len[i] bytes
   * of it; 0: none, the kernel picks. */
  union {
    char space[CMSG_SPACE(sizeof(struct in6_pktinfo))];
    struct cmsghdr align;
  } src[COAP_TX_BATCH];
  uint8_t src_len[COAP_TX_BATCH];
  /* One per group of datagrams sent together, and the group's extent. */
  struct mmsghdr groups[COAP_TX_BATCH];
  uint8_t group_first[COAP_TX_BATCH], group_count[COAP_TX_BATCH];
  union { /* the source's control message, then UDP_SEGMENT */
    char space[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } control[COAP_TX_BATCH];
  uint8_t buf[COAP_TX_BATCH][COAP_TX_DATAGRAM_MAX];
  coap_tx_stats_t stats;
} coap_tx_batch_t;

void coap_tx_batch_init(coap_tx_batch_t *b);
/* Queue one datagram for |fd|; a full queue is flushed first, a datagram
 * larger than a slot is sent at once after a flush. Returns 0, or
 * COAP_E_LIMIT when it was sent at once and the kernel refused it. */
int coap_tx_batch_add(coap_tx_batch_t *b, int fd, const coap_address_t *to, const uint8_t *data,
                      size_t len);
/* The same with |local| (NULL: none) as the source address: IP_PKTINFO
 * for an AF_INET |local|, IPV6_PKTINFO for AF_INET6 (also v4-mapped, on a
 * dual-stack socket); its port is ignored. */
int coap_tx_batch_add_from(coap_tx_batch_t *b, int fd, const coap_address_t *local,
                           const coap_address_t *to, const uint8_t *data, size_t len);
/* Send everything queued. A datagram the kernel refuses is dropped and
 * counted. */
void coap_tx_batch_flush(coap_tx_batch_t *b);
/* Send one datagram now, bypassing the queue (which the caller has
 * flushed). Returns 0, COAP_E_LIMIT, COAP_E_SYSTEM or COAP_E_UNREACHABLE. */
int coap_tx_send_now(coap_tx_batch_t *b, int fd, const coap_address_t *to, const uint8_t *data,
                     size_t len);
/* The same from |local| (NULL: none), as coap_tx_batch_add_from. */
int coap_tx_send_now_from(coap_tx_batch_t *b, int fd, const coap_address_t *local,
                          const coap_address_t *to, const uint8_t *data, size_t len);

#endif
