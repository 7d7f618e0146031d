/* A UDP relay on 127.0.0.1 that stands in for a network path: it forwards
 * datagrams between one client and a target port and drops those larger
 * than MAX bytes (a path MTU). Prints its port; exits after 120 s.
 * usage: udp_relay TARGET_PORT MAX_DATAGRAM */
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: udp_relay TARGET_PORT MAX_DATAGRAM\n");
    return 2;
  }
  long max = atol(argv[2]);
  struct sockaddr_in target = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)atoi(argv[1])),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct sockaddr_in front = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct sockaddr_in back = front, client = {0};
  int fs = socket(AF_INET, SOCK_DGRAM, 0), bs = socket(AF_INET, SOCK_DGRAM, 0);
  socklen_t len = sizeof front;
  if (fs < 0 || bs < 0 || bind(fs, (struct sockaddr *)&front, sizeof front) < 0 ||
      bind(bs, (struct sockaddr *)&back, sizeof back) < 0 ||
      getsockname(fs, (struct sockaddr *)&front, &len) < 0) {
    perror("udp_relay");
    return 1;
  }
  printf("%u\n", ntohs(front.sin_port));
  fflush(stdout);
  time_t end = time(NULL) + 120;
  static char buf[65536];
  unsigned long dropped = 0;
  while (time(NULL) < end) {
    struct pollfd p[2] = {{fs, POLLIN, 0}, {bs, POLLIN, 0}};
    if (poll(p, 2, 1000) <= 0) continue;
    if (p[0].revents & POLLIN) {
      socklen_t cl = sizeof client;
      ssize_t n = recvfrom(fs, buf, sizeof buf, 0, (struct sockaddr *)&client, &cl);
      if (n > max)
        dropped++;
      else if (n >= 0)
        sendto(bs, buf, (size_t)n, 0, (struct sockaddr *)&target, sizeof target);
    }
    if (p[1].revents & POLLIN) {
      ssize_t n = recv(bs, buf, sizeof buf, 0);
      if (n > max)
        dropped++;
      else if (n >= 0 && client.sin_port)
        sendto(fs, buf, (size_t)n, 0, (struct sockaddr *)&client, sizeof client);
    }
  }
  fprintf(stderr, "udp_relay: dropped %lu oversized datagrams\n", dropped);
  return 0;
}
