/* coaps serve --state-file (serve_state.h): the file side of
 * coap_context_export_sessions / coap_context_import_sessions. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "log_json.h"
#include "serve_state.h"

/* The largest state file read back (and so written): sessions take a
 * few hundred bytes each, Observe relations tens (a FETCH body can make
 * one 2 KB). */
#define STATE_FILE_MAX (256u << 20)

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* FILE.seen: when the last state taken over was sealed (ms), so that a
 * copy of an older state file is refused as replayed. */
static void seen_path(const serve_state_t *st, char *out, size_t cap) {
  snprintf(out, cap, "%s.seen", st->file);
}

static uint64_t seen_read(const serve_state_t *st) {
  char path[4096];
  seen_path(st, path, sizeof path);
  FILE *f = fopen(path, "re");
  unsigned long long v = 0;
  if (f && fscanf(f, "%llu", &v) != 1) v = 0;
  if (f) fclose(f);
  return v;
}

static void seen_write(const serve_state_t *st, uint64_t sealed_ms) {
  char path[4096], tmp[4200];
  seen_path(st, path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.new", path);
  unlink(tmp);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  char text[32];
  int n = snprintf(text, sizeof text, "%llu\n", (unsigned long long)sealed_ms);
  if (fd < 0 || write(fd, text, (size_t)n) != n || fsync(fd) < 0 || rename(tmp, path) < 0) {
    cli_error(
        "%s: cannot write it (%s): a copy of the state file just read could be taken "
        "again",
        path, strerror(errno));
    unlink(tmp);
  }
  if (fd >= 0) close(fd);
}

/* |fd|'s file is a regular file no one but its owner can read or write. */
static int owner_only(int fd, const char *path, const char *what) {
  struct stat sb;
  if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
    cli_error("%s %s: not a regular file", what, path);
    return -1;
  }
  if (sb.st_mode & 077) {
    cli_error("%s %s: readable or writable by others (mode %03o): refused (chmod 600 %s)", what,
              path, (unsigned)(sb.st_mode & 0777), path);
    return -1;
  }
  return 0;
}

/* The whole file (at most |cap| bytes) into |buf|; its length, or -1. */
static long read_file(int fd, uint8_t *buf, size_t cap) {
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) return (long)len;
    len += (size_t)n;
    if (len == cap) return -1; /* larger than allowed */
  }
}

