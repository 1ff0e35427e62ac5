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

double hs_rng_gamma(hs_rng *rng, double shape)
{
    /* Marsaglia and Tsang (2000) for shape >= 1; below 1 the shape + 1
     * draw scaled by u^(1/shape) (their note on small shapes). */
    if (shape < 1.0) {
        double u = hs_rng_uniform(rng);
        return hs_rng_gamma(rng, shape + 1.0) * pow(1.0 - u, 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = hs_rng_normal(rng), v = 1.0 + c * x;
        if (v <= 0.0)
            continue;
        v = v * v * v;
        double u = 1.0 - hs_rng_uniform(rng); /* (0, 1] */
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v))
            return d * v;
    }
}

double hs_rng_beta(hs_rng *rng, double a, double b)
{
    double x = hs_rng_gamma(rng, a), y = hs_rng_gamma(rng, b);
    return x + y > 0.0 ? x / (x + y) : 0.5;
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
