/* The server: resources by path, handler dispatch, the automatic answers
 * (4.04, 4.05, 4.02, 4.13, 4.15) and /.well-known/core. It turns a request
 * into a response and knows nothing of peers, retransmission or sockets. */
#ifndef COAPS_SERVER_H
#define COAPS_SERVER_H

#include "coaps/context.h"
#include "common/log.h"

/* Largest response payload + options a handler may write in one message
 * (without Block2). */
#define COAP_RESPONSE_STORE 16384

struct coap_response {
  coap_msg_t msg;
  uint8_t *store;   /* copies of option values and the payload */
  size_t cap, used;
};

struct coap_request {
  coap_context_t *ctx;
  const coap_msg_t *msg;
  const coap_address_t *peer;
  coap_proto_t proto;
  /* Set by the context: turns this request into a deferred one. */
  coap_deferred_t *(*defer)(const coap_request_t *req, coap_response_t *resp);
  void *defer_user;
  coap_deferred_t *deferred; /* set once deferred */
};

typedef struct coap_server {
  coap_resource_t *first, *last; /* registration order, for discovery */
  coap_resource_t **buckets;     /* by path */
  size_t n_buckets, count;
  size_t max_payload;
  const coap_logger_t *log;
} coap_server_t;

int coap_server_init(coap_server_t *s, size_t max_payload,
                     const coap_logger_t *log);
void coap_server_free(coap_server_t *s);

/* Start |resp| as the answer to |req|: its store, the method's default
 * code, the request's token. */
void coap_response_init(coap_response_t *resp, const coap_msg_t *req,
                        uint8_t *store, size_t cap);

/* Handle |req->msg|: fill |resp| or leave it to a deferred answer
 * (req->deferred set). */
void coap_server_dispatch(coap_server_t *s, coap_request_t *req,
                          coap_response_t *resp);

/* ---- between resource.c and dispatch.c ---- */
coap_resource_t *coap_server_lookup(const coap_server_t *s, const char *path,
                                    size_t len);
coap_handler_fn coap_resource_handler(const coap_resource_t *r, uint8_t method,
                                      void **user);
int coap_resource_accepts_format(const coap_resource_t *r, int format);
int coap_server_write_links(const coap_server_t *s, const char *query,
                            char *buf, size_t cap, size_t *len);

#endif
