/* parallel.h - a small fixed pool of worker threads for the engine.
 *
 * BLAS runs single-threaded; the engine instead splits independent work
 * (tiles of output pixels, samples of a batch) across threads it owns. Task
 * t of n always runs on thread t * threads / n (static contiguous blocks), so
 * per-thread partial sums are combined in the same order every run and a
 * training run is reproducible bit for bit for a given thread count. */
#ifndef HEMOSCAN_PARALLEL_H
#define HEMOSCAN_PARALLEL_H

typedef struct hs_pool hs_pool;

/* fn(ctx, task, thread): run task number `task` on worker `thread`. */
typedef void (*hs_task_fn)(void *ctx, int task, int thread);

/* threads >= 1; 1 creates no threads at all. Returns NULL on failure. */
hs_pool *hs_pool_create(int threads);
void hs_pool_free(hs_pool *pool);
int hs_pool_threads(const hs_pool *pool);
/* Run tasks 0..n_tasks-1 and wait for all of them. */
void hs_pool_run(hs_pool *pool, int n_tasks, hs_task_fn fn, void *ctx);

#endif
