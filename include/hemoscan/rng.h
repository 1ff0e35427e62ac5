/* rng.h - the one seeded random number generator behind every random choice.
 *
 * Weight initialisation, dropout masks, shuffling, splits and augmentation all
 * draw from an hs_rng seeded from the user's --seed, so a training run is
 * reproducible bit for bit. xoshiro256** is small, fast and well studied; the
 * state is seeded through splitmix64 so any 64-bit seed gives a good state.
 * Independent streams come from hs_rng_split, not from reseeding by hand. */
#ifndef HEMOSCAN_RNG_H
#define HEMOSCAN_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} hs_rng;

void hs_rng_seed(hs_rng *rng, uint64_t seed);
/* A new generator whose stream is independent of rng's (advances rng). */
hs_rng hs_rng_split(hs_rng *rng);
uint64_t hs_rng_u64(hs_rng *rng);
/* Uniform in [0, 1). */
double hs_rng_uniform(hs_rng *rng);
/* Uniform integer in [0, n), unbiased; n > 0. */
uint64_t hs_rng_below(hs_rng *rng, uint64_t n);
/* Standard normal (Box-Muller, no cached second value, so streams stay simple). */
double hs_rng_normal(hs_rng *rng);
/* Gamma(shape, 1), shape > 0 (Marsaglia-Tsang; a variable number of draws). */
double hs_rng_gamma(hs_rng *rng, double shape);
/* Beta(a, b), a, b > 0, as a ratio of two gamma draws. */
double hs_rng_beta(hs_rng *rng, double a, double b);
/* Fisher-Yates shuffle of n ints. */
void hs_rng_shuffle(hs_rng *rng, int *v, int n);

#endif
