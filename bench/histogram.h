/* Latency histogram: 64 linear sub-buckets per power of two, so any value
 * is known within 1/64 (1.6 %) with 3776 counters and no per-sample
 * allocation. */
#ifndef COAPS_BENCH_HISTOGRAM_H
#define COAPS_BENCH_HISTOGRAM_H

#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_BUCKETS ((64 - HIST_SUB_BITS - 1) * 64 + 128)

typedef struct histogram {
  uint64_t count, max;
  uint64_t bucket[HIST_BUCKETS];
} histogram_t;

void hist_add(histogram_t *h, uint64_t v);
/* The value below which a share |p| (0..1) of the samples lie, rounded
 * up to its bucket's largest value (pessimistic), at most the maximum. */
uint64_t hist_percentile(const histogram_t *h, double p);

#endif
