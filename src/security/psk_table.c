/* The PSK table: identity -> key for many devices, and the parser of the
 * PSK file format (from memory: reading the file is src/io/key_files.c's).
 *
 * Layout: every record [id_len][key_len][identity][key] lives in one
 * arena; the slots (open addressing, linear probing, at most half full)
 * hold the record's offset and 32 bits of its hash, so a probe touches
 * the arena only when the hash matches. A million identities cost about
 * 8 MB of slots and their bytes, and no allocation each. The arena grows
 * by copying into a new one and zeroising the old (realloc would leave
 * keys behind in freed memory). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coaps/credentials.h"
#include "coaps/error.h"
#include "common/util.h"
#include "security/dtls_internal.h"

typedef struct psk_slot {
  uint32_t offset; /* in the arena, + 1; 0: empty */
  uint32_t hash;   /* the hash's upper half */
} psk_slot_t;

struct coap_psk_table {
  atomic_uint refs;
  psk_slot_t *slots;
  size_t n_slots; /* a power of two */
  size_t count;
  uint8_t *arena;
  size_t arena_len, arena_cap;
};

/* FNV-1a with a final avalanche (the table's content is the operator's:
 * a client's identity can only probe clusters that content made). */
static uint64_t identity_hash(const char *id, size_t len) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)id[i]) * 0x100000001b3ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

static size_t slots_for(size_t expected) {
  size_t n = 16;
  while (n < expected * 2) n *= 2;
  return n;
}

coap_psk_table_t *coap_psk_table_new(size_t expected) {
  if (expected > (size_t)UINT32_MAX / 4) return NULL;
  coap_psk_table_t *t = calloc(1, sizeof(*t));
  if (!t) return NULL;
  atomic_init(&t->refs, 1);
  t->n_slots = slots_for(expected);
  t->slots = calloc(t->n_slots, sizeof(*t->slots));
  if (!t->slots) {
    free(t);
    return NULL;
  }
  return t;
}

coap_psk_table_t *coap_psk_table_ref(coap_psk_table_t *t) {
  if (t) atomic_fetch_add(&t->refs, 1);
  return t;
}

void coap_psk_table_free(coap_psk_table_t *t) {
  if (!t || atomic_fetch_sub(&t->refs, 1) != 1) return;
  if (t->arena) coap_memzero(t->arena, t->arena_len);
  free(t->arena);
  free(t->slots);
  free(t);
}

size_t coap_psk_table_count(const coap_psk_table_t *t) {
  return t ? t->count : 0;
}

size_t coap_psk_table_memory(const coap_psk_table_t *t) {
  return t ? sizeof(*t) + t->n_slots * sizeof(psk_slot_t) + t->arena_cap : 0;
}

/* The slot holding |id|, or the empty slot where it would go. */
static psk_slot_t *find_slot(const coap_psk_table_t *t, const char *id, size_t len, uint64_t h) {
  size_t mask = t->n_slots - 1;
  uint32_t tag = (uint32_t)(h >> 32);
  for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
    psk_slot_t *s = &t->slots[i];
    if (!s->offset) return s;
    if (s->hash != tag) continue;
    const uint8_t *rec = t->arena + s->offset - 1;
    if (rec[0] == len && coap_ct_memcmp(rec + 2, id, len) == 0) return s;
  }
}

static int grow_slots(coap_psk_table_t *t) {
  size_t n = t->n_slots * 2;
  psk_slot_t *grown = calloc(n, sizeof(*grown));
  if (!grown) return COAP_E_NOMEM;
  for (size_t i = 0; i < t->n_slots; i++) {
    psk_slot_t s = t->slots[i];
    if (!s.offset) continue;
    const uint8_t *rec = t->arena + s.offset - 1;
    uint64_t h = identity_hash((const char *)rec + 2, rec[0]);
    for (size_t j = (size_t)h & (n - 1);; j = (j + 1) & (n - 1))
      if (!grown[j].offset) {
        grown[j] = s;
        break;
      }
  }
  free(t->slots);
  t->slots = grown;
  t->n_slots = n;
  return 0;
}

/* Room for |more| arena bytes; the old arena is zeroised, not realloc'd. */
static int reserve_arena(coap_psk_table_t *t, size_t more) {
  if (t->arena_len + more <= t->arena_cap) return 0;
  size_t cap = t->arena_cap ? t->arena_cap * 2 : 4096;
  while (cap < t->arena_len + more) cap *= 2;
  if (cap > UINT32_MAX) return COAP_E_LIMIT;
  uint8_t *grown = malloc(cap);
  if (!grown) return COAP_E_NOMEM;
  if (t->arena) {
    memcpy(grown, t->arena, t->arena_len);
    coap_memzero(t->arena, t->arena_len);
    free(t->arena);
  }
  t->arena = grown;
  t->arena_cap = cap;
  return 0;
}

