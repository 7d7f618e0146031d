#include "histogram.h"

#include <math.h>

static unsigned hist_index(uint64_t v) {
  if (v < 128) return (unsigned)v;
  unsigned shift = (unsigned)(63 - __builtin_clzll(v)) - HIST_SUB_BITS;
  return shift * 64 + (unsigned)(v >> shift);
}

/* The largest value a bucket holds: percentiles are reported pessimistically. */
static uint64_t hist_bucket_high(unsigned idx) {
  if (idx < 128) return idx;
  unsigned shift = idx / 64 - 1;
  uint64_t mant = idx - shift * 64;
  return ((mant + 1) << shift) - 1;
}

void hist_add(histogram_t *h, uint64_t v) {
  h->bucket[hist_index(v)]++;
  h->count++;
  if (v > h->max) h->max = v;
}

uint64_t hist_percentile(const histogram_t *h, double p) {
  if (!h->count) return 0;
  uint64_t target = (uint64_t)ceil(p * (double)h->count), seen = 0;
  if (target == 0) target = 1;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    seen += h->bucket[i];
    if (seen >= target) return hist_bucket_high(i) < h->max ? hist_bucket_high(i) : h->max;
  }
  return h->max;
}
