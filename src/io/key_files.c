/* Reading a PSK file: the file part of coap_psk_table_load_file (the
 * parser takes a buffer, src/security/psk_table.c). The file must be a
 * regular file only its owner may read, unless the caller says otherwise;
 * the buffer that held it is zeroised. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coaps/credentials.h"
#include "coaps/error.h"
#include "common/util.h"

__attribute__((format(printf, 3, 4))) static int load_error(char *why, size_t cap, const char *fmt,
                                                            ...) {
  va_list ap;
  va_start(ap, fmt);
  if (why && cap) vsnprintf(why, cap, fmt, ap);
  va_end(ap);
  return COAP_E_DTLS_CREDENTIALS;
}

/* The whole of |fd| (|size| bytes expected) into a new buffer. */
static char *read_all(int fd, size_t size, size_t *len) {
  size_t cap = size + 1;
  char *buf = malloc(cap);
  *len = 0;
  while (buf) {
    ssize_t n = read(fd, buf + *len, cap - *len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      coap_memzero(buf, *len);
      free(buf);
      return NULL;
    }
    if (n == 0) break;
    *len += (size_t)n;
    if (*len == cap) { /* it grew while we read: copy, zeroise the old */
      char *grown = malloc(cap * 2);
      if (grown) memcpy(grown, buf, *len);
      coap_memzero(buf, *len);
      free(buf);
      buf = grown;
      cap *= 2;
    }
  }
  return buf;
}

int coap_psk_table_load_file(const char *path, unsigned flags, coap_psk_table_t **out, char *why,
                             size_t why_cap) {
  if (why && why_cap) why[0] = '\0';
  if (!path || !out) return COAP_E_INVALID_ARG;
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return load_error(why, why_cap, "%s: cannot open the PSK file: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    int dir = S_ISDIR(st.st_mode);
    close(fd);
    return load_error(why, why_cap, "%s: %s", path,
                      dir ? "is a directory, not a PSK file" : "is not a regular file");
  }
  int insecure = (st.st_mode & 077) != 0;
  if (insecure && !(flags & COAP_KEY_FILE_ALLOW_INSECURE)) {
    close(fd);
    char mode[64];
    snprintf(mode, sizeof mode, "%04o", (unsigned)(st.st_mode & 07777));
    return load_error(why, why_cap,
                      "%s: group or others may read this key file (mode %s): chmod 600 it "
                      "(or allow it explicitly: --allow-insecure-key-files)",
                      path, mode);
  }
  size_t len;
  char *text = read_all(fd, (size_t)st.st_size, &len);
  int err = errno;
  close(fd);
  if (!text)
    return load_error(why, why_cap, "%s: cannot read the PSK file: %s", path, strerror(err));
  /* Size the table once: at most one identity a line. */
  size_t lines = 1;
  for (const char *p = text; (p = memchr(p, '\n', len - (size_t)(p - text))); p++) lines++;
  coap_psk_table_t *t = coap_psk_table_new(lines);
  int rc = t ? coap_psk_table_parse(t, path, text, len, why, why_cap) : COAP_E_NOMEM;
  coap_memzero(text, len);
  free(text);
  if (rc < 0) {
    coap_psk_table_free(t);
    if (rc == COAP_E_NOMEM) load_error(why, why_cap, "%s: %s", path, "out of memory");
    return rc == COAP_E_NOMEM ? rc : COAP_E_DTLS_CREDENTIALS;
  }
  if (insecure && why && why_cap)
    snprintf(why, why_cap,
             "%s: group or others may read this key file (mode %04o), taken "
             "as allowed",
             path, (unsigned)(st.st_mode & 07777));
  *out = t;
  return rc;
}
