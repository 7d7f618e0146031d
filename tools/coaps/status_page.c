/* The status page: / is a small self-contained HTML page (no external
 * assets) whose inline script reads /status.json every two seconds and
 * shows it. Everything from the network (peer addresses, identities) is
 * escaped twice over: as JSON strings here (with <, > and & as \u
 * escapes), and put into the page as text nodes (textContent), never as
 * markup. "/?filter=TEXT" opens it filtered (a link for one device). */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "metrics.h"

static void json_field(text_buf_t *b, const char *name, const char *value, int comma) {
  text_printf(b, "%s\"%s\":\"", comma ? "," : "", name);
  text_json_string(b, value);
  text_printf(b, "\"");
}

static void iso_time(double unix_s, char *buf, size_t cap) {
  time_t t = (time_t)unix_s;
  struct tm tm;
  if (!gmtime_r(&t, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm)) snprintf(buf, cap, "?");
}

static void json_failure(text_buf_t *b, const metrics_view_t *v, const coap_failure_record_t *f) {
  char when[32];
  double at = metrics_failure_unix(v, f);
  iso_time(at, when, sizeof when);
  text_printf(b, "{\"unix\":%.3f", at);
  json_field(b, "time", when, 1);
  json_field(b, "peer", f->peer, 1);
  json_field(b, "identity", f->identity, 1);
  json_field(b, "mode", coap_dtls_mode_name(f->mode), 1);
  json_field(b, "cause", coap_cause_name(f->cause), 1);
  json_field(b, "summary", coap_cause_str(f->cause), 1);
  json_field(b, "explanation", f->explanation, 1);
  json_field(b, "fix", f->fix, 1);
  text_printf(b, ",\"as_server\":%s}", f->is_server ? "true" : "false");
}

static void json_sessions(text_buf_t *b, const coap_stats_t *s) {
  text_printf(b, "\"sessions\":{");
  for (int m = COAP_DTLS_MODE_PSK; m < COAP_DTLS_MODE_COUNT; m++)
    text_printf(b, "%s\"%s\":%" PRIu64, m > COAP_DTLS_MODE_PSK ? "," : "",
                coap_dtls_mode_name((coap_dtls_mode_t)m), s->dtls_sessions_by_mode[m]);
  text_printf(b, "},\"peers\":%" PRIu64, s->peers);
}

static void json_handshakes(text_buf_t *b, const coap_stats_t *s) {
  uint64_t failed = 0;
  for (int m = 0; m < COAP_DTLS_MODE_COUNT; m++) failed += s->dtls_failures_by_mode[m];
  uint64_t ok = s->dtls_handshakes, all = ok + failed;
  text_printf(b,
              ",\"handshakes\":{\"ok\":%" PRIu64 ",\"resumed\":%" PRIu64 ",\"failed\":%" PRIu64
              ",\"success_rate\":",
              ok, s->dtls_resumed, failed);
  if (all)
    text_printf(b, "%.4f}", (double)ok / (double)all);
  else
    text_printf(b, "null}");
}

static void json_causes(text_buf_t *b, const coap_stats_t *s) {
  text_printf(b, ",\"causes\":[");
  int first = 1;
  for (int c = 1; c < COAP_CAUSE_COUNT; c++) {
    if (!s->failures_by_cause[c]) continue;
    text_printf(b, "%s{\"count\":%" PRIu64, first ? "" : ",", s->failures_by_cause[c]);
    json_field(b, "cause", coap_cause_name((coap_cause_t)c), 1);
    json_field(b, "summary", coap_cause_str((coap_cause_t)c), 1);
    text_printf(b, "}");
    first = 0;
  }
  text_printf(b, "]");
}

void status_json(const metrics_view_t *v, text_buf_t *out) {
  text_printf(out, "{\"uptime_seconds\":%" PRId64 ",\"workers\":%ld,",
              v->now_unix - v->started_unix, v->workers_published);
  json_sessions(out, &v->sum);
  json_handshakes(out, &v->sum);
  json_causes(out, &v->sum);
  text_printf(out,
              ",\"reloads\":{\"ok\":%" PRIu64 ",\"failed\":%" PRIu64
              ",\"last_success_unix\":%" PRId64 "}",
              v->reloads.ok, v->reloads.failed, v->reloads.last_success_unix);
  text_printf(out, ",\"failures\":[");
  for (size_t i = 0; i < v->n_failures; i++) {
    if (i) text_printf(out, ",");
    json_failure(out, v, &v->failures[i]);
  }
  text_printf(out, "]}\n");
}

