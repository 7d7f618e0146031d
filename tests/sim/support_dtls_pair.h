/* Two ends of a DTLS association in the simulated network, set up the
 * same way for every test that needs one, instead of a copy in each: a
 * server at 10.0.0.1:5684 and a client at 10.0.0.2:40000, their DTLS
 * configurations in each of the three security modes (PSK, X.509, raw
 * public key) from one set of credentials, and the resources the tests
 * ask for. Every step must succeed (a cmocka assertion otherwise). */
#ifndef SUPPORT_DTLS_PAIR_H
#define SUPPORT_DTLS_PAIR_H

#include "coaps/dtls.h"
#include "support_simnet.h"

/* Which credentials a configuration gets; a server may have several (a
 * mixed server), a client has one. The server's side of each: the PSK,
 * the certificate issued by the test CA for 10.0.0.1 with its key, the
 * raw-key pair; the client's: the PSK, the CA to trust, the server's raw
 * public key to trust. */
enum { DTLS_PAIR_PSK = 1, DTLS_PAIR_X509 = 2, DTLS_PAIR_RPK = 4 };

/* The files behind DTLS_PAIR_X509 and DTLS_PAIR_RPK, made by
 * dtls_pair_make_certs. */
typedef struct dtls_pair_certs {
  char ca[300], cert[300], key[300], rpk_key[300], rpk_pub[300];
} dtls_pair_certs_t;
extern dtls_pair_certs_t dtls_pair_certs;

/* For a group set-up: a CA named |ca_cn|, the server's certificate (valid
 * from an hour ago for a day) and a raw-key pair, in a fresh temporary
 * directory that dtls_pair_remove_certs removes. */
void dtls_pair_make_certs(const char *ca_cn);
void dtls_pair_remove_certs(void);

/* simnet_init(|net|), then the server and the client, both DTLS, made
 * with |cfg| (NULL: the simulated network's defaults); no credentials
 * yet. */
void dtls_pair_start(simnet_t *net, coap_context_config_t *cfg, simnet_node_t **server,
                     simnet_node_t **client);

/* A new DTLS configuration for |node|'s context with the server's or the
 * client's side of |creds| (DTLS_PAIR_… or'ed), not yet installed: the
 * caller may change it (cookie policy, priorities) before
 * dtls_pair_install. */
coap_dtls_context_t *dtls_pair_server_dtls(simnet_node_t *node, unsigned creds);
coap_dtls_context_t *dtls_pair_client_dtls(simnet_node_t *node, unsigned creds);
/* |d| becomes |node|'s configuration (the context takes the reference). */
void dtls_pair_install(simnet_node_t *node, coap_dtls_context_t *d);

/* GET /hi answers "hi". */
void dtls_pair_add_hi(simnet_node_t *server);
/* GET /hello counts its calls in |*calls| and answers "call <count>". */
void dtls_pair_add_hello(simnet_node_t *server, int *calls);
/* A GET of coaps://10.0.0.1/hello from |client| must be answered 2.05
 * "call <expected_call>" within a minute of virtual time. */
void dtls_pair_get_hello(simnet_node_t *client, int expected_call);

#endif
