/* Level-checked logging with key=value fields, one line per call, to stderr.
 * Lines look like: 2026-11-24T03:50:00.123Z INFO published member-id=8e9e05c52164694d */
#ifndef CETCD_BASE_LOG_H
#define CETCD_BASE_LOG_H

enum log_level { LOGL_DEBUG = 0, LOGL_INFO, LOGL_WARN, LOGL_ERROR, LOGL_FATAL };

extern int log_min_level;

/* Writes one formatted line at the given level (use the macros below). */
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses "debug", "info", "warn", "error", "panic", "fatal"; returns -1 if unknown. */
int log_parse_level(const char *name);

#define LOG_AT(lvl, ...)                                  \
  do {                                                    \
    if ((lvl) >= log_min_level) log_write((lvl), __VA_ARGS__); \
  } while (0)
#define LOGD(...) LOG_AT(LOGL_DEBUG, __VA_ARGS__)
#define LOGI(...) LOG_AT(LOGL_INFO, __VA_ARGS__)
#define LOGW(...) LOG_AT(LOGL_WARN, __VA_ARGS__)
#define LOGE(...) LOG_AT(LOGL_ERROR, __VA_ARGS__)

#endif