static int hex_digit(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Hex (whitespace ignored) into |key|: its length, or -1. */
static long parse_hex_key(const uint8_t *text, size_t len, uint8_t *key, size_t cap) {
  size_t n = 0;
  int high = -1;
  for (size_t i = 0; i < len; i++) {
    if (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t') continue;
    int d = hex_digit(text[i]);
    if (d < 0 || (high < 0 && n == cap)) return -1;
    if (high < 0) {
      high = d;
    } else {
      key[n++] = (uint8_t)(high << 4 | d);
      high = -1;
    }
  }
  return high < 0 ? (long)n : -1;
}

int serve_state_load_key(serve_state_t *st) {
  if (!st->file) return 0;
  if (!st->key_file) {
    cli_error("--state-file needs --state-key-file (the key that seals the sessions)");
    return EXIT_USAGE;
  }
  int fd = open(st->key_file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    cli_error("--state-key-file %s: %s", st->key_file, strerror(errno));
    return EXIT_SECURITY;
  }
  uint8_t text[256];
  long len =
      owner_only(fd, st->key_file, "--state-key-file") < 0 ? -2 : read_file(fd, text, sizeof text);
  close(fd);
  long n = len < 0 ? -1 : parse_hex_key(text, (size_t)len, st->key, sizeof st->key);
  memset(text, 0, sizeof text);
  if (len == -2) return EXIT_SECURITY;
  if (n != 16 && n != 32) {
    cli_error(
        "--state-key-file %s: want 32 (or 16) random bytes as hex, e.g. from "
        "'od -An -tx1 -N32 /dev/urandom'",
        st->key_file);
    return EXIT_SECURITY;
  }
  st->key_len = (size_t)n;
  return 0;
}

void serve_state_restore(serve_state_t *st, coap_context_t *const *ctxs, size_t n) {
  if (!st->file) return;
  int fd = open(st->file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno != ENOENT)
      cli_error("--state-file %s: %s: starting without saved sessions", st->file, strerror(errno));
    return;
  }
  /* Read once: gone before anything in it is used, so it cannot be
   * loaded a second time (by this process or another). */
  if (unlink(st->file) < 0) {
    cli_error("--state-file %s: cannot delete it (%s): refused, starting without saved sessions",
              st->file, strerror(errno));
    close(fd);
    return;
  }
  struct stat sb;
  size_t cap = fstat(fd, &sb) == 0 && sb.st_size < STATE_FILE_MAX ? (size_t)sb.st_size + 1 : 0;
  uint8_t *buf = cap ? malloc(cap) : NULL;
  long len = -1;
  if (!buf) {
    cli_error("--state-file %s: too large or unreadable: starting without saved sessions",
              st->file);
  } else if (owner_only(fd, st->file, "--state-file") == 0) {
    len = read_file(fd, buf, cap);
    if (len < 0) cli_error("--state-file %s: cannot read it whole", st->file);
  }
  close(fd);
  if (len >= 0) {
    const char *why = NULL;
    uint64_t seen = seen_read(st), last_sealed = seen;
    long got = coap_contexts_import_sessions(ctxs, n, st->key, st->key_len, st->node_id, wall_ms(),
                                             (uint64_t)st->max_age_s * 1000, &last_sealed, buf,
                                             (size_t)len, &why);
    /* Every file whose seal verified, taken or not (malformed inside,
     * stale, another node's): never to be read again. */
    if (last_sealed != seen) seen_write(st, last_sealed);
    if (got < 0)
      cli_error("--state-file %s refused: %s; starting without saved sessions", st->file, why);
    else
      tool_log("info", (log_field_t[]){LOG_COUNT("sessions_restored", (uint64_t)got)}, 1,
               "%ld DTLS session%s restored from %s (no handshake needed)", got,
               got == 1 ? "" : "s", st->file);
  }
  if (buf) memset(buf, 0, cap);
  free(buf);
}

static int write_all(int fd, const uint8_t *data, size_t len) {
  while (len) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

/* |path|'s directory synced, so that its rename survives a crash. */
static int sync_dir_of(const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  int k = !slash          ? snprintf(dir, sizeof dir, ".")
          : slash == path ? snprintf(dir, sizeof dir, "/")
                          : snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  if (k < 0 || (size_t)k >= sizeof dir) return -1;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int rc = fd < 0 || fsync(fd) < 0 ? -1 : 0;
  if (fd >= 0) close(fd);
  return rc;
}

/* The sealed state |buf| into the state file, whole or not at all (a new
 * 0600 file, written, synced and renamed into place): 0, or -1 with the
 * reason said. */
static int store(const serve_state_t *st, const uint8_t *buf, size_t len) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.new", st->file) >= (int)sizeof tmp) {
    cli_error("--state-file %s: the name is too long", st->file);
    return -1;
  }
  unlink(tmp);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  const char *step = fd < 0                        ? "create"
                     : write_all(fd, buf, len) < 0 ? "write"
                     : fsync(fd) < 0               ? "sync"
                     : rename(tmp, st->file) < 0   ? "rename"
                                                   : NULL;
  int err = errno;
  if (fd >= 0) close(fd);
  if (step) {
    unlink(tmp); /* no copy of the state is left behind */
    cli_error("--state-file %s: cannot %s %s (%s)", st->file, step, tmp, strerror(err));
    return -1;
  }
  /* In place: the next start reads it. A directory that cannot be synced
   * only risks the file after a power loss (then clients make new
   * handshakes); the sessions are the file's now. */
  if (sync_dir_of(st->file) < 0)
    cli_error(
        "--state-file %s: written, but its directory cannot be synced (%s): a power loss "
        "now could lose it",
        st->file, strerror(errno));
  return 0;
}

void serve_state_save(serve_state_t *st, coap_context_t *const *ctxs, size_t n) {
  if (!st->file) return;
  long cap =
      coap_contexts_export_sessions(ctxs, n, st->key, st->key_len, st->node_id, 0, NULL, 0, NULL);
  uint8_t *buf = cap > 0 ? malloc((size_t)cap) : NULL;
  size_t carried = 0;
  long len = buf ? coap_contexts_export_sessions_begin(ctxs, n, st->key, st->key_len, st->node_id,
                                                       wall_ms(), buf, (size_t)cap, &carried)
             : cap < 0 ? cap
                       : COAP_E_NOMEM;
  /* The sessions' keys are retired only once the file is in place;
   * until then they are this process's, and on any failure they end
   * with a close_notify at the stop (serve.c) as without a state file. */
  int stored = 0;
  if (len >= STATE_FILE_MAX)
    cli_error(
        "--state-file %s: sessions not saved: %ld bytes, more than the next start reads "
        "(%u); they are ended with a close_notify",
        st->file, len, STATE_FILE_MAX);
  else if (len < 0)
    cli_error("--state-file %s: sessions not saved: %s; they are ended with a close_notify",
              st->file, coap_strerror((int)len));
  else if (store(st, buf, (size_t)len) < 0)
    cli_error("--state-file %s: sessions not saved; they are ended with a close_notify", st->file);
  else
    stored = 1;
  if (len >= 0) coap_contexts_export_sessions_end(ctxs, n, stored);
  if (stored)
    tool_log("info", (log_field_t[]){LOG_COUNT("sessions_saved", carried)}, 1,
             "stopping: %zu DTLS session%s saved to %s for the next start", carried,
             carried == 1 ? "" : "s", st->file);
  if (buf) memset(buf, 0, (size_t)cap);
  free(buf);
}
