/* Send batching for the I/O shell. See tx_batch.h. */
#define _GNU_SOURCE
#include "io/tx_batch.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>

#include "coaps/error.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
/* Kernels before 6.x accept at most 64 segments per GSO send. */
#define GSO_SEGMENTS_MAX 64
#define GSO_BYTES_MAX 60000

void coap_tx_batch_init(coap_tx_batch_t *b) {
  memset(&b->stats, 0, sizeof b->stats);
  b->len = 0;
  b->use_gso = 1;
  for (size_t i = 0; i < COAP_TX_BATCH; i++) {
    b->iov[i].iov_base = b->buf[i];
    struct msghdr *h = &b->msgs[i].msg_hdr;
    memset(h, 0, sizeof(*h));
    h->msg_name = &b->to[i].addr.st;
    h->msg_iov = &b->iov[i];
    h->msg_iovlen = 1;
  }
}

/* A pending ICMP error of an earlier datagram surfaces once on the next
 * send (the error queue reports it properly); EINTR is harmless too. Both
 * deserve one more attempt of the same datagram. */
static int worth_retrying(int err) {
  return err == ECONNREFUSED || err == EHOSTUNREACH || err == EINTR;
}

/* Write |local| as the source address control message into |space| (room
 * for CMSG_SPACE(sizeof(struct in6_pktinfo))). Returns its length, 0 for
 * no |local|. Padding is zeroed, so equal sources compare equal. */
static size_t build_src(void *space, const coap_address_t *local) {
  if (!local) return 0;
  struct cmsghdr *c = space;
  if (local->addr.sa.sa_family == AF_INET) {
    struct in_pktinfo pi;
    memset(&pi, 0, sizeof pi);
    pi.ipi_spec_dst = local->addr.sin.sin_addr; /* the source; the route
                                                   picks the interface */
    memset(space, 0, CMSG_SPACE(sizeof pi));
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof pi);
    memcpy(CMSG_DATA(c), &pi, sizeof pi);
    return CMSG_SPACE(sizeof pi);
  }
  if (local->addr.sa.sa_family == AF_INET6) {
    struct in6_pktinfo pi;
    memset(&pi, 0, sizeof pi);
    pi.ipi6_addr = local->addr.sin6.sin6_addr;
    pi.ipi6_ifindex = local->addr.sin6.sin6_scope_id; /* link-local only */
    memset(space, 0, CMSG_SPACE(sizeof pi));
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof pi);
    memcpy(CMSG_DATA(c), &pi, sizeof pi);
    return CMSG_SPACE(sizeof pi);
  }
  return 0;
}

int coap_tx_send_now(coap_tx_batch_t *b, int fd, const coap_address_t *to, const uint8_t *data,
                     size_t len) {
  return coap_tx_send_now_from(b, fd, NULL, to, data, len);
}

int coap_tx_send_now_from(coap_tx_batch_t *b, int fd, const coap_address_t *local,
                          const coap_address_t *to, const uint8_t *data, size_t len) {
  union {
    char space[CMSG_SPACE(sizeof(struct in6_pktinfo))];
    struct cmsghdr align;
  } control;
  size_t control_len = build_src(control.space, local);
  struct iovec iov = {(void *)data, len};
  struct msghdr h = {.msg_name = (void *)&to->addr.st,
                     .msg_namelen = to->size,
                     .msg_iov = &iov,
                     .msg_iovlen = 1,
                     .msg_control = control_len ? control.space : NULL,
                     .msg_controllen = control_len};
  for (int attempt = 0; attempt < 2; attempt++) {
    b->stats.syscalls++;
    ssize_t n = control_len ? sendmsg(fd, &h, 0) : sendto(fd, data, len, 0, &to->addr.sa, to->size);
    if (n >= 0) {
      b->stats.datagrams++;
      return 0;
    }
    if (worth_retrying(errno)) continue;
    b->stats.dropped++;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS ? COAP_E_LIMIT
                                                                       : COAP_E_SYSTEM;
  }
  b->stats.dropped++;
  return COAP_E_UNREACHABLE;
}

/* msgs[first .. first+count) all go through |fd|, one datagram each. */
static void send_separately(coap_tx_batch_t *b, int fd, size_t first, size_t count) {
  size_t done = 0;
  int retried = 0;
  while (done < count) {
    b->stats.syscalls++;
    int n = sendmmsg(fd, &b->msgs[first + done], (unsigned)(count - done), 0);
    if (n > 0) {
      done += (size_t)n;
      b->stats.datagrams += (uint64_t)n;
      retried = 0;
      continue;
    }
    if (!retried && worth_retrying(errno)) {
      retried = 1;
      continue;
    }
    /* The first datagram left is refused: drop it, the rest may pass. */
    b->stats.dropped++;
    done++;
    retried = 0;
  }
}

static int same_source(const coap_tx_batch_t *b, size_t i, size_t j) {
  return b->src_len[i] == b->src_len[j] &&
         (!b->src_len[i] || memcmp(b->src[i].space, b->src[j].space, b->src_len[i]) == 0);
}

/* Where the group of datagrams that can share one GSO send starting at
 * |first| ends (exclusive, at most |end|): same destination and source,
 * each as long as the first except a shorter last one. */
