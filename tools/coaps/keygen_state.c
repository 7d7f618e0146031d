/* coaps keygen --state-key FILE: the key that seals serve --state-file
 * (32 random bytes as 64 hex digits, what serve --state-key-file reads).
 * Written like the ticket key file (a new 0600 file, synced, renamed into
 * place). An existing FILE is kept unless --force: a state file sealed
 * with the old key could no longer be read, and the clients whose
 * sessions it holds would all make new handshakes at once. */
#include "keygen_state.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "keygen_ticket.h"

#define STATE_KEY_BYTES 32

int keygen_state_key(const char *path, int force) {
  struct stat sb;
  if (lstat(path, &sb) == 0 && !force) {
    cli_error(
        "%s exists: kept (a state file sealed with it could no longer be read; --force "
        "replaces it)",
        path);
    return EXIT_USAGE;
  }
  if (errno != ENOENT && !force) {
    cli_error("%s: %s", path, strerror(errno));
    return EXIT_USAGE;
  }
  uint8_t key[STATE_KEY_BYTES];
  if (gnutls_rnd(GNUTLS_RND_KEY, key, sizeof key) < 0) {
    cli_error("cannot generate a state key");
    return EXIT_SECURITY;
  }
  char text[2 * STATE_KEY_BYTES + 2];
  for (size_t i = 0; i < sizeof key; i++) snprintf(text + 2 * i, 3, "%02x", key[i]);
  text[2 * STATE_KEY_BYTES] = '\n';
  int rc = keygen_replace_file(path, text, 2 * STATE_KEY_BYTES + 1);
  explicit_bzero(key, sizeof key);
  explicit_bzero(text, sizeof text);
  if (rc < 0) return EXIT_SECURITY;
  printf("wrote %s\n", path);
  return 0;
}
