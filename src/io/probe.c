/* Probing a UDP port: what answers there, if anything? A CoAP ping and a
 * DTLS ClientHello go out at once, each from its own connected socket (so
 * an ICMP port-unreachable comes back as ECONNREFUSED); answers are told
 * apart by their first bytes. For `coaps doctor`, and anyone who wants to
 * tell a coap:// port from a coaps:// one without a handshake timeout. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "coaps/io.h"
#include "common/abi.h"
#include "security/security.h"

/* Once one probe is answered the port's protocol is known: give the other
 * only this much longer. */
#define GRACE_AFTER_ANSWER_MS 50

static uint64_t elapsed_ms(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (uint64_t)(t1.tv_sec - t0->tv_sec) * 1000u +
         (uint64_t)((t1.tv_nsec - t0->tv_nsec) / 1000000);
}

static void classify(const uint8_t *d, ssize_t n, coap_probe_result_t *out) {
  if (coap_dtls_looks_like_record(d, (size_t)n)) {
    out->answer = COAP_PROBE_DTLS;
    const char *what = d[0] == 21                           ? "a DTLS alert"
                       : n > 13 && d[0] == 22 && d[13] == 3 ? "a HelloVerifyRequest (cookie)"
                       : n > 13 && d[0] == 22 && d[13] == 2 ? "a ServerHello"
                                                            : "a DTLS record";
    snprintf(out->detail, sizeof out->detail, "%s", what);
  } else if (n >= 4 && (d[0] >> 6) == 1) {
    static const char *const types[] = {"CON", "NON", "ACK", "RST"};
    out->answer = COAP_PROBE_COAP;
    snprintf(out->detail, sizeof out->detail, "a CoAP %s", types[(d[0] >> 4) & 3]);
  } else {
    out->answer = COAP_PROBE_OTHER;
    snprintf(out->detail, sizeof out->detail, "%zd bytes that are neither CoAP nor DTLS", n);
  }
}

static int probe_bytes(coap_proto_t proto, uint8_t *buf, size_t cap) {
  if (proto == COAP_PROTO_DTLS) return coap_dtls_probe_hello(buf, cap);
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  const uint8_t ping[4] = {0x40, 0x00, (uint8_t)(now.tv_nsec >> 8), (uint8_t)now.tv_nsec};
  memcpy(buf, ping, sizeof ping);
  return sizeof ping;
}

/* A connected socket with the probe sent; -1 when sending failed (then
 * |out| says why). */
static int send_probe(const coap_address_t *addr, coap_proto_t proto, coap_probe_result_t *out) {
  uint8_t probe[512];
  int len = probe_bytes(proto, probe, sizeof probe);
  int fd = len > 0 ? socket(addr->addr.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0) : -1;
  if (fd < 0) {
    snprintf(out->detail, sizeof out->detail, "could not send the probe");
    return -1;
  }
  if (connect(fd, &addr->addr.sa, addr->size) < 0 || send(fd, probe, (size_t)len, 0) < 0) {
    if (errno == ECONNREFUSED) out->answer = COAP_PROBE_REFUSED;
    snprintf(out->detail, sizeof out->detail, "%s", strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

static void take_answer(int fd, coap_probe_result_t *out, uint64_t ms) {
  uint8_t buf[1500];
  ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n < 0 && errno == ECONNREFUSED) {
    out->answer = COAP_PROBE_REFUSED;
    snprintf(out->detail, sizeof out->detail, "ICMP port unreachable");
  } else if (n >= 0) {
    classify(buf, n, out);
  } else {
    return;
  }
  out->ms = (uint32_t)ms;
}

/* Both probes at once into the latest coap_probe_result_t. */
static void probe(const coap_address_t *addr, unsigned timeout_ms, coap_probe_result_t *dtls,
                  coap_probe_result_t *coap) {
  coap_probe_result_t *res[2] = {dtls, coap};
  const coap_proto_t proto[2] = {COAP_PROTO_DTLS, COAP_PROTO_UDP};
  struct pollfd p[2];
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int waiting = 0;
  for (int i = 0; i < 2; i++) {
    p[i] = (struct pollfd){.fd = -1, .events = POLLIN};
    if (!res[i]) continue;
    memset(res[i], 0, sizeof(*res[i]));
    p[i].fd = send_probe(addr, proto[i], res[i]);
    if (p[i].fd >= 0) waiting++;
  }
  uint64_t deadline = timeout_ms;
  while (waiting) {
    uint64_t spent = elapsed_ms(&t0);
    if (spent >= deadline) break;
    int r = poll(p, 2, (int)(deadline - spent));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    for (int i = 0; i < 2; i++) {
      if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLERR))) continue;
      take_answer(p[i].fd, res[i], elapsed_ms(&t0));
      if (res[i]->answer == COAP_PROBE_SILENT) continue;
      close(p[i].fd);
      p[i].fd = -1;
      waiting--;
      uint64_t grace = elapsed_ms(&t0) + GRACE_AFTER_ANSWER_MS;
      if (grace < deadline) deadline = grace;
    }
  }
  for (int i = 0; i < 2; i++) {
    if (p[i].fd < 0) continue;
    res[i]->ms = (uint32_t)elapsed_ms(&t0);
    close(p[i].fd);
  }
}

int coap_probe_port_versioned(const coap_address_t *addr, unsigned timeout_ms, int version,
                              coap_probe_result_t *dtls, coap_probe_result_t *coap) {
  const coap_abi_struct_t *abi = coap_abi_struct(COAP_ABI_PROBE_RESULT);
  if (!addr || (!dtls && !coap) || !coap_abi_len(abi, version, NULL, "coap_probe_port"))
    return COAP_E_INVALID_ARG;
  /* Filled in the latest layout, handed out in the caller's. */
  coap_probe_result_t latest[2];
  probe(addr, timeout_ms, dtls ? &latest[0] : NULL, coap ? &latest[1] : NULL);
  if (dtls) coap_abi_write(abi, version, &latest[0], dtls, NULL, "coap_probe_port");
  if (coap) coap_abi_write(abi, version, &latest[1], coap, NULL, "coap_probe_port");
  return 0;
}
