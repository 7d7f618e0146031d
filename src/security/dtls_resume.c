/* Client-side session resumption: the last session per server name in
 * memory, optionally mirrored to a file so that a new process resumes too.
 * File format: "coaps-session 1 <server name>\n" then the GnuTLS session
 * data. */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "security/dtls_internal.h"

#define FILE_MAGIC "coaps-session 1 "
#define SESSION_DATA_MAX 65536

static void entry_clear(session_cache_entry_t *e) {
  free(e->server_name);
  if (e->data.data) {
    coap_memzero(e->data.data, e->data.size);
    free(e->data.data);
  }
  memset(e, 0, sizeof(*e));
}

void coap_dtls_cache_clear(coap_dtls_context_t *d) {
  for (size_t i = 0; i < SESSION_CACHE_SIZE; i++) entry_clear(&d->cache[i]);
  free(d->session_file);
  d->session_file = NULL;
}

static session_cache_entry_t *slot_for(coap_dtls_context_t *d, const char *name) {
  for (size_t i = 0; i < SESSION_CACHE_SIZE; i++)
    if (d->cache[i].server_name && strcmp(d->cache[i].server_name, name) == 0) return &d->cache[i];
  for (size_t i = 0; i < SESSION_CACHE_SIZE; i++)
    if (!d->cache[i].server_name) return &d->cache[i];
  session_cache_entry_t *e = &d->cache[d->cache_next];
  d->cache_next = (d->cache_next + 1) % SESSION_CACHE_SIZE;
  return e;
}

static void put(coap_dtls_context_t *d, const char *name, const uint8_t *data, size_t len) {
  session_cache_entry_t *e = slot_for(d, name);
  uint8_t *copy = malloc(len);
  char *n = strdup(name);
  if (!copy || !n) {
    free(copy);
    free(n);
    return; /* no resumption next time: a full handshake, nothing worse */
  }
  memcpy(copy, data, len);
  entry_clear(e);
  e->server_name = n;
  e->data.data = copy;
  e->data.size = (unsigned)len;
}

/* The directory part of |path| into |dir| ("." for a bare name). */
static void dir_of(const char *path, char *dir, size_t cap) {
  const char *slash = strrchr(path, '/');
  if (!slash) {
    snprintf(dir, cap, ".");
  } else if (slash == path) {
    snprintf(dir, cap, "/");
  } else {
    snprintf(dir, cap, "%.*s", (int)(slash - path), path);
  }
}

/* The file's bytes, at most |cap|, through a descriptor that never
 * follows a symbolic link. Returns the length, or -1 with errno set. */
static ssize_t read_session_file(const char *path, uint8_t *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return -1;
  struct stat st;
  int err = fstat(fd, &st) < 0     ? errno
            : S_ISDIR(st.st_mode)  ? EISDIR
            : !S_ISREG(st.st_mode) ? EINVAL
                                   : 0;
  if (err) {
    close(fd);
    errno = err;
    return -1;
  }
  size_t len = 0;
  ssize_t n = 0;
  while (len < cap && (n = read(fd, buf + len, cap - len)) > 0) len += (size_t)n;
  err = errno;
  close(fd);
  if (n < 0) {
    errno = err;
    return -1;
  }
  return (ssize_t)len;
}

#define FILE_MAX (320 + SESSION_DATA_MAX)

