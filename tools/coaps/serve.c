/* coaps serve: a CoAP server with the demo resources. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "security_flags.h"

typedef struct serve_args {
  const char *address;
  long port, dtls_port;
  int verbose;
  security_flags_t sec;
} serve_args_t;

static void serve_usage(FILE *out) {
  fprintf(out,
          "usage: coaps serve [options]\n"
          "\n"
          "Serve the demo resources /temp, /time, /store, /echo and\n"
          "/.well-known/core until SIGINT or SIGTERM.\n"
          "\n"
          "  -p, --port N       coap:// port (default 5683; 0 picks a free one)\n"
          "      --dtls-port N  coaps:// port (default 5684; 0 picks a free one),\n"
          "                     served when credentials are given\n"
          "  -a, --address ADDR address to bind (default :: — IPv6 and IPv4)\n"
          "  -v, --verbose      log handshakes and failures (-vv: debug)\n"
          "  -h, --help         this help\n"
          "\n");
  security_flags_usage(out, 1);
  fprintf(out,
          "\n"
          "For each endpoint a line 'coaps: listening on coap://ADDR:PORT' (or\n"
          "coaps://) is printed on standard output with the port actually bound.\n"
          "\n"
          "Example: coaps serve --psk-identity me --psk secret \\\n"
          "           --cert server-cert.pem --key server-key.pem\n");
}

static int parse_port(const char *flag, const char *text, long *out) {
  char *end;
  long v = strtol(text, &end, 10);
  if (*text == '\0' || *end || v < 0 || v > 65535) {
    cli_error("%s wants a number from 0 to 65535, got '%s'", flag, text);
    return -1;
  }
  *out = v;
  return 0;
}

static int parse_serve_args(serve_args_t *a, int argc, char **argv) {
  static const struct option base_options[] = {
      {"port", required_argument, NULL, 'p'},
      {"dtls-port", required_argument, NULL, 'D'},
      {"address", required_argument, NULL, 'a'},
      {"verbose", no_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},
  };
  struct option longopts[32];
  memcpy(longopts, base_options, sizeof base_options);
  security_options_merge(longopts, sizeof base_options / sizeof base_options[0],
                         sizeof longopts / sizeof longopts[0]);
  memset(a, 0, sizeof(*a));
  a->address = "::";
  a->port = COAP_DEFAULT_PORT;
  a->dtls_port = COAPS_DEFAULT_PORT;
  optind = 0;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "p:a:vh", longopts, NULL)) != -1) {
    switch (c) {
      case 'p': if (parse_port("--port", optarg, &a->port) < 0) return -1; break;
      case 'D': if (parse_port("--dtls-port", optarg, &a->dtls_port) < 0) return -1; break;
      case 'a': a->address = optarg; break;
      case 'v': a->verbose++; break;
      case 'h': return 1;
      default: {
        int taken = security_flags_take(&a->sec, c, optarg);
        if (taken > 0) break;
        if (taken < 0) return -1;
        cli_error("unknown or incomplete option '%s'", argv[optind - 1]);
        return -1;
      }
    }
  }
  if (optind < argc) {
    cli_error("unexpected argument '%s'", argv[optind]);
    return -1;
  }
  return 0;
}

static void print_endpoint(const char *scheme, coap_endpoint_t *ep) {
  char addr[80];
  coap_address_format(coap_endpoint_address(ep), addr, sizeof addr);
  printf("coaps: listening on %s://%s\n", scheme, addr);
}

static void port_suffix(char *buf, size_t cap, uint16_t port, uint16_t dflt) {
  buf[0] = '\0';
  if (port != dflt) snprintf(buf, cap, ":%u", port);
}

static void print_hints(const serve_args_t *a, uint16_t port, uint16_t dtls_port) {
  char p[8], dp[8];
  port_suffix(p, sizeof p, port, COAP_DEFAULT_PORT);
  printf("try:\n"
         "  coaps get coap://127.0.0.1%s/temp\n"
         "  coaps get coap://127.0.0.1%s/.well-known/core\n"
         "  coaps put coap://127.0.0.1%s/store -d hello\n",
         p, p, p);
  if (!dtls_port) return;
  port_suffix(dp, sizeof dp, dtls_port, COAPS_DEFAULT_PORT);
  if (a->sec.psk_identity)
    printf("  coaps get coaps://127.0.0.1%s/temp --psk-identity '%s' %s '%s'\n", dp,
           a->sec.psk_identity, a->sec.psk ? "--psk" : "--psk-hex",
           a->sec.psk ? a->sec.psk : a->sec.psk_hex);
  if (a->sec.cert)
    printf("  coaps get coaps://localhost%s/temp --cacert <the CA that signed %s>\n", dp,
           a->sec.cert);
  if (a->sec.rpk)
    printf("  coaps get coaps://127.0.0.1%s/temp --trust-rpk <the public key of %s>\n", dp,
           a->sec.key);
}

int cmd_serve(int argc, char **argv) {
  serve_args_t a;
  int rc = parse_serve_args(&a, argc, argv);
  if (rc == 1) {
    serve_usage(stdout);
    return 0;
  }
  if (rc < 0) {
    fprintf(stderr, "usage: coaps serve [options]  (coaps serve --help for more)\n");
    return EXIT_USAGE;
  }
  coap_address_t addr;
  if (coap_address_from_string(&addr, a.address, (uint16_t)a.port) < 0) {
    cli_error("--address wants a numeric IPv4 or IPv6 address, got '%s'", a.address);
    return EXIT_USAGE;
  }
  coap_context_config_t cfg;
  coap_context_config_default(&cfg);
  cfg.log_level = a.verbose > 1 ? COAP_LOG_DEBUG : a.verbose ? COAP_LOG_INFO : COAP_LOG_WARNING;
  coap_context_t *ctx = coap_context_new(&cfg);
  if (!ctx) {
    cli_error("out of memory");
    return EXIT_NETWORK;
  }
  demo_resources_register(ctx);
  if ((rc = security_flags_apply(&a.sec, ctx, 1)) != 0) {
    coap_context_free(ctx);
    return rc;
  }
  coap_endpoint_t *ep = coap_context_listen(ctx, COAP_PROTO_UDP, &addr);
  if (!ep) {
    cli_error("cannot listen on %s port %ld (see the message above; is another "
              "server using it? try --port)", a.address, a.port);
    coap_context_free(ctx);
    return EXIT_NETWORK;
  }
  print_endpoint("coap", ep);
  uint16_t dtls_port = 0;
  if (a.sec.any) {
    coap_address_set_port(&addr, (uint16_t)a.dtls_port);
    coap_endpoint_t *sep = coap_context_listen(ctx, COAP_PROTO_DTLS, &addr);
    if (!sep) {
      cli_error("cannot listen on %s port %ld for coaps:// (is another server "
                "using it? try --dtls-port)", a.address, a.dtls_port);
      coap_context_free(ctx);
      return EXIT_NETWORK;
    }
    print_endpoint("coaps", sep);
    dtls_port = coap_address_get_port(coap_endpoint_address(sep));
  }
  print_hints(&a, coap_address_get_port(coap_endpoint_address(ep)), dtls_port);
  fflush(stdout);
  rc = coap_run(ctx);
  coap_context_free(ctx);
  if (rc < 0) {
    cli_error("server stopped: %s", coap_strerror(rc));
    return EXIT_NETWORK;
  }
  return 0;
}
