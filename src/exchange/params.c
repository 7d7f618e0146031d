#include "coaps/context.h"

#include "common/abi.h"

static void tx_params_default(coap_tx_params_t *p) {
  p->ack_timeout_ms = 2000;
  p->ack_random_factor_pm = 1500;
  p->max_retransmit = 4;
  p->nstart = 1;
  p->separate_delay_ms = 300;
  p->response_timeout_ms = 93000;
  p->token_len = 4;
  p->dedup_capacity = 64;
}

int coap_tx_params_default_versioned(int version, coap_tx_params_t *p) {
  if (!p) return COAP_E_INVALID_ARG;
  coap_tx_params_t latest = {0};
  tx_params_default(&latest);
  return coap_abi_write(coap_abi_struct(COAP_ABI_TX_PARAMS), version, &latest, p, NULL,
                        "coap_tx_params_default");
}