static void load_file(coap_dtls_context_t *d) {
  d->session_file_loaded = 1;
  uint8_t *buf = malloc(FILE_MAX);
  if (!buf) return; /* a full handshake, nothing worse */
  ssize_t n = read_session_file(d->session_file, buf, FILE_MAX);
  size_t magic = strlen(FILE_MAGIC);
  uint8_t *eol = n > 0 ? memchr(buf, '\n', (size_t)n) : NULL;
  /* No file or an empty one (nothing saved yet): no session, no word. */
  if (n < 0 && errno != ENOENT) {
    coap_logf(d->log, COAP_LOG_ERROR, NULL,
              "cannot read the session file %s: %s (a full handshake follows)", d->session_file,
              strerror(errno));
  } else if (n > 0 && (!eol || (size_t)(eol - buf) < magic || memcmp(buf, FILE_MAGIC, magic) != 0 ||
                       (size_t)n >= FILE_MAX)) {
    coap_logf(d->log, COAP_LOG_ERROR, NULL,
              "%s is not a coaps session file: ignored (a full handshake follows)",
              d->session_file);
  } else if (n > 0) {
    *eol = '\0';
    size_t data_len = (size_t)n - (size_t)(eol + 1 - buf);
    if (data_len > 0 && data_len < SESSION_DATA_MAX)
      put(d, (const char *)buf + magic, eol + 1, data_len);
  }
  coap_memzero(buf, FILE_MAX);
  free(buf);
}

