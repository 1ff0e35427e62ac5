/* test_base.c - CUnit suite for the small base helpers, registered by
 * hs_register_base_tests(): the clock (clock.h).
 *
 * Each test pins one part of a header's contract. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "hemoscan/clock.h"
#include "test_util.h"

int hs_register_base_tests(void);

/* ---- clock --------------------------------------------------------------- */

static void test_clock_now(void)
{
    time_t before = time(NULL);
    double now = hs_clock_now();
    time_t after = time(NULL);
    /* time() truncates, so now lies in [before, after + 1). */
    CU_ASSERT(now >= (double)before);
    CU_ASSERT(now < (double)after + 1.0);
}

static void test_clock_monotonic(void)
{
    double first = hs_clock_monotonic(), last = first;
    int backwards = 0;
    for (int i = 0; i < 100000; i++) {
        double t = hs_clock_monotonic();
        backwards += t < last;
        last = t;
    }
    CU_ASSERT_EQUAL(backwards, 0);
    /* It measures time: a 20 ms sleep shows as at least 20 ms. */
    double a = hs_clock_monotonic();
    struct timespec nap = {0, 20 * 1000 * 1000};
    while (nanosleep(&nap, &nap) != 0 && errno == EINTR) {
    }
    double b = hs_clock_monotonic();
    CU_ASSERT(b - a >= 0.019);
    CU_ASSERT(b - a < 10.0);
}

int hs_register_base_tests(void)
{
    static const hs_test_case tests[] = {
        {"clock: wall clock agrees with time()", test_clock_now},
        {"clock: monotonic never goes back, measures a sleep", test_clock_monotonic},
    };
    return hs_test_add_suite("base", NULL, NULL, tests, sizeof tests / sizeof tests[0]);
}
