/* Line-oriented logger on stderr. */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

int log_min_level = LOGL_INFO;

static const char *level_names[] = {"DEBUG", "INFO", "WARN", "ERROR", "FATAL"};

void log_write(int level, const char *fmt, ...) {
  char line[4096];
  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000),
                   level_names[level < 0 ? 0 : level > LOGL_FATAL ? LOGL_FATAL : level]);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (m < 0) m = 0;
  size_t len = (size_t)n + ((size_t)m < sizeof(line) - (size_t)n - 1 ? (size_t)m : sizeof(line) - (size_t)n - 2);
  line[len++] = '\n';
  fwrite(line, 1, len, stderr);
}

int log_parse_level(const char *name) {
  if (!strcmp(name, "debug")) return LOGL_DEBUG;
  if (!strcmp(name, "info")) return LOGL_INFO;
  if (!strcmp(name, "warn")) return LOGL_WARN;
  if (!strcmp(name, "error")) return LOGL_ERROR;
  if (!strcmp(name, "panic") || !strcmp(name, "fatal") || !strcmp(name, "dpanic")) return LOGL_FATAL;
  return -1;
}