/* The page. Its script builds every cell with textContent. */
const char status_page_html[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>coaps status</title>\n"
    "<style>\n"
    "body{font-family:sans-serif;margin:1.5em;color:#222}\n"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}\n"
    "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}\n"
    "th{background:#eee}.num{text-align:right}#err{color:#b00}\n"
    "td.fix{color:#060}#failtable{width:100%}td{overflow-wrap:anywhere}\n"
    "</style></head><body>\n"
    "<h1>coaps server status</h1>\n"
    "<p id=\"err\"></p>\n"
    "<p>Up <span id=\"uptime\">?</span>; handshake success rate <span id=\"rate\">?</span>"
    " (<span id=\"ok\">?</span> completed, <span id=\"failed\">?</span> failed);"
    " <span id=\"peers\">?</span> clients known. Updated <span id=\"updated\">never</span>.</p>\n"
    "<h2>Sessions by mode</h2>\n"
    "<table><thead><tr><th>mode</th><th>established sessions</th></tr></thead>"
    "<tbody id=\"sessions\"></tbody></table>\n"
    "<h2>Failures by cause</h2>\n"
    "<table><thead><tr><th>cause</th><th>count</th><th>what it means</th></tr></thead>"
    "<tbody id=\"causes\"></tbody></table>\n"
    "<h2>Last failed handshakes</h2>\n"
    "<p><label>Filter by identity or address: <input id=\"filter\" type=\"search\" "
    "placeholder=\"identity or address\"></label></p>\n"
    "<table id=\"failtable\"><thead><tr><th>time (UTC)</th><th>peer</th>"
    "<th>identity / subject / key</th>"
    "<th>cause</th><th>what happened</th><th>fix</th></tr></thead>"
    "<tbody id=\"failures\"></tbody></table>\n"
    "<noscript>This page needs JavaScript; the same data is at "
    "<a href=\"status.json\">status.json</a>.</noscript>\n"
    "<script>\n"
    "'use strict';\n"
    "let last = null;\n"
    "function row(cells, classes) {\n"
    "  const tr = document.createElement('tr');\n"
    "  cells.forEach((c, i) => {\n"
    "    const td = document.createElement('td');\n"
    "    td.textContent = String(c);\n"
    "    if (classes && classes[i]) td.className = classes[i];\n"
    "    tr.appendChild(td);\n"
    "  });\n"
    "  return tr;\n"
    "}\n"
    "function fill(id, rows) { document.getElementById(id).replaceChildren(...rows); }\n"
    "function text(id, t) { document.getElementById(id).textContent = String(t); }\n"
    "function duration(s) {\n"
    "  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),\n"
    "        m = Math.floor(s % 3600 / 60);\n"
    "  return (d ? d + 'd ' : '') + (h ? h + 'h ' : '') + m + 'm ' + (s % 60) + 's';\n"
    "}\n"
    "function render() {\n"
    "  if (!last) return;\n"
    "  const st = last, q = document.getElementById('filter').value.trim().toLowerCase();\n"
    "  text('uptime', duration(st.uptime_seconds));\n"
    "  const h = st.handshakes;\n"
    "  text('rate', h.success_rate === null ? 'n/a' : (100 * h.success_rate).toFixed(1) + '%');\n"
    "  text('ok', h.ok); text('failed', h.failed); text('peers', st.peers);\n"
    "  fill('sessions', Object.keys(st.sessions).map(m => row([m, st.sessions[m]], [0, 'num'])));\n"
    "  fill('causes', st.causes.map(c => row([c.cause, c.count, c.summary], [0, 'num', 0])));\n"
    "  const shown = st.failures.filter(f => !q ||\n"
    "      f.identity.toLowerCase().includes(q) || f.peer.toLowerCase().includes(q));\n"
    "  fill('failures', shown.map(f => row([f.time.replace('T', ' ').replace('Z', ''), f.peer,\n"
    "      f.identity || '(none)', f.cause, f.explanation, f.fix], [0, 0, 0, 0, 0, 'fix'])));\n"
    "}\n"
    "async function refresh() {\n"
    "  try {\n"
    "    const r = await fetch('status.json', {cache: 'no-store'});\n"
    "    if (!r.ok) throw new Error('status.json: HTTP ' + r.status);\n"
    "    last = await r.json();\n"
    "    text('err', ''); text('updated', new Date().toISOString());\n"
    "    render();\n"
    "  } catch (e) { text('err', 'cannot reach the server: ' + e.message); }\n"
    "}\n"
    "const asked = new URLSearchParams(location.search).get('filter');\n"
    "if (asked) document.getElementById('filter').value = asked;\n"
    "document.getElementById('filter').addEventListener('input', render);\n"
    "refresh();\n"
    "setInterval(refresh, 2000);\n"
    "</script>\n"
    "</body></html>\n";
