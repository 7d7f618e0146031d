/* Credentials a reload replaces: a directory of trusted raw public keys,
 * and whether a raw public key is still trusted (by its fingerprint or
 * hash). Like coap_dtls_set_cert, this reads files: the configuration is
 * built outside the sans-I/O path, once per (re)load. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <strings.h>

#include "coaps/credentials.h"
#include "security/dtls_internal.h"

int coap_dtls_trusts_rpk_fingerprint(const coap_dtls_context_t *d, const char *fingerprint) {
  if (!d || !fingerprint) return 0;
  for (size_t i = 0; i < d->n_trusted_rpk; i++) {
    char fp[112];
    coap_dtls_spki_fingerprint(&d->trusted_rpk[i], fp, sizeof fp);
    if (fp[0] && strcasecmp(fp, fingerprint) == 0) return 1;
  }
  return 0;
}

int coap_dtls_rpk_trusted_sha256(const coap_dtls_context_t *d, const uint8_t sha256[32]) {
  /* A verify callback decides on the key itself, which a compact session
   * no longer has: such a configuration revokes no raw key by itself. */
  if (d->rpk_verify) return 1;
  for (size_t i = 0; i < d->n_trusted_rpk; i++) {
    uint8_t h[32];
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, d->trusted_rpk[i].data, d->trusted_rpk[i].size, h) ==
            0 &&
        memcmp(h, sha256, sizeof h) == 0)
      return 1;
  }
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

__attribute__((format(printf, 2, 3))) static int dir_error(coap_dtls_context_t *d, const char *fmt,
                                                           ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->error, sizeof d->error, fmt, ap);
  va_end(ap);
  coap_logf(d->log, COAP_LOG_ERROR, NULL, "%s", d->error);
  return COAP_E_DTLS_CREDENTIALS;
}

/* The names of the regular files of |dir| (not starting with '.'),
 * sorted; NULL with *n = 0 and errno set when it cannot be read. */
static char **list_key_files(const char *dir, size_t *n) {
  *n = 0;
  DIR *dp = opendir(dir);
  if (!dp) return NULL;
  char **names = NULL;
  size_t cap = 0;
  struct dirent *e;
  while ((e = readdir(dp))) {
    if (e->d_name[0] == '.') continue;
    char path[4096];
    struct stat st;
    if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path ||
        stat(path, &st) != 0 || !S_ISREG(st.st_mode))
      continue;
    if (*n == cap) {
      char **grown = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof(*grown));
      if (!grown) break;
      names = grown;
    }
    if (!(names[*n] = strdup(path))) break;
    (*n)++;
  }
  closedir(dp);
  if (*n) qsort(names, *n, sizeof(*names), by_name);
  if (!names) names = calloc(1, sizeof(*names)); /* an empty directory: not an error */
  return names;
}

int coap_dtls_add_trusted_rpk_dir(coap_dtls_context_t *d, const char *dir) {
  if (!d || !dir) return COAP_E_INVALID_ARG;
  struct stat st;
  if (stat(dir, &st) != 0)
    return dir_error(d, "cannot read the directory of trusted raw public keys '%s': %s", dir,
                     strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return dir_error(d, "'%s' is not a directory%s", dir, " (of trusted raw public keys)");
  size_t n;
  char **names = list_key_files(dir, &n);
  if (!names)
    return dir_error(d, "cannot read the directory of trusted raw public keys '%s': %s", dir,
                     strerror(errno));
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    if (rc == 0) rc = coap_dtls_add_trusted_rpk(d, names[i]);
    free(names[i]);
  }
  free(names);
  return rc < 0 ? rc : (int)n;
}

/* A server session that has just completed: note who the peer is (a
 * resumed handshake skips the PSK callback and the certificate check, so
 * this is the one place that sees both kinds), and refuse a resumed one
 * whose identity or raw key a reload has removed since its ticket was
 * issued: a revoked device must not come back on an old ticket. 0, or
 * the failure (an alert sent, the diagnosis made). */
int coap_dtls_server_check_peer(coap_dtls_session_t *s) {
  if (s->client) return 0;
  const char *id = gnutls_psk_server_get_username(s->tls);
  if (id && *id) snprintf(s->psk_identity, sizeof s->psk_identity, "%s", id);
  /* An identity longer than the session keeps (a lookup callback's) is
   * not known here by name: it is neither revoked nor re-checked. */
  if (id && strlen(id) >= sizeof s->psk_identity) s->psk_identity[0] = '\0';
  unsigned n = 0;
  const gnutls_datum_t *peers = gnutls_certificate_get_peers(s->tls, &n);
  if (n > 0 && gnutls_certificate_type_get2(s->tls, GNUTLS_CTYPE_PEERS) == GNUTLS_CRT_RAWPK &&
      gnutls_hash_fast(GNUTLS_DIG_SHA256, peers[0].data, peers[0].size, s->peer_rpk_sha256) == 0)
    s->has_peer_rpk = 1;
  if (!gnutls_session_is_resumed(s->tls)) return 0;
  coap_cause_t cause = COAP_CAUSE_NONE;
  if (s->psk_identity[0] && !coap_dtls_knows_psk_identity(s->d, s->psk_identity))
    cause = COAP_CAUSE_PSK_UNKNOWN_IDENTITY;
  else if (s->has_peer_rpk && !coap_dtls_rpk_trusted(s->d, peers[0].data, peers[0].size))
    cause = COAP_CAUSE_RPK_UNTRUSTED;
  if (cause == COAP_CAUSE_NONE) return 0;
  s->failed = 1;
  coap_diag_t *g = coap_dtls_diag_start(s, cause, COAP_DETECTED_LOCAL);
  if (g) {
    g->error = COAP_E_DTLS_HANDSHAKE;
    coap_diag_explain(g,
                      "the client resumed a session of %s, which the credentials no longer "
                      "accept (removed at a reload)",
                      cause == COAP_CAUSE_RPK_UNTRUSTED ? "a raw public key" : "a PSK identity");
    coap_diag_fix(g, "add the device's credentials again if it should connect");
  }
  gnutls_alert_send(
      s->tls, GNUTLS_AL_FATAL,
      cause == COAP_CAUSE_RPK_UNTRUSTED ? GNUTLS_A_BAD_CERTIFICATE : GNUTLS_A_UNKNOWN_PSK_IDENTITY);
  return COAP_E_DTLS_HANDSHAKE;
}
