/* coaps serve: a CoAP server with the demo resources. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct serve_args {
  const char *address;
  long port;
  int verbose;
} serve_args_t;

static void serve_usage(FILE *out) {
  fprintf(out,
          "usage: coaps serve [options]\n"
          "\n"
          "Serve the demo resources /temp, /time, /store, /echo and\n"
          "/.well-known/core until SIGINT or SIGTERM.\n"
          "\n"
          "  -p, --port N       coap:// port (default 5683; 0 picks a free one)\n"
          "  -a, --address ADDR address to bind (default :: — IPv6 and IPv4)\n"
          "  -v, --verbose      log requests (-vv: debug)\n"
          "  -h, --help         this help\n"
          "\n"
          "For each endpoint a line 'coaps: listening on coap://ADDR:PORT' is\n"
          "printed on standard output with the port actually bound.\n");
}

static int parse_port(const char *text, long *out) {
  char *end;
  long v = strtol(text, &end, 10);
  if (*text == '\0' || *end || v < 0 || v > 65535) {
    cli_error("--port wants a number from 0 to 65535, got '%s'", text);
    return -1;
  }
  *out = v;
  return 0;
}

static int parse_serve_args(serve_args_t *a, int argc, char **argv) {
  static const struct option longopts[] = {
      {"port", required_argument, NULL, 'p'},
      {"address", required_argument, NULL, 'a'},
      {"verbose", no_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  a->address = "::";
  a->port = COAP_DEFAULT_PORT;
  a->verbose = 0;
  optind = 0;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "p:a:vh", longopts, NULL)) != -1) {
    switch (c) {
      case 'p': if (parse_port(optarg, &a->port) < 0) return -1; break;
      case 'a': a->address = optarg; break;
      case 'v': a->verbose++; break;
      case 'h': return 1;
      default:
        cli_error("unknown or incomplete option '%s'", argv[optind - 1]);
        return -1;
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

static void print_hints(uint16_t port) {
  char port_part[8] = "";
  if (port != COAP_DEFAULT_PORT) snprintf(port_part, sizeof port_part, ":%u", port);
  printf("try:\n"
         "  coaps get coap://127.0.0.1%s/temp\n"
         "  coaps get coap://127.0.0.1%s/.well-known/core\n"
         "  coaps put coap://127.0.0.1%s/store -d hello\n",
         port_part, port_part, port_part);
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
  coap_endpoint_t *ep = coap_context_listen(ctx, COAP_PROTO_UDP, &addr);
  if (!ep) {
    cli_error("cannot listen on %s port %ld (see the message above; is another "
              "server using it? try --port)", a.address, a.port);
    coap_context_free(ctx);
    return EXIT_NETWORK;
  }
  print_endpoint("coap", ep);
  print_hints(coap_address_get_port(coap_endpoint_address(ep)));
  fflush(stdout);
  rc = coap_run(ctx);
  coap_context_free(ctx);
  if (rc < 0) {
    cli_error("server stopped: %s", coap_strerror(rc));
    return EXIT_NETWORK;
  }
  return 0;
}
