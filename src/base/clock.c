/* clock.c - the time of day and elapsed time as seconds (see clock.h).
 *
 * Written once because three copies had drifted apart: only one of them
 * looked at clock_gettime's result, the others would have read an
 * unset struct timespec after a failure. Nanoseconds are divided by 1e9
 * rather than multiplied by 1e-9: division by an exact power of ten is
 * correctly rounded, the multiplication by the inexact 1e-9 is not. */
#include "hemoscan/clock.h"

#include <time.h>

double hs_clock_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return (double)time(NULL);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double hs_clock_monotonic(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return hs_clock_now();
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
