/* Client-side session resumption: the last session per server name in
 * memory, optionally mirrored to a file so that a new process resumes too.
 * File format: "coaps-session 1 <server name>\n" then the GnuTLS session
 * data. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    if (d->cache[i].server_name && strcmp(d->cache[i].server_name, name) == 0)
      return &d->cache[i];
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

static void load_file(coap_dtls_context_t *d) {
  d->session_file_loaded = 1;
  FILE *f = fopen(d->session_file, "rb");
  if (!f) return; /* first run: nothing saved yet */
  char header[320];
  uint8_t *data = malloc(SESSION_DATA_MAX);
  size_t len = 0;
  if (data && fgets(header, sizeof header, f) &&
      strncmp(header, FILE_MAGIC, strlen(FILE_MAGIC)) == 0) {
    header[strcspn(header, "\n")] = '\0';
    len = fread(data, 1, SESSION_DATA_MAX, f);
    if (len > 0 && len < SESSION_DATA_MAX) put(d, header + strlen(FILE_MAGIC), data, len);
  } else {
    coap_logf(d->log, COAP_LOG_WARNING, NULL,
              "%s is not a coaps session file: ignored (a full handshake follows)",
              d->session_file);
  }
  if (data) {
    coap_memzero(data, SESSION_DATA_MAX);
    free(data);
  }
  fclose(f);
}

static void save_file(coap_dtls_context_t *d, const char *name, const gnutls_datum_t *data) {
  int fd = open(d->session_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
  if (!f || fprintf(f, "%s%s\n", FILE_MAGIC, name) < 0 ||
      fwrite(data->data, 1, data->size, f) != data->size) {
    coap_logf(d->log, COAP_LOG_WARNING, NULL, "cannot save the session to %s: %s",
              d->session_file, strerror(errno));
  }
  if (f)
    fclose(f);
  else if (fd >= 0)
    close(fd);
}

const gnutls_datum_t *coap_dtls_cache_find(coap_dtls_context_t *d, const char *name) {
  if (d->no_resume) return NULL;
  if (d->session_file && !d->session_file_loaded) load_file(d);
  for (size_t i = 0; i < SESSION_CACHE_SIZE; i++)
    if (d->cache[i].server_name && strcmp(d->cache[i].server_name, name) == 0)
      return &d->cache[i].data;
  return NULL;
}

void coap_dtls_cache_store(coap_dtls_context_t *d, const char *name,
                           const gnutls_datum_t *data) {
  if (d->no_resume || !data->size || data->size >= SESSION_DATA_MAX) return;
  put(d, name, data->data, data->size);
  if (d->session_file) save_file(d, name, data);
}

int coap_dtls_set_session_file(coap_dtls_context_t *d, const char *path) {
  if (!d || !path || !*path) return COAP_E_INVALID_ARG;
  char *copy = strdup(path);
  if (!copy) return COAP_E_NOMEM;
  free(d->session_file);
  d->session_file = copy;
  d->session_file_loaded = 0;
  return 0;
}
