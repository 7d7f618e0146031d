/* RFC 7252 §5.4 on a request's options, as this server implements them.
 * An option is recognised only if the server acts on it: the registry
 * knows more names than that (OSCORE; Q-Block1/2 when the configuration
 * turns Q-Block off), and a critical one it does not act on must get 4.02, never be dropped
 * silently. An occurrence of a non-repeatable option after the first, or a value outside the
 * option's length range, is treated as unrecognised (§5.4.3, §5.4.5):
 * 4.02 when critical, ignored when elective (an elective number the
 * registry does not know is left for the application to read). */
#include <stdio.h>
#include <string.h>

#include "server/server.h"

/* The critical options the server acts on (elective ones need no list:
 * one it does not act on is ignored, as the RFC says). */
static int acted_on(uint16_t number) {
  switch (number) {
    case COAP_OPTION_IF_MATCH:
    case COAP_OPTION_URI_HOST:
    case COAP_OPTION_IF_NONE_MATCH:
    case COAP_OPTION_URI_PORT:
    case COAP_OPTION_URI_PATH:
    case COAP_OPTION_URI_QUERY:
    case COAP_OPTION_ACCEPT:
    case COAP_OPTION_BLOCK2:
    case COAP_OPTION_BLOCK1: return 1;
    default: return 0;
  }
}

static int is_proxy_option(uint16_t number) {
  return number == COAP_OPTION_PROXY_URI || number == COAP_OPTION_PROXY_SCHEME;
}

static int is_qblock(uint16_t number) {
  return number == COAP_OPTION_Q_BLOCK1 || number == COAP_OPTION_Q_BLOCK2;
}

/* Why option |i| cannot be taken as it is, or NULL. Q-Block2 repeats in
 * a request for missing blocks (RFC 9177 §4.1) when Q-Block is on. */
static const char *flaw(const coap_msg_t *m, size_t i, int qblock) {
  const coap_option_t *o = &m->options[i];
  const coap_option_info_t *info = coap_option_info(o->number);
  if (!info) return "unrecognized";
  if (o->length < info->min_len || o->length > info->max_len)
    return "with a value length outside its range";
  int repeatable = info->repeatable || (qblock && o->number == COAP_OPTION_Q_BLOCK2);
  if (!repeatable && i > 0 && m->options[i - 1].number == o->number)
    return "repeated (it is not repeatable)";
  return NULL;
}

/* RFC 9177 §4.1: Q-Block and Block options in one message is 4.02. */
static int mixes_blocks(const coap_msg_t *m) {
  int q = coap_msg_find_option(m, COAP_OPTION_Q_BLOCK1) ||
          coap_msg_find_option(m, COAP_OPTION_Q_BLOCK2);
  int b =
      coap_msg_find_option(m, COAP_OPTION_BLOCK1) || coap_msg_find_option(m, COAP_OPTION_BLOCK2);
  return q && b;
}

static void name_option(uint16_t number, char *buf, size_t cap) {
  const coap_option_info_t *info = coap_option_info(number);
  if (info)
    snprintf(buf, cap, "%s (%u)", info->name, number);
  else
    snprintf(buf, cap, "%u", number);
}

int coap_server_check_options(const coap_msg_t *req, coap_msg_t *scratch, const coap_msg_t **clean,
                              char *why, size_t why_cap) {
  return coap_server_check_options_qb(req, 0, scratch, clean, why, why_cap);
}

int coap_server_check_options_qb(const coap_msg_t *req, int qblock, coap_msg_t *scratch,
                                 const coap_msg_t **clean, char *why, size_t why_cap) {
  int drop = 0;
  char name[48];
  *clean = req;
  if (qblock && mixes_blocks(req)) {
    snprintf(why, why_cap, "Q-Block and Block options in one request (RFC 9177 4.1)");
    return COAP_BAD_OPTION;
  }
  for (size_t i = 0; i < req->n_options; i++) {
    uint16_t n = req->options[i].number;
    const char *f = flaw(req, i, qblock);
    if (!COAP_OPTION_IS_CRITICAL(n)) {
      /* An unregistered elective one stays: the application may use it. */
      drop |= f != NULL && coap_option_info(n) != NULL;
      continue;
    }
    if (!f && is_proxy_option(n)) {
      name_option(n, name, sizeof name);
      snprintf(why, why_cap, "%s: this server is no proxy", name);
      return COAP_PROXYING_NOT_SUPPORTED;
    }
    if (!f && !acted_on(n) && !(qblock && is_qblock(n))) f = "not implemented here";
    if (f) {
      name_option(n, name, sizeof name);
      snprintf(why, why_cap, "critical option %s %s", name, f);
      return COAP_BAD_OPTION;
    }
  }
  if (!drop) return 0;
  /* Elective options to ignore: the handler gets a copy without them, so
   * that what it reads is what the server accepted. */
  *scratch = *req;
  scratch->n_options = 0;
  for (size_t i = 0; i < req->n_options; i++)
    if (COAP_OPTION_IS_CRITICAL(req->options[i].number) || !flaw(req, i, qblock) ||
        !coap_option_info(req->options[i].number))
      scratch->options[scratch->n_options++] = req->options[i];
  *clean = scratch;
  return 0;
}