int coap_psk_table_add(coap_psk_table_t *t, const char *identity, size_t id_len, const uint8_t *key,
                       size_t key_len) {
  if (!t || !identity || !key || id_len == 0 || id_len > COAP_PSK_IDENTITY_MAX || key_len == 0 ||
      key_len > COAP_PSK_KEY_MAX || memchr(identity, '\0', id_len))
    return COAP_E_INVALID_ARG;
  uint64_t h = identity_hash(identity, id_len);
  if (find_slot(t, identity, id_len, h)->offset) return COAP_E_EXISTS;
  if ((t->count + 1) * 2 > t->n_slots) {
    int rc = grow_slots(t);
    if (rc < 0) return rc;
  }
  int rc = reserve_arena(t, 2 + id_len + key_len);
  if (rc < 0) return rc;
  uint8_t *rec = t->arena + t->arena_len;
  rec[0] = (uint8_t)id_len;
  rec[1] = (uint8_t)key_len;
  memcpy(rec + 2, identity, id_len);
  memcpy(rec + 2 + id_len, key, key_len);
  psk_slot_t *s = find_slot(t, identity, id_len, h);
  s->offset = (uint32_t)t->arena_len + 1;
  s->hash = (uint32_t)(h >> 32);
  t->arena_len += 2 + id_len + key_len;
  t->count++;
  return 0;
}

static const uint8_t *find_record(const coap_psk_table_t *t, const char *identity) {
  if (!t || !identity) return NULL;
  size_t len = strnlen(identity, COAP_PSK_IDENTITY_MAX + 1);
  if (len == 0 || len > COAP_PSK_IDENTITY_MAX) return NULL;
  const psk_slot_t *s = find_slot(t, identity, len, identity_hash(identity, len));
  return s->offset ? t->arena + s->offset - 1 : NULL;
}

int coap_psk_table_lookup(const coap_psk_table_t *t, const char *identity, uint8_t *key,
                          size_t cap) {
  const uint8_t *rec = find_record(t, identity);
  if (!rec) return COAP_E_NOT_FOUND;
  if (!key || cap < rec[1]) return COAP_E_BUFFER_TOO_SMALL;
  memcpy(key, rec + 2 + rec[0], rec[1]);
  return rec[1];
}

int coap_psk_table_contains(const coap_psk_table_t *t, const char *identity) {
  return find_record(t, identity) != NULL;
}

/* ---- the file format ---- */

typedef struct field {
  const char *p;
  size_t len;
} field_t;

static int is_blank(char c) {
  return c == ' ' || c == '\t';
}

/* Split |line| into fields (a '#' starting one ends the line); returns
 * how many (up to 3: a third means too many). */
