/* A UDP socket on 127.0.0.1 that swallows every datagram: a peer that is
 * there but never answers. Prints its port, exits after 120 s at most. */
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
    perror("udp_blackhole");
    return 1;
  }
  printf("%u\n", ntohs(a.sin_port));
  fflush(stdout);
  struct timeval tv = {.tv_sec = 1};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  time_t end = time(NULL) + 120;
  char buf[2048];
  while (time(NULL) < end) (void)recv(fd, buf, sizeof buf, 0);
  return 0;
}
