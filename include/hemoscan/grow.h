/* grow.h - growing an array that is filled one element at a time.
 *
 * What it is for. Lists whose length is known only at the end (the files
 * of a folder, the runs of an image, the examples of a data set) are kept
 * as a pointer, a count and a capacity, and grown before each append:
 *
 *     if (hs_grow((void **)&items, &cap, n + 1, sizeof *items) != 0)
 *         return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", what);
 *     items[n++] = item;
 *
 * The contract. When need <= *cap nothing happens. Otherwise the capacity
 * doubles (from HS_GROW_FIRST when it was 0) until it holds need elements;
 * a doubling that would pass INT_MAX gives exactly need instead. Then
 * *items is reallocated: the elements kept, the new ones uninitialised.
 * Returns 0 on success, -1 on refusal, and a refusal changes nothing
 * (*items and *cap stay valid and as they were). Refused are: need < 0,
 * elem == 0, a byte count past SIZE_MAX, and a failed realloc. Doubling
 * makes n appends cost O(n) copying in all.
 *
 * Limits. The count and capacity are ints, as every caller's are: at most
 * INT_MAX elements. *items must be NULL or come from malloc/realloc, and
 * is freed by the caller. The (void **) cast is the usual C idiom and
 * assumes, as POSIX does, that every object pointer has one
 * representation. */
#ifndef HEMOSCAN_GROW_H
#define HEMOSCAN_GROW_H

#include <stddef.h>

/* The capacity of an array's first allocation. */
#define HS_GROW_FIRST 16

int hs_grow(void **items, int *cap, int need, size_t elem);

#endif