static int split_fields(const char *line, size_t len, field_t f[3]) {
  int n = 0;
  size_t i = 0;
  while (n < 3) {
    while (i < len && is_blank(line[i])) i++;
    if (i == len || line[i] == '#') break;
    f[n].p = line + i;
    while (i < len && !is_blank(line[i])) i++;
    f[n].len = (size_t)(line + i - f[n].p);
    n++;
  }
  return n;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The key of field |f| into |key|: its length, or -1 with |what| set. */
static int decode_key(const field_t *f, uint8_t key[COAP_PSK_KEY_MAX], const char **what) {
  if (f->len < 4 || memcmp(f->p, "hex:", 4) != 0) {
    if (f->len > COAP_PSK_KEY_MAX) {
      *what = "the key is longer than 64 bytes";
      return -1;
    }
    memcpy(key, f->p, f->len);
    return (int)f->len;
  }
  const char *h = f->p + 4;
  size_t digits = f->len - 4;
  if (digits == 0) {
    *what = "the key is empty (\"hex:\" and no digits)";
    return -1;
  }
  if (digits % 2) {
    *what = "bad hex in the key (an odd number of digits)";
    return -1;
  }
  if (digits / 2 > COAP_PSK_KEY_MAX) {
    *what = "the key is longer than 64 bytes";
    return -1;
  }
  for (size_t i = 0; i < digits; i += 2) {
    int hi = hex_value(h[i]), lo = hex_value(h[i + 1]);
    if (hi < 0 || lo < 0) {
      *what = "bad hex in the key (a character that is not 0-9, a-f)";
      return -1;
    }
    key[i / 2] = (uint8_t)(hi << 4 | lo);
  }
  return (int)(digits / 2);
}

/* The line an identity was first given on, for "given twice": the
 * table does not keep it, so it is searched for in the text (only when
 * there is an error to report). */
static unsigned first_line_of(const char *text, size_t len, const field_t *id) {
  unsigned line = 1;
  const char *end = text + len;
  for (const char *p = text; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    field_t f[3];
    if (split_fields(p, n, f) >= 1 && f[0].len == id->len && memcmp(f[0].p, id->p, id->len) == 0)
      return line;
    if (!nl) break;
    p = nl + 1;
    line++;
  }
  return 0;
}

typedef struct parse_state {
  const char *name, *text;
  size_t len;
  unsigned bad_lines, first_bad;
  char *why;
  size_t why_cap;
} parse_state_t;

static void line_problem(parse_state_t *ps, unsigned line, const char *what) {
  if (!ps->bad_lines++ && ps->why && ps->why_cap) {
    ps->first_bad = line;
    snprintf(ps->why, ps->why_cap, "%s:%u: %s", ps->name, line, what);
  }
}

/* One line: 0 (a pair added, or nothing on it) or -1 (a problem said). */
static int parse_line(coap_psk_table_t *t, parse_state_t *ps, const char *p, size_t n,
                      unsigned line) {
  if (n && p[n - 1] == '\r') n--;
  if (memchr(p, '\0', n)) {
    line_problem(ps, line, "a NUL byte in the line");
    return -1;
  }
  field_t f[3];
  int k = split_fields(p, n, f);
  if (k == 0) return 0;
  if (k == 1) {
    line_problem(ps, line, "the identity has no key (want IDENTITY KEY)");
    return -1;
  }
  if (k == 3) {
    line_problem(ps, line,
                 "more than two fields (want IDENTITY KEY; neither holds "
                 "whitespace: write such a key as hex:)");
    return -1;
  }
  if (f[0].len > COAP_PSK_IDENTITY_MAX) {
    line_problem(ps, line, "the identity is longer than 64 bytes");
    return -1;
  }
  uint8_t key[COAP_PSK_KEY_MAX];
  const char *what = NULL;
  int key_len = decode_key(&f[1], key, &what);
  if (key_len < 0) {
    line_problem(ps, line, what);
    return -1;
  }
  int rc = coap_psk_table_add(t, f[0].p, f[0].len, key, (size_t)key_len);
  coap_memzero(key, sizeof key);
  if (rc == COAP_E_EXISTS) {
    char first[96];
    snprintf(first, sizeof first, "the identity '%.*s' is given twice (first on line %u)",
             (int)f[0].len, f[0].p, first_line_of(ps->text, ps->len, &f[0]));
    line_problem(ps, line, first);
    return -1;
  }
  if (rc < 0) {
    line_problem(ps, line, coap_strerror(rc));
    return -1;
  }
  return 0;
}

int coap_psk_table_parse(coap_psk_table_t *t, const char *name, const char *text, size_t len,
                         char *why, size_t why_cap) {
  if (why && why_cap) why[0] = '\0';
  if (!t || (!text && len)) return COAP_E_INVALID_ARG;
  parse_state_t ps = {name ? name : "(psk table)", text, len, 0, 0, why, why_cap};
  size_t before = t->count;
  const char *end = text + len;
  unsigned line = 1;
  for (const char *p = text; p && p < end; line++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    parse_line(t, &ps, p, n, line);
    p = nl ? nl + 1 : NULL;
  }
  if (ps.bad_lines > 1 && why && why_cap) {
    size_t used = strlen(why);
    snprintf(why + used, why_cap - used, " (and %u more bad line%s)", ps.bad_lines - 1,
             ps.bad_lines == 2 ? "" : "s");
  }
  if (ps.bad_lines) return COAP_E_DTLS_CREDENTIALS;
  return (int)(t->count - before);
}

/* ---- in a DTLS configuration ---- */

int coap_dtls_set_psk_table(coap_dtls_context_t *d, coap_psk_table_t *t) {
  if (!d) return COAP_E_INVALID_ARG;
  coap_psk_table_free(d->psk_table);
  d->psk_table = coap_psk_table_ref(t);
  return coap_dtls_psk_table_install(d);
}

int coap_dtls_knows_psk_identity(const coap_dtls_context_t *d, const char *identity) {
  if (!d || !identity || !*identity) return 0;
  if (coap_dtls_psk_find(d, identity)) return 1;
  if (d->psk_table && coap_psk_table_contains(d->psk_table, identity)) return 1;
  if (!d->psk_lookup) return 0;
  uint8_t scratch[64];
  int n = d->psk_lookup(d->psk_lookup_user, identity, scratch, sizeof scratch);
  coap_memzero(scratch, sizeof scratch);
  return n > 0;
}

/* Used by dtls_config.c's server lookup (a table before the callback). */
int coap_dtls_psk_table_key(const coap_dtls_context_t *d, const char *identity, uint8_t *key,
                            size_t cap) {
  return d->psk_table ? coap_psk_table_lookup(d->psk_table, identity, key, cap) : COAP_E_NOT_FOUND;
}
