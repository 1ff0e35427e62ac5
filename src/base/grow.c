/* grow.c - growing an array by doubling, with every size checked (see
 * grow.h).
 *
 * Written once because five hand-rolled copies each had a slightly
 * different first size and none checked that the doubled capacity or the
 * byte count fitted its type. The policy is the plain one: double, start
 * small (the arrays of one call are short, and a long one pays a few
 * reallocations only at the start). */
#include "hemoscan/grow.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

int hs_grow(void **items, int *cap, int need, size_t elem)
{
    if (need < 0 || elem == 0 || *cap < 0)
        return -1;
    if (need <= *cap)
        return 0;
    int n = *cap > 0 ? *cap : HS_GROW_FIRST;
    while (n < need)
        n = n > INT_MAX / 2 ? need : n * 2;
    if ((size_t)n > SIZE_MAX / elem)
        return -1;
    void *p = realloc(*items, (size_t)n * elem);
    if (p == NULL)
        return -1;
    *items = p;
    *cap = n;
    return 0;
}
