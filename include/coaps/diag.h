/* coaps — why a connection failed: a named cause, the handshake step it
 * was found at, who found it, and a fix.
 *
 * Every failed coaps:// (and coap://) exchange leaves a coap_diag_t:
 * handed to the request's callback (coap_reply_t.diag), kept as the
 * context's last diagnosis (coap_context_last_diag) and counted per cause
 * (coap_stats_t.failures_by_cause). The table behind coap_cause_info() is
 * the one the tool prints and the README's "When the handshake fails"
 * section is checked against.
 */
#ifndef COAPS_DIAG_H
#define COAPS_DIAG_H

#include <stdint.h>

#include "coaps/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Numbers are stable: scripts may compare them. Like every public enum, a
 * new value only ever goes at the end (before COAP_CAUSE_COUNT, which
 * must stay within COAP_STATS_CAUSE_SLOTS). */
typedef enum coap_cause {
  COAP_CAUSE_NONE = 0,
  COAP_CAUSE_NO_CREDENTIALS = 1,        /* coaps:// with nothing to authenticate the server */
  COAP_CAUSE_PSK_KEY_MISMATCH = 2,      /* same identity, different keys */
  COAP_CAUSE_PSK_UNKNOWN_IDENTITY = 3,  /* the server has no key for the identity */
  COAP_CAUSE_CERT_UNTRUSTED = 4,        /* peer certificate from a CA not trusted here */
  COAP_CAUSE_CERT_EXPIRED = 5,          /* peer certificate past its notAfter */
  COAP_CAUSE_CERT_NOT_YET_VALID = 6,    /* peer certificate before its notBefore */
  COAP_CAUSE_CERT_NAME_MISMATCH = 7,    /* server certificate does not name the host */
  COAP_CAUSE_CERT_INVALID = 8,          /* bad signature, revoked, weak algorithm, ... */
  COAP_CAUSE_CLIENT_CERT_MISSING = 9,   /* server requires a client certificate */
  COAP_CAUSE_CLIENT_CERT_REJECTED = 10, /* server refused the certificate/raw key we sent */
  COAP_CAUSE_SERVER_CERT_REJECTED = 11, /* (server side) the client refused ours */
  COAP_CAUSE_RPK_UNTRUSTED = 12,        /* peer raw public key not pinned here */
  COAP_CAUSE_NO_COMMON_SUITE = 13,      /* no security mode / cipher suite in common */
  COAP_CAUSE_PORT_UNREACHABLE = 14,     /* ICMP port unreachable: nothing listening */
  COAP_CAUSE_PLAIN_COAP_PEER = 15,      /* coaps:// to a plain CoAP port */
  COAP_CAUSE_DTLS_PEER = 16,            /* coap:// to a DTLS port */
  COAP_CAUSE_NO_ANSWER = 17,            /* silence: host down, filtered, wrong address */
  COAP_CAUSE_MTU = 18,                  /* handshake datagrams over the path MTU lost */
  COAP_CAUSE_SESSION_LOST = 19,         /* server forgot the session; new handshake made */
  COAP_CAUSE_PEER_CLOSED = 20,          /* the peer closed the session */
  COAP_CAUSE_PROTOCOL = 21,             /* any other DTLS failure */
  COAP_CAUSE_NAT_REBINDING = 22,        /* (server side) encrypted records from an address
                                           with no session: a NAT gave the client a new port */
  COAP_CAUSE_TICKET_KEY_UNKNOWN = 23,   /* (server side) a client's session ticket sealed with
                                           a key this server does not hold: full handshake */
  COAP_CAUSE_COUNT
} coap_cause_t;

/* How far the handshake got. New steps only at the end (before
 * COAP_STEP_COUNT, which must stay within COAP_REPORT_STEP_SLOTS). */
typedef enum coap_dtls_step {
  COAP_STEP_NONE = 0,       /* nothing sent */
  COAP_STEP_HELLO,          /* ClientHello sent, waiting for an answer */
  COAP_STEP_COOKIE,         /* cookie exchange (HelloVerifyRequest) */
  COAP_STEP_NEGOTIATION,    /* ServerHello: version and cipher suite chosen */
  COAP_STEP_AUTHENTICATION, /* certificates, raw keys or PSK identity */
  COAP_STEP_FINISHED,       /* key confirmation (Finished messages) */
  COAP_STEP_ESTABLISHED,    /* application data */
  COAP_STEP_COUNT
} coap_dtls_step_t;

/* Who noticed. */
typedef enum coap_detector {
  COAP_DETECTED_NONE = 0,
  COAP_DETECTED_CONFIG,     /* before anything was sent */
  COAP_DETECTED_LOCAL,      /* a check of ours (then we sent the alert) */
  COAP_DETECTED_PEER_ALERT, /* the peer's alert */
  COAP_DETECTED_NETWORK,    /* ICMP, silence, what came back on the port */
  COAP_DETECTED_COUNT
} coap_detector_t;

