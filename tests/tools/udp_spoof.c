/* An off-path attacker on loopback for the shell tests: sends a UDP datagram
 * whose source address and port are forged (a raw IPv4 socket with the IP
 * header written here), e.g. a ClientHello "from" an established client.
 * Needs CAP_NET_RAW: root, or root of a namespace made by `unshare -rn`.
 *
 * usage: udp_spoof send SRC_IP SRC_PORT DST_IP DST_PORT (--hello | --file F) [--count N]
 *          --hello: a cookieless epoch-0 DTLS 1.2 ClientHello offering the
 *                   PSK and ECDHE-ECDSA CCM_8 suites, with a fresh random
 *          --file F: the datagram's payload is the contents of F
 *        udp_spoof capture FILE
 *          binds 127.0.0.1 on a free port, prints the port, writes the
 *          first datagram it receives to FILE (gives up after 30 s), so a
 *          test can send a real client's first ClientHello */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

static void put16(uint8_t *p, unsigned v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static void put24(uint8_t *p, unsigned v) {
  p[0] = (uint8_t)(v >> 16);
  put16(p + 1, v);
}

/* A minimal DTLS 1.2 ClientHello as a client's first datagram: record
 * epoch 0 sequence 0, handshake message_seq 0, no session id, no cookie.
 * Returns its length. */
static size_t client_hello(uint8_t *out) {
  static const uint16_t suites[] = {0xC0A8 /* TLS_PSK_WITH_AES_128_CCM_8 */,
                                    0xC0A4 /* TLS_PSK_WITH_AES_128_CCM */,
                                    0xC0AE /* TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 */,
                                    0x00FF /* TLS_EMPTY_RENEGOTIATION_INFO_SCSV */};
  static const uint8_t extensions[] = {
      0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17, /* supported_groups: secp256r1 */
      0x00, 0x0b, 0x00, 0x02, 0x01, 0x00,             /* ec_point_formats: uncompressed */
      0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03, /* signature_algorithms: ecdsa_sha256 */
      0x00, 0x17, 0x00, 0x00,                         /* extended_master_secret */
      0x00, 0x15, 0x00, 0x45,                         /* padding: 69 zero bytes below */
  };
  /* The padding makes it 170 bytes, the size of a real client's first
   * flight: a server that bounds its answer by what it received (against
   * amplification) then answers it as it would a real one. */
  enum { PADDING = 0x45 };
  uint8_t body[512];
  size_t n = 0;
  body[n++] = 254; /* DTLS 1.2 */
  body[n++] = 253;
  if (getrandom(body + n, 32, 0) != 32) memset(body + n, 0x5a, 32);
  n += 32;
  body[n++] = 0; /* session_id */
  body[n++] = 0; /* cookie */
  put16(body + n, (unsigned)sizeof suites);
  n += 2;
  for (size_t i = 0; i < sizeof suites / sizeof *suites; i++, n += 2) put16(body + n, suites[i]);
  body[n++] = 1; /* compression: null only */
  body[n++] = 0;
  put16(body + n, (unsigned)(sizeof extensions + PADDING));
  n += 2;
  memcpy(body + n, extensions, sizeof extensions);
  n += sizeof extensions;
  memset(body + n, 0, PADDING);
  n += PADDING;

  size_t hs = 12 + n, rec = 13 + hs;
  out[0] = 22; /* handshake */
  out[1] = 254;
  out[2] = 253;
  memset(out + 3, 0, 8); /* epoch 0, sequence number 0 */
  put16(out + 11, (unsigned)hs);
  out[13] = 1; /* client_hello */
  put24(out + 14, (unsigned)n);
  put16(out + 17, 0);           /* message_seq */
  put24(out + 19, 0);           /* fragment_offset */
  put24(out + 22, (unsigned)n); /* fragment_length */
  memcpy(out + 25, body, n);
  return rec;
}

static uint32_t sum16(const void *data, size_t len, uint32_t acc) {
  const uint8_t *p = data;
  for (size_t i = 0; i + 1 < len; i += 2) acc += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (len & 1) acc += (uint32_t)p[len - 1] << 8;
  return acc;
}
static uint16_t fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return (uint16_t)~acc;
}

