/* clock.h - the time of day and elapsed time, as seconds in a double.
 *
 * What it is for. Times that go into the audit database and into a
 * reading (a run's start and end, when a study was read) are Unix seconds
 * with fractions: hs_clock_now. Durations (how long an epoch or a wait
 * took) need a clock that no time-of-day adjustment can move backwards:
 * hs_clock_monotonic. A double holds today's Unix time to better than a
 * microsecond, which is finer than anything hemoscan measures.
 *
 * The contract. Neither function fails. clock_gettime cannot fail on
 * Linux for these clocks, but when it does anyway the answer is defined,
 * never garbage from an unset struct:
 *   - hs_clock_now falls back to time(NULL), the same time of day in whole
 *     seconds;
 *   - hs_clock_monotonic falls back to hs_clock_now, so durations stay
 *     right unless the wall clock is stepped during them.
 *
 * Limits. hs_clock_now follows the system clock, so two calls may go
 * backwards when the clock is set: never take a duration from it. The
 * zero of hs_clock_monotonic is unspecified (the boot, on Linux); only
 * differences of two of its values mean anything. */
#ifndef HEMOSCAN_CLOCK_H
#define HEMOSCAN_CLOCK_H

/* Unix time now (CLOCK_REALTIME), in seconds with fractions. */
double hs_clock_now(void);

/* Seconds on a clock that never goes backwards (CLOCK_MONOTONIC), for
 * durations: subtract two values. */
double hs_clock_monotonic(void);

#endif