/* What kind of problem: the tool's exit codes follow it. */
typedef enum coap_cause_class {
  COAP_CLASS_NONE = 0,
  COAP_CLASS_CONFIG,      /* fix the local configuration */
  COAP_CLASS_NETWORK,     /* the port, the protocol or the path */
  COAP_CLASS_NO_ANSWER,   /* nothing came back */
  COAP_CLASS_TRUST,       /* keys, certificates, names */
  COAP_CLASS_NEGOTIATION, /* no mode or suite in common */
  COAP_CLASS_OTHER
} coap_cause_class_t;

/* Made by the library (a static table, coap_cause_info): fields are only
 * ever appended (export.h), no version. */
typedef struct coap_cause_info {
  coap_cause_t cause;
  const char *name;    /* "psk-key-mismatch": stable, for scripts */
  const char *summary; /* one line: what is wrong */
  const char *fix;     /* one line: what to do */
  coap_cause_class_t cls;
} coap_cause_info_t;

/* Filled by the library into the program's struct
 * (coap_context_last_diag): versioned (export.h). Handed by pointer
 * (coap_reply_t.diag), it is read up to the fields the program knows. */
typedef struct coap_diag {
  coap_cause_t cause;
  int error;             /* the COAP_E_... code returned for it */
  coap_dtls_step_t step; /* how far the handshake got */
  coap_detector_t detected_by;
  int alert;             /* alert received or sent, -1: none */
  char alert_name[40];   /* "decrypt_error" */
  int is_server;         /* we were the server of the handshake */
  char peer[64];         /* "[192.0.2.1:5684]", as log lines prefix it */
  char explanation[640]; /* the specifics, one or two sentences */
  char fix[320];         /* what to do, with the specifics */
  unsigned flights;      /* handshake flights we sent (with resends) */
  uint32_t elapsed_ms;   /* from the first flight to the verdict */
} coap_diag_t;

/* Versions of coap_diag_t; each one's layout is frozen. It is also the
 * last field of coap_handshake_report_t: a new field here takes a new
 * COAP_HANDSHAKE_REPORT_V.. too (docs/architecture.md, "ABI"). */
#define COAP_DIAG_V1 1
#define COAP_DIAG_VERSION COAP_DIAG_V1

/* A certificate the peer presented, for reports: part of
 * coap_handshake_report_t, whose version covers it. */
typedef struct coap_peer_cert_info {
  char subject[256];
  char issuer[256];
  int64_t not_before, not_after; /* seconds since the epoch (UTC) */
  char names[256];               /* "DNS:a.example, IP:192.0.2.1" */
} coap_peer_cert_info_t;

#define COAP_REPORT_MAX_CERTS 4
/* Room for this many steps in coap_handshake_report_t.step_ms: a new
 * coap_dtls_step_t value takes a slot without moving any field (the
 * library checks COAP_STEP_COUNT fits). */
#define COAP_REPORT_STEP_SLOTS 12

/* What a client's handshake did, step by step (coap_context_last_handshake):
 * for `coaps doctor` and anyone who wants to show it. Filled by the
 * library into the program's struct: versioned (export.h). */
typedef struct coap_handshake_report {
  int attempted;
  int established;
  int resumed;
  int cookie;            /* the server asked for a cookie */
  char version[16];      /* "DTLS1.2" */
  char suite[64];        /* "TLS_PSK_WITH_AES_128_CCM_8" */
  char mode[16];         /* "psk", "x509", "rpk" */
  char server_name[256]; /* the name checked against the certificate */
  /* Milliseconds from the first flight to reaching each step; 0: not
   * reached (COAP_STEP_HELLO is always 0; index: coap_dtls_step_t, below
   * COAP_STEP_COUNT). */
  uint32_t step_ms[COAP_REPORT_STEP_SLOTS];
  coap_dtls_step_t step; /* the last step reached */
  unsigned flights;
  unsigned n_certs;
  coap_peer_cert_info_t certs[COAP_REPORT_MAX_CERTS];
  char peer_rpk[112]; /* "sha256:..." when the server used a raw key */
  coap_diag_t diag;   /* cause NONE when it worked */
} coap_handshake_report_t;

/* Versions of coap_handshake_report_t; each one's layout is frozen. */
#define COAP_HANDSHAKE_REPORT_V1 1
#define COAP_HANDSHAKE_REPORT_VERSION COAP_HANDSHAKE_REPORT_V1

/* The table entry for |cause| (never NULL: out-of-range gives NONE's). */
COAPS_API const coap_cause_info_t *coap_cause_info(coap_cause_t cause);
/* "psk-key-mismatch"; the summary line (a coap_strerror for causes). */
COAPS_API const char *coap_cause_name(coap_cause_t cause);
COAPS_API const char *coap_cause_str(coap_cause_t cause);
/* The cause named |name|, or -1. */
COAPS_API int coap_cause_from_name(const char *name);
COAPS_API const char *coap_step_name(coap_dtls_step_t step);
COAPS_API const char *coap_detector_name(coap_detector_t d);

#ifdef __cplusplus
}
#endif
#endif
