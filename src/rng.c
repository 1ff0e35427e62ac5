/* rng.c - xoshiro256** seeded through splitmix64 (see rng.h for why).
 *
 * Both generators are public-domain algorithms by Blackman and Vigna; this
 * is our own rendering of their published recurrences. */
#include "hemoscan/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void hs_rng_seed(hs_rng *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
}

uint64_t hs_rng_u64(hs_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

hs_rng hs_rng_split(hs_rng *rng)
{
    hs_rng child;
    hs_rng_seed(&child, hs_rng_u64(rng));
    return child;
}

double hs_rng_uniform(hs_rng *rng)
{
    /* 53 random bits -> a double in [0, 1). */
    return (double)(hs_rng_u64(rng) >> 11) * 0x1.0p-53;
}

uint64_t hs_rng_below(hs_rng *rng, uint64_t n)
{
    /* Rejection sampling: drop the top partial range so every value is
     * equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r = hs_rng_u64(rng);
    while (r >= limit)
        r = hs_rng_u64(rng);
    return r % n;
}

double hs_rng_normal(hs_rng *rng)
{
    double u1 = hs_rng_uniform(rng);
    double u2 = hs_rng_uniform(rng);
    /* 1 - u1 is in (0, 1], so the logarithm is finite. */
    return sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
}

void hs_rng_shuffle(hs_rng *rng, int *v, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)hs_rng_below(rng, (uint64_t)i + 1);
        int t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}
