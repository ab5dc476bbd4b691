/* Slow-disk simulator (test helper, LD_PRELOAD) for the chaos suite (tests/chaos/chaos.py).
 * fsync, fdatasync and msync(MS_SYNC) sleep for the delay written in the control file
 * $CETCD_SLOWDISK_CTL (milliseconds, as text; missing, empty or 0: no delay), then call
 * the real function. The file is re-read at most every CHECK_MS, so a test switches the
 * fault on and off for a running process by rewriting it. Each delayed call is counted,
 * and when $CETCD_SLOWDISK_REPORT is set the totals are written there as
 * "<delayed calls> <delayed milliseconds>\n" when the process starts (zeros) and after every
 * delayed call. Without
 * $CETCD_SLOWDISK_CTL the shim only passes calls through. Thread-safe: the delay and the
 * time of the last check are atomics; only writing the report takes a mutex. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CHECK_MS 20
#define MAX_DELAY_MS 10000

static _Atomic int64_t last_check_ms = -CHECK_MS; /* monotonic ms of the last read of ctl */
static _Atomic int64_t delay_ms;
static _Atomic uint64_t delayed_calls, delayed_total_ms;
static pthread_mutex_t report_mu = PTHREAD_MUTEX_INITIALIZER;

/* Monotonic clock in milliseconds. */
static int64_t slowdisk_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the delay from the control file (0 when it is missing or unparsable). */
static int64_t slowdisk_read_ctl(const char *path) {
  char buf[32];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  long v = strtol(buf, NULL, 10);
  if (v < 0) return 0;
  return v > MAX_DELAY_MS ? MAX_DELAY_MS : v;
}

/* Writes the totals to $CETCD_SLOWDISK_REPORT (fixed width, so no stale tail remains). */
static void slowdisk_report(void) {
  const char *path = getenv("CETCD_SLOWDISK_REPORT");
  if (!path) return;
  char line[64];
  pthread_mutex_lock(&report_mu);
  int len = snprintf(line, sizeof line, "%20llu %20llu\n", (unsigned long long)delayed_calls,
                     (unsigned long long)delayed_total_ms);
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) {
    ssize_t w = pwrite(fd, line, (size_t)len, 0); /* best effort: a reader sees the old totals */
    (void)w;
    close(fd);
  }
  pthread_mutex_unlock(&report_mu);
}

/* At load: the report starts from zero for this process. */
__attribute__((constructor)) static void slowdisk_init(void) { slowdisk_report(); }

/* Sleeps for the current delay (refreshing it from the control file when due). */
static void slowdisk_delay(void) {
  const char *ctl = getenv("CETCD_SLOWDISK_CTL");
  if (!ctl) return;
  int saved = errno;
  int64_t now = slowdisk_now_ms(), last = atomic_load(&last_check_ms);
  if (now - last >= CHECK_MS && atomic_compare_exchange_strong(&last_check_ms, &last, now))
    atomic_store(&delay_ms, slowdisk_read_ctl(ctl));
  int64_t d = atomic_load(&delay_ms);
  if (d > 0) {
    struct timespec ts = {.tv_sec = d / 1000, .tv_nsec = (d % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    atomic_fetch_add(&delayed_calls, 1);
    atomic_fetch_add(&delayed_total_ms, (uint64_t)d);
    slowdisk_report();
  }
  errno = saved;
}

/* The next definition of `name` after this library (libc's). */
static void *slowdisk_real(const char *name) {
  void *f = dlsym(RTLD_NEXT, name);
  if (!f) abort();
  return f;
}

/* fsync(2), delayed. */
int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))slowdisk_real("fsync");
  slowdisk_delay();
  return real(fd);
}

/* fdatasync(2), delayed. */
int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))slowdisk_real("fdatasync");
  slowdisk_delay();
  return real(fd);
}

/* msync(2), delayed when it waits for the write-back (MS_SYNC). */
int msync(void *addr, size_t len, int flags) {
  static int (*real)(void *, size_t, int);
  if (!real) real = (int (*)(void *, size_t, int))slowdisk_real("msync");
  if (flags & MS_SYNC) slowdisk_delay();
  return real(addr, len, flags);
}
