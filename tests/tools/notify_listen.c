/* A stand-in for systemd's notification socket (sd_notify(3)): binds an
 * AF_UNIX datagram socket at argv[1] and prints each message received,
 * one line a field ("READY=1"), until killed or argv[2] seconds pass. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: notify_listen PATH [SECONDS]\n");
    return 64;
  }
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(argv[1]) >= sizeof sa.sun_path) return 64;
  strcpy(sa.sun_path, argv[1]);
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  unlink(argv[1]);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    perror("notify_listen");
    return 1;
  }
  struct timeval tv = {argc > 2 ? atoi(argv[2]) : 60, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  printf("listening\n");
  fflush(stdout);
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf - 1, 0)) >= 0) {
    buf[n] = '\0';
    printf("%s\n", buf);
    fflush(stdout);
  }
  unlink(argv[1]);
  return 0;
}
