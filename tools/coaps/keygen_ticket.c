/* coaps keygen --ticket-key FILE: create a session-ticket key file, or
 * rotate an existing one: a new current key first, the old current key
 * kept after it for a grace period (one rotation: a ticket sealed two
 * rotations ago is no longer opened). The file is written whole to a new
 * 0600 file next to FILE, synced, then renamed over FILE, so servers
 * reading it (at start, on SIGHUP) see the old keys or the new ones,
 * never half a file. The format: coap_dtls_set_ticket_keys. */
#include "keygen_ticket.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define TICKET_KEYS_MAGIC "coaps-ticket-keys 1"
#define KEY_HEX_MAX 512
#define FILE_MAX 16384

/* The current key line of the existing file into |line| ("" when there is
 * no file). 0, or -1 after saying why (a file we cannot read, or that is
 * not a ticket key file: not overwritten). */
static int current_key_line(const char *path, char *line, size_t cap) {
  line[0] = '\0';
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0 && errno == ENOENT) return 0;
  char *text = fd < 0 ? NULL : malloc(FILE_MAX + 1);
  ssize_t n = text ? read(fd, text, FILE_MAX) : -1;
  int err = errno;
  if (fd >= 0) close(fd);
  if (n < 0) {
    cli_error("cannot read %s: %s", path, strerror(err));
    free(text);
    return -1;
  }
  text[n] = '\0';
  /* The library checks the whole file (and says which line is wrong). */
  coap_dtls_context_t *d = coap_dtls_context_new();
  int rc = d ? coap_dtls_set_ticket_keys(d, text, (size_t)n) : COAP_E_NOMEM;
  if (rc < 0)
    cli_error("%s: %s: not rotated (remove it to start afresh)", path,
              d ? coap_dtls_context_last_error(d) : "out of memory");
  coap_dtls_context_free(d);
  int seen_magic = 0;
  for (char *save = NULL, *l = strtok_r(text, "\n", &save); rc >= 0 && l;
       l = strtok_r(NULL, "\n", &save)) {
    l += strspn(l, " \t");
    size_t len = strcspn(l, " \t\r");
    if (len == 0 || l[0] == '#') continue;
    if (!seen_magic++) continue;
    snprintf(line, cap, "%.*s", (int)len, l);
    break;
  }
  explicit_bzero(text, (size_t)n);
  free(text);
  return rc < 0 ? -1 : 0;
}

static int write_all(int fd, const char *text, size_t len) {
  while (len) {
    ssize_t n = write(fd, text, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    text += n;
    len -= (size_t)n;
  }
  return 0;
}

int keygen_replace_file(const char *path, const char *text, size_t len) {
  char tmp[4200];
  uint8_t r[6];
  if (gnutls_rnd(GNUTLS_RND_NONCE, r, sizeof r) < 0) return -1;
  const char *slash = strrchr(path, '/');
  int k = slash ? snprintf(tmp, sizeof tmp, "%.*s/.%s.%02x%02x%02x%02x%02x%02x",
                           (int)(slash - path), path, slash + 1, r[0], r[1], r[2], r[3], r[4], r[5])
                : snprintf(tmp, sizeof tmp, ".%s.%02x%02x%02x%02x%02x%02x", path, r[0], r[1], r[2],
                           r[3], r[4], r[5]);
  if (k < 0 || (size_t)k >= sizeof tmp) {
    cli_error("%s: the name is too long", path);
    return -1;
  }
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  int ok = fd >= 0 && write_all(fd, text, len) == 0 && fsync(fd) == 0;
  int err = errno;
  if (fd >= 0 && close(fd) != 0 && ok) ok = 0, err = errno;
  if (ok && rename(tmp, path) != 0) ok = 0, err = errno;
  if (!ok) {
    if (fd >= 0) unlink(tmp);
    cli_error("cannot write %s: %s", path, strerror(err));
    return -1;
  }
  return 0;
}

int keygen_ticket_key(const char *path) {
  char previous[KEY_HEX_MAX + 1];
  if (current_key_line(path, previous, sizeof previous) < 0) return EXIT_USAGE;
  gnutls_datum_t key = {NULL, 0};
  if (gnutls_session_ticket_key_generate(&key) < 0) {
    cli_error("cannot generate a ticket key");
    return EXIT_SECURITY;
  }
  char text[2 * KEY_HEX_MAX + 512];
  time_t now = time(NULL);
  struct tm tm;
  char when[32];
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
  int n = snprintf(text, sizeof text,
                   "# coaps session-ticket keys (coaps keygen --ticket-key, %s)\n"
                   "# the current key first, then the previous one (a grace period)\n"
                   "%s\n",
                   when, TICKET_KEYS_MAGIC);
  for (unsigned i = 0; i < key.size; i++) n += snprintf(text + n, 3, "%02x", key.data[i]);
  n += snprintf(text + n, sizeof text - (size_t)n, "\n%s%s", previous, previous[0] ? "\n" : "");
  explicit_bzero(key.data, key.size);
  gnutls_free(key.data);
  int rc = keygen_replace_file(path, text, (size_t)n), rotated = previous[0] != '\0';
  explicit_bzero(text, sizeof text);
  explicit_bzero(previous, sizeof previous);
  if (rc < 0) return EXIT_SECURITY;
  printf("%s %s\n", rotated ? "rotated" : "wrote", path);
  return 0;
}
