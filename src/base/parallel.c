/* parallel.c - the engine's fixed thread pool (see parallel.h).
 *
 * Workers sleep on a condition variable between jobs; a job is published
 * with a generation counter and the caller takes part as thread 0, so a
 * one-thread pool is just a function call. Task-to-thread assignment is
 * static (contiguous blocks), which keeps floating-point reductions in the
 * same order on every run. */
#include "hemoscan/parallel.h"

#include <pthread.h>
#include <stdlib.h>

struct hs_pool {
    int threads;
    pthread_t *tids;
    pthread_mutex_t mu;
    pthread_cond_t start;
    pthread_cond_t done;
    unsigned long generation;
    int pending; /* workers still running the current job */
    int quit;
    hs_task_fn fn;
    void *ctx;
    int n_tasks;
};

typedef struct {
    hs_pool *pool;
    int index;
} worker_arg;

static void run_share(hs_pool *pool, int thread)
{
    int first = (int)((long)pool->n_tasks * thread / pool->threads);
    int last = (int)((long)pool->n_tasks * (thread + 1) / pool->threads);
    for (int t = first; t < last; t++)
        pool->fn(pool->ctx, t, thread);
}

static void *worker_main(void *p)
{
    worker_arg *arg = p;
    hs_pool *pool = arg->pool;
    int index = arg->index;
    free(arg);
    unsigned long seen = 0;
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        while (!pool->quit && pool->generation == seen)
            pthread_cond_wait(&pool->start, &pool->mu);
        if (pool->quit)
            break;
        seen = pool->generation;
        pthread_mutex_unlock(&pool->mu);
        run_share(pool, index);
        pthread_mutex_lock(&pool->mu);
        pool->pending--;
        if (pool->pending == 0)
            pthread_cond_signal(&pool->done);
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

hs_pool *hs_pool_create(int threads)
{
    if (threads < 1)
        return NULL;
    hs_pool *pool = calloc(1, sizeof *pool);
    if (pool == NULL)
        return NULL;
    pool->threads = threads;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->start, NULL);
    pthread_cond_init(&pool->done, NULL);
    if (threads == 1)
        return pool;
    pool->tids = calloc((size_t)threads, sizeof *pool->tids);
    if (pool->tids == NULL) {
        hs_pool_free(pool);
        return NULL;
    }
    for (int i = 1; i < threads; i++) {
        worker_arg *arg = malloc(sizeof *arg);
        int rc = -1;
        if (arg != NULL) {
            arg->pool = pool;
            arg->index = i;
            rc = pthread_create(&pool->tids[i], NULL, worker_main, arg);
        }
        if (rc != 0) {
            free(arg);
            pool->threads = i; /* only workers 1..i-1 exist; free joins them */
            hs_pool_free(pool);
            return NULL;
        }
    }
    return pool;
}

void hs_pool_free(hs_pool *pool)
{
    if (pool == NULL)
        return;
    if (pool->tids != NULL) {
        pthread_mutex_lock(&pool->mu);
        pool->quit = 1;
        pthread_cond_broadcast(&pool->start);
        pthread_mutex_unlock(&pool->mu);
        for (int i = 1; i < pool->threads; i++)
            pthread_join(pool->tids[i], NULL);
        free(pool->tids);
    }
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->start);
    pthread_cond_destroy(&pool->done);
    free(pool);
}

int hs_pool_threads(const hs_pool *pool)
{
    return pool->threads;
}

void hs_pool_run(hs_pool *pool, int n_tasks, hs_task_fn fn, void *ctx)
{
    if (n_tasks <= 0)
        return;
    pool->fn = fn;
    pool->ctx = ctx;
    pool->n_tasks = n_tasks;
    if (pool->threads == 1) {
        run_share(pool, 0);
        return;
    }
    pthread_mutex_lock(&pool->mu);
    pool->pending = pool->threads - 1;
    pool->generation++;
    pthread_cond_broadcast(&pool->start);
    pthread_mutex_unlock(&pool->mu);
    run_share(pool, 0);
    pthread_mutex_lock(&pool->mu);
    while (pool->pending > 0)
        pthread_cond_wait(&pool->done, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
}