static size_t gso_group_end(const coap_tx_batch_t *b, size_t first, size_t end) {
  size_t seg = b->iov[first].iov_len, total = seg, j = first + 1;
  if (!b->use_gso) return j;
  while (j < end && j - first < GSO_SEGMENTS_MAX && b->iov[j].iov_len <= seg &&
         total + b->iov[j].iov_len <= GSO_BYTES_MAX &&
         coap_address_equal(&b->to[j], &b->to[first]) && same_source(b, j, first)) {
    total += b->iov[j].iov_len;
    if (b->iov[j++].iov_len < seg) break; /* only the last may be shorter */
  }
  return j;
}

/* groups[g] describes datagrams [first, first+count): one message whose
 * iovecs are the datagrams, cut apart by the kernel at the first one's
 * length; their common source control message comes first. */
static void make_group(coap_tx_batch_t *b, size_t g, size_t first, size_t count) {
  struct msghdr *h = &b->groups[g].msg_hdr;
  *h = b->msgs[first].msg_hdr;
  h->msg_iovlen = count;
  b->group_first[g] = (uint8_t)first;
  b->group_count[g] = (uint8_t)count;
  if (count == 1) return; /* msgs[first]'s own control: the source or none */
  size_t src_len = b->src_len[first];
  if (src_len) memcpy(b->control[g].space, b->src[first].space, src_len);
  h->msg_control = b->control[g].space;
  h->msg_controllen = src_len + CMSG_SPACE(sizeof(uint16_t));
  struct cmsghdr *c = (struct cmsghdr *)(void *)(b->control[g].space + src_len);
  c->cmsg_level = SOL_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t seg = (uint16_t)b->iov[first].iov_len;
  memcpy(CMSG_DATA(c), &seg, sizeof seg);
}

/* EINVAL, EMSGSIZE: this group is too large for the route's MTU or the
 * kernel's limits; the others: no GSO here at all. Either way the
 * datagrams can still go out one by one. */
static int gso_refused(int err) {
  return err == EINVAL || err == EMSGSIZE || err == EIO || err == ENOPROTOOPT || err == EOPNOTSUPP;
}

/* A group the kernel refused: send its datagrams separately, or drop it. */
static void group_failed(coap_tx_batch_t *b, int fd, size_t g, int err) {
  size_t first = b->group_first[g], count = b->group_count[g];
  if (count > 1 && gso_refused(err)) {
    if (err != EINVAL && err != EMSGSIZE) b->use_gso = 0;
    send_separately(b, fd, first, count);
    return;
  }
  b->stats.dropped += count;
}

static void send_groups(coap_tx_batch_t *b, int fd, size_t n_groups) {
  size_t done = 0;
  int retried = 0;
  while (done < n_groups) {
    b->stats.syscalls++;
    int n = sendmmsg(fd, &b->groups[done], (unsigned)(n_groups - done), 0);
    if (n > 0) {
      for (size_t g = done; g < done + (size_t)n; g++) {
        b->stats.datagrams += b->group_count[g];
        if (b->group_count[g] > 1) b->stats.gso_sends++;
      }
      done += (size_t)n;
      retried = 0;
      continue;
    }
    int err = errno;
    if (!retried && worth_retrying(err)) {
      retried = 1;
      continue;
    }
    group_failed(b, fd, done++, err);
    retried = 0;
  }
}

/* Datagrams [start, end) all go through the same socket. */
static void flush_run(coap_tx_batch_t *b, size_t start, size_t end) {
  size_t n_groups = 0;
  for (size_t i = start; i < end;) {
    size_t j = gso_group_end(b, i, end);
    make_group(b, n_groups++, i, j - i);
    i = j;
  }
  send_groups(b, b->fd[start], n_groups);
}

void coap_tx_batch_flush(coap_tx_batch_t *b) {
  size_t start = 0;
  while (start < b->len) {
    size_t end = start + 1;
    while (end < b->len && b->fd[end] == b->fd[start]) end++;
    flush_run(b, start, end);
    start = end;
  }
  b->len = 0;
}

int coap_tx_batch_add(coap_tx_batch_t *b, int fd, const coap_address_t *to, const uint8_t *data,
                      size_t len) {
  return coap_tx_batch_add_from(b, fd, NULL, to, data, len);
}

int coap_tx_batch_add_from(coap_tx_batch_t *b, int fd, const coap_address_t *local,
                           const coap_address_t *to, const uint8_t *data, size_t len) {
  if (len > COAP_TX_DATAGRAM_MAX) {
    coap_tx_batch_flush(b);
    return coap_tx_send_now_from(b, fd, local, to, data, len);
  }
  if (b->len == COAP_TX_BATCH) coap_tx_batch_flush(b);
  size_t i = b->len++;
  b->fd[i] = fd;
  b->to[i] = *to;
  memcpy(b->buf[i], data, len);
  b->iov[i].iov_len = len;
  struct msghdr *h = &b->msgs[i].msg_hdr;
  h->msg_namelen = to->size;
  size_t src_len = build_src(b->src[i].space, local);
  b->src_len[i] = (uint8_t)src_len;
  h->msg_control = src_len ? b->src[i].space : NULL;
  h->msg_controllen = src_len;
  return 0;
}