static int parse_port(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  return *end || v <= 0 || v > 65535 ? -1 : (int)v;
}

static int do_send(int argc, char **argv) {
  if (argc < 7) return 64;
  struct in_addr src, dst;
  int sport = parse_port(argv[3]), dport = parse_port(argv[5]);
  if (inet_pton(AF_INET, argv[2], &src) != 1 || inet_pton(AF_INET, argv[4], &dst) != 1 ||
      sport < 0 || dport < 0)
    return 64;
  static uint8_t payload[65000];
  size_t plen = 0;
  long count = 1;
  int have = 0;
  for (int i = 6; i < argc; i++) {
    if (!strcmp(argv[i], "--hello")) {
      plen = client_hello(payload);
      have = 1;
    } else if (!strcmp(argv[i], "--file") && i + 1 < argc) {
      FILE *f = fopen(argv[++i], "rb");
      if (!f) {
        perror(argv[i]);
        return 1;
      }
      plen = fread(payload, 1, sizeof payload, f);
      fclose(f);
      have = 1;
    } else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
      count = strtol(argv[++i], NULL, 10);
    } else {
      return 64;
    }
  }
  if (!have || count < 1) return 64;

  /* IPPROTO_RAW implies IP_HDRINCL: the source below goes out as written. */
  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (fd < 0) {
    perror("udp_spoof: raw socket (needs CAP_NET_RAW: root, or inside unshare -rn)");
    return 77;
  }
  static uint8_t pkt[sizeof(struct iphdr) + sizeof(struct udphdr) + sizeof payload];
  struct iphdr *ip = (struct iphdr *)pkt;
  struct udphdr *udp = (struct udphdr *)(pkt + sizeof *ip);
  size_t ulen = sizeof *udp + plen, total = sizeof *ip + ulen;
  memset(pkt, 0, sizeof *ip + sizeof *udp);
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = 64;
  ip->protocol = IPPROTO_UDP;
  ip->tot_len = htons((uint16_t)total);
  ip->saddr = src.s_addr;
  ip->daddr = dst.s_addr;
  udp->source = htons((uint16_t)sport);
  udp->dest = htons((uint16_t)dport);
  udp->len = htons((uint16_t)ulen);
  memcpy(pkt + sizeof *ip + sizeof *udp, payload, plen);
  struct {
    uint32_t s, d;
    uint8_t zero, proto;
    uint16_t len;
  } pseudo = {ip->saddr, ip->daddr, 0, IPPROTO_UDP, udp->len};
  uint16_t c = fold(sum16(udp, ulen, sum16(&pseudo, 12, 0)));
  udp->check = htons(c ? c : 0xffff);
  ip->check = htons(fold(sum16(ip, sizeof *ip, 0)));

  struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = dst};
  for (long i = 0; i < count; i++) {
    if (sendto(fd, pkt, total, 0, (struct sockaddr *)&to, sizeof to) != (ssize_t)total) {
      perror("udp_spoof: sendto");
      return 1;
    }
  }
  fprintf(stderr, "udp_spoof: sent %ld datagram(s) of %zu bytes from %s:%d to %s:%d\n", count, plen,
          argv[2], sport, argv[4], dport);
  close(fd);
  return 0;
}

static int do_capture(const char *path) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct timeval tv = {.tv_sec = 30};
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) {
    perror("udp_spoof capture");
    return 1;
  }
  printf("%u\n", ntohs(a.sin_port));
  fflush(stdout);
  static uint8_t buf[65536];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  if (n < 0) {
    perror("udp_spoof capture: nothing received");
    return 1;
  }
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(buf, 1, (size_t)n, f) != (size_t)n || fclose(f) != 0) {
    perror(path);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  int rc = 64;
  if (argc >= 2 && !strcmp(argv[1], "send"))
    rc = do_send(argc, argv);
  else if (argc == 3 && !strcmp(argv[1], "capture"))
    rc = do_capture(argv[2]);
  if (rc == 64)
    fprintf(stderr,
            "usage: udp_spoof send SRC_IP SRC_PORT DST_IP DST_PORT (--hello | --file F)"
            " [--count N]\n       udp_spoof capture FILE\n");
  return rc;
}
