/* coaps doctor: from the library's handshake report to the doctor's steps,
 * and the steps as text, JSON, or (--causes) the cause table. */
#include <string.h>
#include <time.h>

#include "doctor.h"

static const char *const step_names[S_COUNT] = {"resolve",          "credentials", "probe port",
                                                "cookie exchange",  "negotiation", "authentication",
                                                "key confirmation", "CoAP request"};

static const char *const status_names[] = {"not reached", "ok", "warning", "FAILED", "skipped"};

void doctor_init_steps(doctor_t *d) {
  for (int i = 0; i < S_COUNT; i++) d->steps[i].name = step_names[i];
}

static void set(doctor_t *d, int i, step_status_t st, long ms, const char *detail) {
  d->steps[i].status = st;
  d->steps[i].ms = ms;
  snprintf(d->steps[i].detail, sizeof d->steps[i].detail, "%s", detail);
}

void doctor_fill_handshake_steps(doctor_t *d) {
  const coap_handshake_report_t *r = &d->rep;
  const uint32_t *ms = r->step_ms;
  char text[512];
  if (r->cookie)
    set(d, S_COOKIE, ST_OK, ms[COAP_STEP_COOKIE],
        "the server asked for a cookie "
        "(HelloVerifyRequest) and got it back");
  else if (r->step >= COAP_STEP_NEGOTIATION)
    set(d, S_COOKIE, ST_OK, 0, "the server did not ask for a cookie");
  if (r->step >= COAP_STEP_NEGOTIATION) {
    if (r->suite[0])
      snprintf(text, sizeof text, "%s, %s%s", r->version, r->suite,
               r->resumed ? " (session resumed)" : "");
    else
      snprintf(text, sizeof text, "ServerHello received");
    set(d, S_NEGOTIATION, ST_OK, ms[COAP_STEP_NEGOTIATION], text);
  }
  if (r->established || r->step > COAP_STEP_AUTHENTICATION) {
    if (strcmp(r->mode, "psk") == 0)
      snprintf(text, sizeof text, "pre-shared key, identity \"%s\"",
               d->a.sec.psk_identity ? d->a.sec.psk_identity : "");
    else if (strcmp(r->mode, "rpk") == 0)
      snprintf(text, sizeof text, "the server's raw public key %s is pinned here", r->peer_rpk);
    else if (r->resumed)
      snprintf(text, sizeof text, "resumed: authenticated in the original handshake");
    else
      snprintf(text, sizeof text,
               "the server's certificate chain (%u) is trusted and names "
               "\"%s\"",
               r->n_certs, r->server_name);
    set(d, S_AUTHENTICATION, ST_OK, ms[COAP_STEP_AUTHENTICATION], text);
  }
  if (r->established)
    set(d, S_FINISHED, ST_OK, ms[COAP_STEP_FINISHED],
        "both Finished messages verified: "
        "the keys match");
}

int doctor_step_of(const doctor_t *d) {
  const coap_diag_t *g = &d->diag;
  switch (g->cause) {
    case COAP_CAUSE_PORT_UNREACHABLE:
    case COAP_CAUSE_PLAIN_COAP_PEER:
    case COAP_CAUSE_DTLS_PEER: return S_PROBE;
    case COAP_CAUSE_NO_CREDENTIALS: return S_CREDENTIALS;
    case COAP_CAUSE_NO_COMMON_SUITE: return S_NEGOTIATION;
    case COAP_CAUSE_PSK_KEY_MISMATCH: return S_FINISHED;
    case COAP_CAUSE_PSK_UNKNOWN_IDENTITY:
    case COAP_CAUSE_CERT_UNTRUSTED:
    case COAP_CAUSE_CERT_EXPIRED:
    case COAP_CAUSE_CERT_NOT_YET_VALID:
    case COAP_CAUSE_CERT_NAME_MISMATCH:
    case COAP_CAUSE_CERT_INVALID:
    case COAP_CAUSE_CLIENT_CERT_MISSING:
    case COAP_CAUSE_CLIENT_CERT_REJECTED:
    case COAP_CAUSE_RPK_UNTRUSTED:
    case COAP_CAUSE_MTU: return S_AUTHENTICATION;
    default: break;
  }
  if (!d->secure || !d->has_rep || d->rep.established) return S_REQUEST;
  /* Silence or an unexplained end: the step after the last one reached. */
  switch (d->rep.step) {
    case COAP_STEP_NONE:
    case COAP_STEP_HELLO: return S_COOKIE;
    case COAP_STEP_COOKIE: return S_NEGOTIATION;
    case COAP_STEP_NEGOTIATION: return S_AUTHENTICATION;
    default: return S_FINISHED;
  }
}

