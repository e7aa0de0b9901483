/* Wall-clock step injector for the node processes (LD_PRELOAD), as NTP, timesyncd or
 * fake-hwclock step the clock of a Raspberry Pi, which has no RTC.
 *
 * CLOCK_REALTIME (clock_gettime, gettimeofday, time) is shifted by the number of
 * seconds in the file named by KILO_CLOCK_STEP_FILE, re-read at most every 20 ms;
 * CLOCK_MONOTONIC is left alone. libfaketime 0.9.10 cannot do this: with its
 * monotonic clock left real, Python's time.sleep fails with EINVAL.
 * Unlike a real step, the kernel's clock does not move: a wait given an absolute
 * wall-clock deadline from a shifted reading ends at once while a step back holds (the
 * processes spin) and the step late while a step forward does.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime(void) {
    static clock_gettime_fn real;
    if (real == NULL) {
        real = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    }
    return real;
}

static long long now_ns(clockid_t id) {
    struct timespec ts;
    real_clock_gettime()(id, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The step in ns; races between threads only ever read an old or a new value. */
static long long offset_ns(void) {
    static long long offset, read_at = -1;
    long long mono = now_ns(CLOCK_MONOTONIC);
    if (read_at >= 0 && mono - read_at < 20000000LL) {
        return offset;
    }
    read_at = mono;
    const char *path = getenv("KILO_CLOCK_STEP_FILE");
    FILE *file = path ? fopen(path, "r") : NULL;
    if (file != NULL) {
        double seconds;
        if (fscanf(file, "%lf", &seconds) == 1) {
            offset = (long long)(seconds * 1e9);
        }
        fclose(file);
    }
    return offset;
}

static void shift(struct timespec *ts) {
    long long total = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + offset_ns();
    ts->tv_sec = total / 1000000000LL;
    ts->tv_nsec = total % 1000000000LL;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    int rc = real_clock_gettime()(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
        shift(ts);
    }
    return rc;
}

int gettimeofday(struct timeval *tv, void *tz) {
    (void)tz;
    struct timespec ts;
    int rc = clock_gettime(CLOCK_REALTIME, &ts);
    if (rc == 0) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return rc;
}

time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out != NULL) {
        *out = ts.tv_sec;
    }
    return ts.tv_sec;
}
