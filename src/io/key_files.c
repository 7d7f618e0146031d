/* Reading a PSK file or a ticket key file: the file part of
 * coap_psk_table_load_file and coap_dtls_load_ticket_key_file (the
 * parsers take a buffer, src/security/psk_table.c, dtls_resume.c). The file must be a
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
#include "coaps/dtls.h"
#include "coaps/error.h"
#include "common/util.h"
#include "security/security.h"

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

/* The text of the key file |path| (a |kind|, for messages), checked as
 * the header says, into *text (the caller zeroises and frees it). 0,
 * with *insecure set when an insecure file was allowed, or
 * COAP_E_DTLS_CREDENTIALS with |why| saying why. */
static int read_key_file(const char *path, const char *kind, unsigned flags, char **text,
                         size_t *len, unsigned *insecure, char *why, size_t why_cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return load_error(why, why_cap, "%s: cannot open the %s: %s", path, kind, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    int dir = S_ISDIR(st.st_mode);
    close(fd);
    return load_error(why, why_cap, "%s: %s%s", path,
                      dir ? "is a directory, not a " : "is not a regular file", dir ? kind : "");
  }
  *insecure = (st.st_mode & 077) ? (unsigned)(st.st_mode & 07777) : 0;
  if (*insecure && !(flags & COAP_KEY_FILE_ALLOW_INSECURE)) {
    close(fd);
    char mode[64];
    snprintf(mode, sizeof mode, "%04o", (unsigned)(st.st_mode & 07777));
    return load_error(why, why_cap,
                      "%s: group or others may read this key file (mode %s): chmod 600 it "
                      "(or allow it explicitly: --allow-insecure-key-files)",
                      path, mode);
  }
  *text = read_all(fd, (size_t)st.st_size, len);
  int err = errno;
  close(fd);
  if (!*text)
    return load_error(why, why_cap, "%s: cannot read the %s: %s", path, kind, strerror(err));
  return 0;
}

static void warn_insecure(const char *path, unsigned mode, char *why, size_t why_cap) {
  if (mode && why && why_cap)
    snprintf(why, why_cap,
             "%s: group or others may read this key file (mode %04o), taken "
             "as allowed",
             path, mode);
}

int coap_psk_table_load_file(const char *path, unsigned flags, coap_psk_table_t **out, char *why,
                             size_t why_cap) {
  if (why && why_cap) why[0] = '\0';
  if (!path || !out) return COAP_E_INVALID_ARG;
  *out = NULL;
  char *text;
  size_t len;
  unsigned insecure;
  int rc = read_key_file(path, "PSK file", flags, &text, &len, &insecure, why, why_cap);
  if (rc < 0) return rc;
  /* Size the table once: at most one identity a line. */
  size_t lines = 1;
  for (const char *p = text; (p = memchr(p, '\n', len - (size_t)(p - text))); p++) lines++;
  coap_psk_table_t *t = coap_psk_table_new(lines);
  rc = t ? coap_psk_table_parse(t, path, text, len, why, why_cap) : COAP_E_NOMEM;
  coap_memzero(text, len);
  free(text);
  if (rc < 0) {
    coap_psk_table_free(t);
    if (rc == COAP_E_NOMEM) load_error(why, why_cap, "%s: %s", path, "out of memory");
    return rc == COAP_E_NOMEM ? rc : COAP_E_DTLS_CREDENTIALS;
  }
  warn_insecure(path, insecure, why, why_cap);
  *out = t;
  return rc;
}

int coap_dtls_load_ticket_key_file(coap_dtls_context_t *d, const char *path, unsigned flags,
                                   char *why, size_t why_cap) {
  if (why && why_cap) why[0] = '\0';
  if (!d || !path) return COAP_E_INVALID_ARG;
  char *text;
  size_t len;
  unsigned insecure;
  char msg[640];
  int rc = read_key_file(path, "ticket key file", flags, &text, &len, &insecure, msg, sizeof msg);
  if (rc == 0) {
    rc = coap_dtls_set_ticket_keys(d, text, len);
    coap_memzero(text, len);
    free(text);
    if (rc < 0)
      snprintf(msg, sizeof msg, "%s: %s", path,
               rc == COAP_E_DTLS_CREDENTIALS ? coap_dtls_context_last_error(d)
                                             : "cannot use the ticket keys");
  }
  if (rc < 0) {
    coap_dtls_set_last_error(d, msg);
    return load_error(why, why_cap, "%s", msg);
  }
  warn_insecure(path, insecure, why, why_cap);
  return rc;
}
