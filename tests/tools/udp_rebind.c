/* A UDP relay on 127.0.0.1 standing in for a NAT: it forwards datagrams
 * between one client and a target port, and every EVERY application
 * datagrams from the client (first record application data, 23, or
 * tls12_cid, 25; 0: never) sends on from a fresh socket, so the target
 * sees the client's address change (a NAT rebinding) — never in the middle
 * of a handshake, which no Connection ID survives. Answers to any of its old
 * ports still reach the client, as a NAT's would not: what the target
 * does with the new address is what is tested. Writes to LOG a line per
 * datagram: direction (c2s/s2c), the content type of its first record
 * (25: tls12_cid) and its length, and "rebind PORT" at each change. Prints
 * its port; exits after 120 s. EVERY -K instead moves once, before the
 * client's K-th handshake datagram (first record type 22). TARGET_ADDR
 * (IPv4, default 127.0.0.1) sends to another host: the fresh sockets are
 * then bound to any address (the cluster test, across namespaces).
 * usage: udp_rebind TARGET_PORT EVERY LOG [TARGET_ADDR] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BACK 256

static in_addr_t g_back_addr = INADDR_LOOPBACK; /* host order */

static int open_back(void) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(g_back_addr)};
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0) return -1;
  return s;
}

static unsigned port_of(int s) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  return getsockname(s, (struct sockaddr *)&a, &len) == 0 ? ntohs(a.sin_port) : 0;
}

int main(int argc, char **argv) {
  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: udp_rebind TARGET_PORT EVERY LOG [TARGET_ADDR]\n");
    return 2;
  }
  long every = atol(argv[2]);
  FILE *log = fopen(argv[3], "w");
  struct sockaddr_in target = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)atoi(argv[1])),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (argc == 5 && inet_pton(AF_INET, argv[4], &target.sin_addr) != 1) {
    fprintf(stderr, "udp_rebind: not an IPv4 address: %s\n", argv[4]);
    return 2;
  }
  if (argc == 5) g_back_addr = INADDR_ANY;
  struct sockaddr_in front = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct sockaddr_in client = {0};
  int fs = socket(AF_INET, SOCK_DGRAM, 0);
  socklen_t len = sizeof front;
  int back[MAX_BACK];
  size_t n_back = 0;
  if (!log || fs < 0 || bind(fs, (struct sockaddr *)&front, sizeof front) < 0 ||
      getsockname(fs, (struct sockaddr *)&front, &len) < 0 || (back[n_back++] = open_back()) < 0) {
    perror("udp_rebind");
    return 1;
  }
  setvbuf(log, NULL, _IOLBF, 0);
  printf("%u\n", ntohs(front.sin_port));
  fflush(stdout);
  time_t end = time(NULL) + 120;
  static unsigned char buf[65536];
  unsigned long app_from_client = 0, hs_from_client = 0;
  while (time(NULL) < end) {
    struct pollfd p[1 + MAX_BACK] = {{fs, POLLIN, 0}};
    for (size_t i = 0; i < n_back; i++) p[1 + i] = (struct pollfd){back[i], POLLIN, 0};
    if (poll(p, 1 + n_back, 1000) <= 0) continue;
    if (p[0].revents & POLLIN) {
      socklen_t cl = sizeof client;
      ssize_t n = recvfrom(fs, buf, sizeof buf, 0, (struct sockaddr *)&client, &cl);
      int app = n > 0 && (buf[0] == 23 || buf[0] == 25);
      /* EVERY -K: one move, before the client's K-th handshake datagram
       * (a NAT rebinding mid-handshake). */
      if (n > 0 && every < 0 && buf[0] == 22 && ++hs_from_client == (unsigned long)-every &&
          n_back < MAX_BACK) {
        int s = open_back();
        if (s >= 0) {
          back[n_back++] = s;
          fprintf(log, "rebind %u\n", port_of(s));
        }
      }
      if (n > 0) {
        if (app && every > 0 && app_from_client > 0 &&
            app_from_client % (unsigned long)every == 0 && n_back < MAX_BACK) {
          int s = open_back();
          if (s >= 0) {
            back[n_back++] = s;
            fprintf(log, "rebind %u\n", port_of(s));
          }
        }
        app_from_client += app;
        fprintf(log, "c2s %u %zd\n", buf[0], n);
        sendto(back[n_back - 1], buf, (size_t)n, 0, (struct sockaddr *)&target, sizeof target);
      }
    }
    for (size_t i = 0; i < n_back; i++) {
      if (!(p[1 + i].revents & POLLIN)) continue;
      ssize_t n = recv(back[i], buf, sizeof buf, 0);
      if (n > 0 && client.sin_port) {
        fprintf(log, "s2c %u %zd\n", buf[0], n);
        sendto(fs, buf, (size_t)n, 0, (struct sockaddr *)&client, sizeof client);
      }
    }
  }
  fclose(log);
  return 0;
}
