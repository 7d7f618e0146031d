#include "coaps/context.h"

void coap_tx_params_default(coap_tx_params_t *p) {
  if (!p) return;
  p->ack_timeout_ms = 2000;
  p->ack_random_factor_pm = 1500;
  p->max_retransmit = 4;
  p->nstart = 1;
  p->separate_delay_ms = 300;
  p->response_timeout_ms = 93000;
  p->token_len = 4;
  p->dedup_capacity = 64;
}
