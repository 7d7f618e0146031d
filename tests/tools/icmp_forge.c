/* ICMP errors made by hand for the shell tests (tests/interop/
 * icmp_vetting.sh): an off-path attacker who knows a client's address and
 * its server's forges a port unreachable for them; an on-path one (or the
 * real server's host) quotes the datagram the client sent.
 *
 * usage: icmp_forge sink FILE
 *          binds 127.0.0.1 on a free port and prints it; the first
 *          datagram it receives goes to FILE and its sender's port to
 *          FILE.port; swallows everything (a server that never answers and
 *          never lets its kernel answer with ICMP either) for 60 s
 *        icmp_forge send CLIENT_IP CLIENT_PORT SERVER_IP SERVER_PORT QUOTE
 *          an ICMP destination unreachable, port unreachable, to CLIENT_IP
 *          quoting a datagram CLIENT -> SERVER whose UDP payload starts
 *          with the bytes of the file QUOTE (64 at most: what Linux's
 *          error queue hands a program is what the error quotes). Needs
 *          CAP_NET_RAW. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint16_t checksum(const void *data, size_t len) {
  const uint8_t *p = data;
  uint32_t acc = 0;
  for (size_t i = 0; i + 1 < len; i += 2) acc += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (len & 1) acc += (uint32_t)(p[len - 1] << 8);
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return htons((uint16_t)~acc);
}

static int parse_port(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  return *end || v < 1 || v > 65535 ? -1 : (int)v;
}

static int do_sink(const char *path) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
    perror("icmp_forge sink");
    return 1;
  }
  printf("%u\n", ntohs(a.sin_port));
  fflush(stdout);
  struct timeval tv = {.tv_sec = 1};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  time_t end = time(NULL) + 60;
  int first = 1;
  uint8_t buf[2048];
  while (time(NULL) < end) {
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
    if (n < 0 || !first) continue;
    first = 0;
    char port_path[4096];
    snprintf(port_path, sizeof port_path, "%s.port", path);
    FILE *f = fopen(path, "wb");
    FILE *p = fopen(port_path, "w");
    if (!f || !p || fwrite(buf, 1, (size_t)n, f) != (size_t)n) {
      perror(path);
      return 1;
    }
    fclose(f);
    fprintf(p, "%u\n", ntohs(from.sin_port)); /* last: the test waits for it */
    fclose(p);
  }
  return 0;
}

static int do_send(char **argv) {
  struct in_addr client, server;
  int cport = parse_port(argv[3]), sport = parse_port(argv[5]);
  if (inet_pton(AF_INET, argv[2], &client) != 1 || inet_pton(AF_INET, argv[4], &server) != 1 ||
      cport < 0 || sport < 0) {
    fprintf(stderr, "icmp_forge send: bad address or port\n");
    return 64;
  }
  uint8_t quote[64];
  FILE *f = fopen(argv[6], "rb");
  if (!f) {
    perror(argv[6]);
    return 1;
  }
  size_t qlen = fread(quote, 1, sizeof quote, f);
  fclose(f);
  /* ICMP header, then the datagram it is about: IP header, UDP header,
   * the start of the payload. */
  uint8_t pkt[8 + 20 + 8 + sizeof quote];
  memset(pkt, 0, sizeof pkt);
  struct icmphdr *icmp = (struct icmphdr *)pkt;
  icmp->type = ICMP_DEST_UNREACH;
  icmp->code = ICMP_PORT_UNREACH;
  struct iphdr *ip = (struct iphdr *)(pkt + 8);
  ip->version = 4;
  ip->ihl = 5;
  ip->tot_len = htons((uint16_t)(20 + 8 + qlen));
  ip->ttl = 64;
  ip->protocol = IPPROTO_UDP;
  ip->saddr = client.s_addr;
  ip->daddr = server.s_addr;
  ip->check = checksum(ip, 20);
  struct udphdr *udp = (struct udphdr *)(pkt + 28);
  udp->source = htons((uint16_t)cport);
  udp->dest = htons((uint16_t)sport);
  udp->len = htons((uint16_t)(8 + qlen));
  memcpy(pkt + 36, quote, qlen);
  size_t len = 36 + qlen;
  icmp->checksum = checksum(pkt, len);
  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = client};
  if (fd < 0 || sendto(fd, pkt, len, 0, (struct sockaddr *)&to, sizeof to) != (ssize_t)len) {
    perror("icmp_forge send");
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "sink")) return do_sink(argv[2]);
  if (argc == 7 && !strcmp(argv[1], "send")) return do_send(argv);
  fprintf(stderr,
          "usage: icmp_forge sink FILE\n"
          "       icmp_forge send CLIENT_IP CLIENT_PORT SERVER_IP SERVER_PORT QUOTE\n");
  return 64;
}