/* ---- text ---- */

static void format_date(int64_t t, char *buf, size_t cap) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (!gmtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%d", &tm)) snprintf(buf, cap, "?");
}

static void print_chain(const coap_handshake_report_t *r) {
  for (unsigned i = 0; i < r->n_certs; i++) {
    const coap_peer_cert_info_t *c = &r->certs[i];
    char from[16], until[16];
    format_date(c->not_before, from, sizeof from);
    format_date(c->not_after, until, sizeof until);
    printf("      certificate %u: %s\n        issued by %s, valid %s to %s\n        names: %s\n",
           i + 1, c->subject, c->issuer, from, until, c->names);
  }
  if (r->peer_rpk[0]) printf("      raw public key: %s\n", r->peer_rpk);
}

/* What a step says; a failed step without its own words says its cause
 * (the same in the text and the JSON output). */
static const char *step_detail(const doctor_t *d, const doctor_step_t *s) {
  return s->status == ST_FAILED && !s->detail[0] ? coap_cause_str(d->diag.cause) : s->detail;
}

static void hex_into(char *out, size_t cap, const uint8_t *b, size_t n) {
  if (!n) {
    snprintf(out, cap, "(empty)");
    return;
  }
  for (size_t i = 0; i < n && 2 * i + 3 <= cap; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* Whether the session survives a change of the client's address: with
 * Connection ID it does; without, the server sees the moved client as a
 * stranger (nat-rebinding) and a new handshake follows. */
static void print_cid(const doctor_t *d) {
  if (!d->has_cid) return;
  if (!d->cid.negotiated) {
    printf(
        "  %-17s %-11s %7s  not negotiated: if a NAT changes this client's port, the "
        "server drops its records [%s] and a new handshake follows; fix: %s\n",
        "connection id", "warning", "", coap_cause_name(COAP_CAUSE_NAT_REBINDING),
        coap_cause_info(COAP_CAUSE_NAT_REBINDING)->fix);
    return;
  }
  char own[2 * 32 + 1] = "", peer[2 * 32 + 1] = "";
  hex_into(own, sizeof own, d->cid.own, d->cid.own_len);
  hex_into(peer, sizeof peer, d->cid.peer, d->cid.peer_len);
  printf(
      "  %-17s %-11s %7s  negotiated; ours %s, the server's %s (the session survives a "
      "change of address)\n",
      "connection id", "ok", "", own, peer);
}

void doctor_print_text(const doctor_t *d) {
  printf("coaps doctor %s\n", d->a.uri);
  for (int i = 0; i < S_COUNT; i++) {
    const doctor_step_t *s = &d->steps[i];
    if (!d->secure && i >= S_COOKIE && i <= S_FINISHED) continue;
    char ms[16] = "";
    if (s->status == ST_OK || s->status == ST_WARN || s->status == ST_FAILED)
      snprintf(ms, sizeof ms, "%ld ms", s->ms);
    printf("  %-17s %-11s %7s  %s\n", s->name, status_names[s->status], ms, step_detail(d, s));
    if (i == S_AUTHENTICATION && d->has_rep && (d->rep.n_certs || d->rep.peer_rpk[0]))
      print_chain(&d->rep);
  }
  print_cid(d);
  if (!d->failed) {
    printf("result: the connection works");
    if (d->has_rep && d->rep.established)
      printf(" (%s, %s, handshake %u ms)", d->rep.version, d->rep.suite,
             d->rep.step_ms[COAP_STEP_ESTABLISHED]);
    printf("\n");
    return;
  }
  if (d->resolve_failed) {
    printf(
        "result: FAILED at resolve: the host name is unknown\n"
        "  fix: check the spelling, or use an IP address\n");
    return;
  }
  char origin[256];
  cli_diag_origin(&d->diag, origin, sizeof origin);
  printf("result: FAILED at %s: %s [%s]\n  why: %s\n  how: %s\n  fix: %s\n",
         step_names[d->failed_step], coap_cause_str(d->diag.cause), coap_cause_name(d->diag.cause),
         d->diag.explanation, origin, d->diag.fix);
}

/* ---- JSON ---- */

static void json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

static void json_field(const char *name, const char *value, int comma) {
  printf("%s\"%s\":", comma ? "," : "", name);
  json_string(value);
}

static const char *class_name(coap_cause_class_t c) {
  static const char *const names[] = {"none",  "config",      "network", "no-answer",
                                      "trust", "negotiation", "other"};
  return (int)c >= 0 && c <= COAP_CLASS_OTHER ? names[c] : "other";
}

static void json_report(const coap_handshake_report_t *r) {
  printf(",\"dtls\":{");
  json_field("version", r->version, 0);
  json_field("suite", r->suite, 1);
  json_field("mode", r->mode, 1);
  printf(",\"resumed\":%s,\"cookie\":%s", r->resumed ? "true" : "false",
         r->cookie ? "true" : "false");
  json_field("peer_rpk", r->peer_rpk, 1);
  printf(",\"certs\":[");
  for (unsigned i = 0; i < r->n_certs; i++) {
    const coap_peer_cert_info_t *c = &r->certs[i];
    printf("%s{", i ? "," : "");
    json_field("subject", c->subject, 0);
    json_field("issuer", c->issuer, 1);
    printf(",\"not_before\":%lld,\"not_after\":%lld", (long long)c->not_before,
           (long long)c->not_after);
    json_field("names", c->names, 1);
    printf("}");
  }
  printf("]}");
}

static void json_failure(const doctor_t *d) {
  const coap_diag_t *g = &d->diag;
  printf(",\"failure\":{");
  json_field("step", step_names[d->failed_step], 0);
  if (d->resolve_failed) {
    json_field("cause", "resolve", 1);
    json_field("why", d->steps[S_RESOLVE].detail, 1);
    printf("}");
    return;
  }
  json_field("cause", coap_cause_name(g->cause), 1);
  printf(",\"cause_code\":%d", (int)g->cause);
  json_field("class", class_name(coap_cause_info(g->cause)->cls), 1);
  json_field("handshake_step", coap_step_name(g->step), 1);
  json_field("detected_by", coap_detector_name(g->detected_by), 1);
  json_field("alert", g->alert >= 0 ? g->alert_name : "", 1);
  json_field("summary", coap_cause_str(g->cause), 1);
  json_field("why", g->explanation, 1);
  json_field("fix", g->fix, 1);
  printf(",\"flights\":%u,\"elapsed_ms\":%u}", g->flights, g->elapsed_ms);
}

void doctor_print_json(const doctor_t *d) {
  printf("{");
  json_field("uri", d->a.uri, 0);
  printf(",\"ok\":%s,\"exit\":%d,\"steps\":[", d->failed ? "false" : "true", doctor_exit_code(d));
  int first = 1;
  for (int i = 0; i < S_COUNT; i++) {
    const doctor_step_t *s = &d->steps[i];
    if (!d->secure && i >= S_COOKIE && i <= S_FINISHED) continue;
    printf("%s{", first ? "" : ",");
    first = 0;
    json_field("name", s->name, 0);
    json_field("status", s->status == ST_FAILED ? "failed" : status_names[s->status], 1);
    printf(",\"ms\":%ld", s->ms);
    json_field("detail", step_detail(d, s), 1);
    printf("}");
  }
  printf("]");
  if (d->has_rep) json_report(&d->rep);
  if (d->has_cid) {
    char own[2 * 32 + 1] = "", peer[2 * 32 + 1] = "";
    hex_into(own, sizeof own, d->cid.own, d->cid.own_len);
    hex_into(peer, sizeof peer, d->cid.peer, d->cid.peer_len);
    printf(",\"connection_id\":{\"negotiated\":%s", d->cid.negotiated ? "true" : "false");
    json_field("ours", d->cid.negotiated && d->cid.own_len ? own : "", 1);
    json_field("server", d->cid.negotiated && d->cid.peer_len ? peer : "", 1);
    printf("}");
  }
  if (!d->failed && d->code) {
    printf(",\"response\":");
    json_string(coap_code_name(d->code));
  }
  if (d->failed) json_failure(d);
  printf("}\n");
}

/* ---- the cause table ---- */

void doctor_print_causes(int markdown) {
  if (markdown) {
    printf("| cause | what it means | fix | `coaps doctor` exit |\n|---|---|---|---|\n");
  }
  for (int c = 1; c < COAP_CAUSE_COUNT; c++) {
    const coap_cause_info_t *i = coap_cause_info((coap_cause_t)c);
    doctor_t probe = {.failed = 1, .diag = {.cause = (coap_cause_t)c}};
    if (markdown)
      printf("| `%s` | %s | %s | %d |\n", i->name, i->summary, i->fix, doctor_exit_code(&probe));
    else
      printf("%-21s %s\n%-21s fix: %s\n", i->name, i->summary, "", i->fix);
  }
}
