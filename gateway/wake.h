/* wake: lets any thread run a callback on another thread's event loop.
 *
 * libevent runs without its locks: each event_base is touched only by the
 * thread that loops on it. Other threads therefore never call into a base
 * (not even event_active); they ring its doorbell, an eventfd the loop
 * watches, after leaving their message under their own lock. */
#ifndef WSGATE_WAKE_H
#define WSGATE_WAKE_H

struct event_base;
struct gw_wake;

/* A doorbell on base that calls cb(arg) on the base's thread after one or
 * more rings. Returns NULL when out of memory or descriptors. */
struct gw_wake *gw_wake_new(struct event_base *base, void (*cb)(void *), void *arg);

/* Any thread. Rings coalesce: cb runs at least once after the last ring. */
void gw_wake_ring(struct gw_wake *w);

/* The base's thread (or before its loop starts); NULL is ignored. */
void gw_wake_free(struct gw_wake *w);

#endif
