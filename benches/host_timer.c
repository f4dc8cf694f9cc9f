/*
 * The host's own 1 kHz timer jitter, as cyclictest measures it: one thread at the default
 * scheduling settings (SCHED_OTHER, nice 0: what QEMU runs with) sleeps to each absolute
 * 1 ms deadline with clock_nanosleep and records how late it woke. Prints p50, p99 and
 * max in ns, like the guest's `jitter:` line (benches/rt.sh runs both at once).
 *
 *   host_timer SECONDS
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int by_value(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    long seconds = argc > 1 ? atol(argv[1]) : 10;
    long count = seconds * 1000;
    long *late = malloc(sizeof(long) * (size_t)count);
    if (!late || count <= 0) return 1;
    struct timespec next, now;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (long i = 0; i < count; i++) {
        next.tv_nsec += 1000000;
        if (next.tv_nsec >= 1000000000) { next.tv_nsec -= 1000000000; next.tv_sec++; }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
        late[i] = (now.tv_sec - next.tv_sec) * 1000000000L + (now.tv_nsec - next.tv_nsec);
    }
    qsort(late, (size_t)count, sizeof(long), by_value);
    printf("host: 1 kHz timer thread: %ld wake-ups, lateness p50 %ld ns p99 %ld ns max %ld ns\n",
           count, late[count / 2], late[count * 99 / 100], late[count - 1]);
    return 0;
}