static int write_all(int fd, const void *p, size_t len) {
  const uint8_t *b = p;
  while (len) {
    ssize_t n = write(fd, b, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    b += n;
    len -= (size_t)n;
  }
  return 0;
}

/* A new file, mode 0600 from its first byte, next to |path| (a rename is
 * atomic only within one file system). Returns its descriptor and name
 * in |tmp|, or -1 with errno set. */
static int create_temp(const char *path, char *tmp, size_t cap) {
  char dir[PATH_MAX];
  dir_of(path, dir, sizeof dir);
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  for (int attempt = 0; attempt < 8; attempt++) {
    uint8_t r[6];
    if (gnutls_rnd(GNUTLS_RND_NONCE, r, sizeof r) < 0) {
      errno = EIO;
      return -1;
    }
    int k = snprintf(tmp, cap, "%s/.%s.%02x%02x%02x%02x%02x%02x", dir, base, r[0], r[1], r[2], r[3],
                     r[4], r[5]);
    if (k < 0 || (size_t)k >= cap) {
      errno = ENAMETOOLONG;
      return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  return -1;
}

/* Why |path| cannot take the session file's place, or NULL. A symbolic
 * link is never followed (nor replaced): whoever planted it would choose
 * where the session's master secret goes. */
static const char *target_refused(const char *path) {
  struct stat st;
  if (lstat(path, &st) < 0) return errno == ENOENT ? NULL : strerror(errno);
  if (S_ISLNK(st.st_mode))
    return "it is a symbolic link (refused: session secrets go only to a regular file; "
           "give the link's target instead)";
  if (S_ISDIR(st.st_mode)) return "it is a directory (give a file name)";
  if (!S_ISREG(st.st_mode)) return "it is not a regular file";
  return NULL;
}

/* Write to a new 0600 file, fsync, then rename it over the target: a
 * reader sees the old session or the new one, never half of one, and an
 * existing file of any mode is replaced by a 0600 one. */
static void save_file(coap_dtls_context_t *d, const char *name, const gnutls_datum_t *data) {
  char tmp[PATH_MAX + 32], dir[PATH_MAX];
  const char *why = target_refused(d->session_file);
  int fd = why ? -1 : create_temp(d->session_file, tmp, sizeof tmp);
  if (!why && fd < 0) why = strerror(errno);
  if (!why &&
      (write_all(fd, FILE_MAGIC, strlen(FILE_MAGIC)) < 0 || write_all(fd, name, strlen(name)) < 0 ||
       write_all(fd, "\n", 1) < 0 || write_all(fd, data->data, data->size) < 0 || fsync(fd) < 0))
    why = strerror(errno);
  if (fd >= 0 && close(fd) < 0 && !why) why = strerror(errno);
  /* Once more just before the rename, which replaces a link rather than
   * following it, so a link planted in between is still not written
   * through. */
  if (!why) why = target_refused(d->session_file);
  if (!why && rename(tmp, d->session_file) < 0) why = strerror(errno);
  if (why) {
    if (fd >= 0) unlink(tmp);
    coap_logf(d->log, COAP_LOG_ERROR, NULL,
              "cannot save the session to %s: %s (the next run makes a full handshake)",
              d->session_file, why);
    return;
  }
  /* The rename itself must reach the disk too. */
  dir_of(d->session_file, dir, sizeof dir);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
}

const gnutls_datum_t *coap_dtls_cache_find(coap_dtls_context_t *d, const char *name) {
  if (d->no_resume) return NULL;
  if (d->session_file && !d->session_file_loaded) load_file(d);
  for (size_t i = 0; i < SESSION_CACHE_SIZE; i++)
    if (d->cache[i].server_name && strcmp(d->cache[i].server_name, name) == 0)
      return &d->cache[i].data;
  return NULL;
}

void coap_dtls_cache_store(coap_dtls_context_t *d, const char *name, const gnutls_datum_t *data) {
  if (d->no_resume || !data->size || data->size >= SESSION_DATA_MAX) return;
  put(d, name, data->data, data->size);
  if (d->session_file) save_file(d, name, data);
}

/* Whether |path| can hold the session: a regular file that is empty or
 * ours (never someone's document mistyped as the session file), or a new
 * name in a directory we may write (the temporary file and the rename
 * need that in both cases). 0, or -1 with d->error saying why. */
static int check_session_path(coap_dtls_context_t *d, const char *path) {
  const char *why = target_refused(path);
  if (why) {
    snprintf(d->error, sizeof d->error, "session file %s: %s", path, why);
    return -1;
  }
  uint8_t head[sizeof FILE_MAGIC];
  ssize_t n = read_session_file(path, head, sizeof head - 1);
  if (n < 0 && errno != ENOENT) {
    snprintf(d->error, sizeof d->error, "cannot read the session file %s: %s", path,
             strerror(errno));
    return -1;
  }
  if (n > 0 && ((size_t)n < strlen(FILE_MAGIC) || memcmp(head, FILE_MAGIC, strlen(FILE_MAGIC)))) {
    snprintf(d->error, sizeof d->error,
             "session file %s exists and is not a coaps session file: not overwriting it "
             "(remove it or give another name)",
             path);
    return -1;
  }
  char dir[PATH_MAX];
  dir_of(path, dir, sizeof dir);
  struct stat st;
  int err = stat(dir, &st) < 0 ? errno : !S_ISDIR(st.st_mode) ? ENOTDIR : 0;
  if (err) {
    snprintf(d->error, sizeof d->error,
             "cannot write the session file %s: its directory is missing or not a directory (%s)",
             path, strerror(err));
    return -1;
  }
  if (access(dir, W_OK | X_OK) < 0) {
    snprintf(d->error, sizeof d->error,
             "cannot write the session file %s: its directory is not writable (%s)", path,
             strerror(errno));
    return -1;
  }
  return 0;
}

int coap_dtls_set_session_file(coap_dtls_context_t *d, const char *path) {
  if (!d || !path || !*path) return COAP_E_INVALID_ARG;
  if (strlen(path) >= PATH_MAX) return COAP_E_INVALID_ARG;
  if (check_session_path(d, path) < 0) {
    coap_logf(d->log, COAP_LOG_ERROR, NULL, "%s", d->error);
    return COAP_E_DTLS_CREDENTIALS;
  }
  char *copy = strdup(path);
  if (!copy) return COAP_E_NOMEM;
  free(d->session_file);
  d->session_file = copy;
  d->session_file_loaded = 0;
  return 0;
}

/* ---- server side: session-ticket keys shared between servers ----
 * The text of a ticket key file (docs/architecture.md, "Session-ticket
 * keys"): lines, '#' comments and blank lines ignored; first the line
 * "coaps-ticket-keys 1", then one key a line in hex, the current key
 * first, then the previous ones (kept for a grace period by
 * `coaps keygen --ticket-key`). The current key seals the tickets this
 * server issues; every key of the file opens the tickets sealed with it
 * by any server sharing the file (dtls_cookie.c picks the key a session
 * gets from the ticket's name). */

#define TICKET_KEYS_MAGIC "coaps-ticket-keys 1"

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* |len| characters of hex into |out| (|cap| bytes exactly). 0 or -1. */
static int hex_key(const char *text, size_t len, uint8_t *out, size_t cap) {
  if (len != 2 * cap) return -1;
  for (size_t i = 0; i < cap; i++) {
    int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return -1;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

/* One line without its end of line and surrounding blanks. */
static void trim(const char **line, size_t *len) {
  while (*len && ((*line)[0] == ' ' || (*line)[0] == '\t')) (*line)++, (*len)--;
  while (*len && strchr(" \t\r", (*line)[*len - 1])) (*len)--;
}

static int ticket_keys_error(coap_dtls_context_t *d, unsigned line, const char *what) {
  if (line)
    snprintf(d->error, sizeof d->error, "ticket key file: line %u: %s", line, what);
  else
    snprintf(d->error, sizeof d->error, "ticket key file: %s", what);
  return COAP_E_DTLS_CREDENTIALS;
}

void coap_dtls_set_last_error(coap_dtls_context_t *d, const char *msg) {
  snprintf(d->error, sizeof d->error, "%s", msg);
}

/* The keys of |text| into |keys| (at most COAP_DTLS_TICKET_KEYS_MAX);
 * their number, or a negative code with d->error naming the line. */
static int parse_ticket_keys(coap_dtls_context_t *d, const char *text, size_t len,
                             uint8_t keys[][COAP_DTLS_TICKET_KEY_LEN]) {
  int n = 0, magic = 0;
  unsigned line_no = 0;
  for (size_t at = 0; at < len;) {
    const char *line = text + at;
    const char *eol = memchr(line, '\n', len - at);
    size_t k = eol ? (size_t)(eol - line) : len - at;
    at += k + 1;
    line_no++;
    trim(&line, &k);
    if (k == 0 || line[0] == '#') continue;
    if (!magic) {
      if (k != strlen(TICKET_KEYS_MAGIC) || memcmp(line, TICKET_KEYS_MAGIC, k) != 0)
        return ticket_keys_error(
            d, line_no, "not a coaps ticket key file (no \"" TICKET_KEYS_MAGIC "\" line first)");
      magic = 1;
      continue;
    }
    if (n == COAP_DTLS_TICKET_KEYS_MAX)
      return ticket_keys_error(d, line_no,
                               "more than 8 keys (only the current key and the previous one "
                               "or few are of use: remove the oldest)");
    if (hex_key(line, k, keys[n], COAP_DTLS_TICKET_KEY_LEN) < 0) {
      char what[96];
      snprintf(what, sizeof what, "not a key (%d hex digits expected)",
               2 * COAP_DTLS_TICKET_KEY_LEN);
      return ticket_keys_error(d, line_no, what);
    }
    n++;
  }
  if (!magic) return ticket_keys_error(d, 0, "empty (no \"" TICKET_KEYS_MAGIC "\" line)");
  if (!n) return ticket_keys_error(d, 0, "no key in it");
  return n;
}

int coap_dtls_set_ticket_keys(coap_dtls_context_t *d, const char *text, size_t len) {
  if (!d || (!text && len)) return COAP_E_INVALID_ARG;
  uint8_t keys[COAP_DTLS_TICKET_KEYS_MAX][COAP_DTLS_TICKET_KEY_LEN];
  int n = parse_ticket_keys(d, text, len, keys);
  if (n > 0) {
    memcpy(d->ticket_keys, keys, sizeof keys);
    d->n_ticket_keys = (unsigned)n;
    d->ticket_key_from_file = 1;
    coap_dtls_ticket_keys_changed(d);
  }
  coap_memzero(keys, sizeof keys);
  return n;
}
