/* Value parsing with Go's rules: numbers (strconv.ParseUint/ParseInt base 0), booleans
 * (strconv.ParseBool), durations (time.ParseDuration), URL and string lists; storing a
 * flag's value into the config; message and warning helpers. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cetcd/errors.h"
#include "server/config_int.h"
#include "server/urls.h"

/* ---- small helpers ------------------------------------------------------------------ */

/* Writes a formatted message into err (if room) and returns CETCD_EINVAL. */
int config_errf(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return CETCD_EINVAL;
}

/* Appends a formatted warning to cfg->warnings. */
void config_warnf(cetcd_config_t *cfg, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) s = NULL;
  va_end(ap);
  if (!s) return;
  cfg->warnings = xrealloc(cfg->warnings, (cfg->n_warnings + 1) * sizeof(char *));
  cfg->warnings[cfg->n_warnings++] = s;
}

/* Replaces an owned string field with a copy of v. */
void config_set_str(char **field, const char *v) {
  char *n = xstrdup(v);
  free(*field);
  *field = n;
}

/* Frees an owned string array and zeroes it. */
void config_strv_free(char ***v, size_t *n) {
  for (size_t i = 0; *v && i < *n; i++) free((*v)[i]);
  free(*v);
  *v = NULL;
  *n = 0;
}

/* Appends a copy of s to an owned string array. */
void config_strv_push(char ***v, size_t *n, const char *s) {
  *v = xrealloc(*v, (*n + 1) * sizeof(char *));
  (*v)[(*n)++] = xstrdup(s);
}

/* qsort comparator for strings. */
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Splits s on commas into a new array; empty elements are dropped. If sorted, the result
 * is sorted and de-duplicated. */
void config_split_list(const char *s, bool sorted, char ***v, size_t *n) {
  *v = NULL;
  *n = 0;
  const char *p = s;
  for (;;) {
    const char *c = strchr(p, ',');
    size_t len = c ? (size_t)(c - p) : strlen(p);
    if (len) {
      char *one = xmemdup(p, len);
      config_strv_push(v, n, one);
      free(one);
    }
    if (!c) break;
    p = c + 1;
  }
  if (!sorted || *n < 2) return;
  qsort(*v, *n, sizeof(char *), cmp_str);
  size_t w = 1;
  for (size_t i = 1; i < *n; i++) {
    if (!strcmp((*v)[w - 1], (*v)[i])) {
      free((*v)[i]);
      continue;
    }
    (*v)[w++] = (*v)[i];
  }
  *n = w;
}

/* ---- Go-compatible scalar parsing ------------------------------------------------------ */

/* Go's strconv underscoreOK: underscores only between digits or after a base prefix. */
static bool underscore_ok(const char *s) {
  char saw = '^';
  size_t i = 0, n = strlen(s);
  if (n >= 1 && (s[0] == '-' || s[0] == '+')) s++, n--;
  bool hex = false;
  if (n >= 2 && s[0] == '0' && strchr("bBoOxX", s[1])) {
    i = 2;
    saw = '0';
    hex = s[1] == 'x' || s[1] == 'X';
  }
  for (; i < n; i++) {
    if (isdigit((unsigned char)s[i]) || (hex && isxdigit((unsigned char)s[i]))) {
      saw = '0';
      continue;
    }
    if (s[i] == '_') {
      if (saw != '0') return false;
      saw = '_';
      continue;
    }
    if (saw == '_') return false;
    saw = '!';
  }
  return saw != '_';
}

/* Like Go's strconv.ParseUint(s, 0, bits). Returns 0, -1 (syntax) or -2 (range). */
int config_go_parse_uint(const char *s, int bits, uint64_t *out) {
  if (!*s) return -1;
  const char *orig = s;
  int base = 10;
  bool base0 = true;
  if (s[0] == '0' && s[1]) {
    if (s[1] == 'x' || s[1] == 'X')
      base = 16, s += 2;
    else if (s[1] == 'o' || s[1] == 'O')
      base = 8, s += 2;
    else if (s[1] == 'b' || s[1] == 'B')
      base = 2, s += 2;
    else
      base = 8, s += 1;
  }
  if (!*s) return -1;
  bool underscores = false;
  uint64_t v = 0, max = bits >= 64 ? UINT64_MAX : ((UINT64_C(1) << bits) - 1);
  bool range = false;
  for (; *s; s++) {
    int d;
    char c = *s;
    if (c == '_' && base0) {
      underscores = true;
      continue;
    } else if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'z') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'Z') {
      d = c - 'A' + 10;
    } else {
      return -1;
    }
    if (d >= base) return -1;
    if (range) continue;
    if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) {
      range = true;
      continue;
    }
    v = v * (uint64_t)base + (uint64_t)d;
    if (v > max) range = true;
  }
  if (underscores && !underscore_ok(orig)) return -1;
  if (range) return -2;
  *out = v;
  return 0;
}

/* Like Go's strconv.ParseInt(s, 0, 64). Returns 0, -1 (syntax) or -2 (range). */
int config_go_parse_int64(const char *s, int64_t *out) {
  bool neg = false;
  if (*s == '+' || *s == '-') neg = *s++ == '-';
  uint64_t u;
  int rc = config_go_parse_uint(s, 64, &u);
  if (rc) return rc;
  if (!neg && u > (uint64_t)INT64_MAX) return -2;
  if (neg && u > (uint64_t)INT64_MAX + 1) return -2;
  *out = neg ? (int64_t)(0 - u) : (int64_t)u;
  return 0;
}

/* Like Go's strconv.ParseBool. Returns 0 or -1. */
int config_go_parse_bool(const char *s, bool *out) {
  static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
  static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
  for (size_t i = 0; i < 6; i++) {
    if (!strcmp(s, t[i])) return *out = true, 0;
    if (!strcmp(s, f[i])) return *out = false, 0;
  }
  return -1;
}

/* Go's time.ParseDuration (config.h). */
int config_parse_duration(const char *s, int64_t *ns) {
  /* Go's time.ParseDuration: [-+]?([0-9]*(\.[0-9]*)?[a-z]+)+ with units ns us µs μs ms s m h. */
  static const struct {
    const char *u;
    uint64_t mul;
  } units[] = {{"ns", 1},
               {"us", 1000},
               {"\xc2\xb5s", 1000},
               {"\xce\xbcs", 1000},
               {"ms", 1000000},
               {"s", UINT64_C(1000000000)},
               {"m", UINT64_C(60000000000)},
               {"h", UINT64_C(3600000000000)}};
  if (!s) return CETCD_EINVAL;
  bool neg = false;
  if (*s == '-' || *s == '+') neg = *s++ == '-';
  if (!strcmp(s, "0")) return *ns = 0, 0;
  if (!*s) return CETCD_EINVAL;
  uint64_t total = 0;
  while (*s) {
    if (!(isdigit((unsigned char)*s) || *s == '.')) return CETCD_EINVAL;
    uint64_t whole = 0;
    bool pre = false, post = false, over = false;
    while (isdigit((unsigned char)*s)) {
      if (whole > (UINT64_C(1) << 63) / 10) over = true;
      whole = whole * 10 + (uint64_t)(*s - '0');
      pre = true;
      s++;
    }
    double frac = 0, scale = 1;
    if (*s == '.') {
      s++;
      while (isdigit((unsigned char)*s)) {
        scale /= 10;
        frac += (*s - '0') * scale;
        post = true;
        s++;
      }
    }
    if ((!pre && !post) || over) return CETCD_EINVAL;
    const char *u = s;
    while (*s && !isdigit((unsigned char)*s) && *s != '.') s++;
    size_t ul = (size_t)(s - u);
    if (ul == 0) return CETCD_EINVAL; /* missing unit */
    uint64_t mul = 0;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
      if (strlen(units[i].u) == ul && !memcmp(units[i].u, u, ul)) mul = units[i].mul;
    if (!mul) return CETCD_EINVAL; /* unknown unit */
    if (whole > (UINT64_C(1) << 63) / mul) return CETCD_EINVAL;
    uint64_t v = whole * mul + (uint64_t)(frac * (double)mul);
    if (v > (UINT64_C(1) << 63) - total) return CETCD_EINVAL;
    total += v;
  }
  if (!neg && total > (uint64_t)INT64_MAX) return CETCD_EINVAL;
  *ns = neg ? (int64_t)(0 - total) : (int64_t)total;
  return 0;
}

/* Nanoseconds to milliseconds, keeping a positive sub-millisecond value non-zero. */
int64_t config_ns_to_ms(int64_t ns) {
  int64_t ms = ns / 1000000;
  if (ms == 0 && ns > 0) ms = 1;
  return ms;
}

/* ---- setting one flag --------------------------------------------------------------- */

/* Writes Go's reason text for a numeric parse result. */
static const char *num_reason(int rc) { return rc == -2 ? "value out of range" : "parse error"; }

/* Sets flag f from the text v. On a bad value writes the reason (the part after
 * "invalid value ... for flag -x: ") into why and returns CETCD_EINVAL. */
int config_set_value(cetcd_config_t *cfg, const flag_def_t *f, const char *v, char *why, size_t whylen) {
  bool store = f->off != NOFIELD;
  switch (f->type) {
    case T_STR:
      if (store) config_set_str(FIELD(cfg, f, char *), v);
      return 0;
    case T_IGN:
      return 0;
    case T_BOOL: {
      bool b;
      if (config_go_parse_bool(v, &b)) return config_errf(why, whylen, "parse error");
      if (store) *FIELD(cfg, f, bool) = b;
      return 0;
    }
    case T_U32:
    case T_U64:
    case T_SIZE: {
      uint64_t u;
      int rc = config_go_parse_uint(v, f->type == T_U32 ? 32 : 64, &u);
      if (rc) return config_errf(why, whylen, "%s", num_reason(rc));
      if (!store) return 0;
      if (f->type == T_U32)
        *FIELD(cfg, f, uint32_t) = (uint32_t)u;
      else if (f->type == T_U64)
        *FIELD(cfg, f, uint64_t) = u;
      else
        *FIELD(cfg, f, size_t) = (size_t)u;
      return 0;
    }
    case T_I64: {
      int64_t i;
      int rc = config_go_parse_int64(v, &i);
      if (rc) return config_errf(why, whylen, "%s", num_reason(rc));
      if (store) *FIELD(cfg, f, int64_t) = i;
      return 0;
    }
    case T_DUR: {
      int64_t ns;
      if (config_parse_duration(v, &ns)) return config_errf(why, whylen, "parse error");
      if (store) *FIELD(cfg, f, int64_t) = config_ns_to_ms(ns);
      return 0;
    }
    case T_CHOICE:
    case T_CMODE: {
      size_t vl = strlen(v);
      const char *c = f->choices;
      int idx = 0;
      while (c && *c) {
        size_t cl = strcspn(c, "|");
        if (cl == vl && !memcmp(c, v, vl)) {
          if (!store) return 0;
          if (f->type == T_CMODE)
            *FIELD(cfg, f, enum config_compaction_mode) = (enum config_compaction_mode)idx;
          else
            config_set_str(FIELD(cfg, f, char *), v);
          return 0;
        }
        c += cl + (c[cl] == '|');
        idx++;
      }
      char list[160] = "";
      size_t used = 0;
      for (c = f->choices; *c && used + 8 < sizeof(list);) {
        size_t cl = strcspn(c, "|");
        used +=
            (size_t)snprintf(list + used, sizeof(list) - used, "%s\"%.*s\"", used ? ", " : "", (int)cl, c);
        c += cl + (c[cl] == '|');
      }
      return config_errf(why, whylen, "valid values are %s", list);
    }
    case T_URLS:
    case T_CORS: {
      char **v2 = NULL;
      size_t n2 = 0;
      if (f->type == T_CORS && !strcmp(v, "*")) {
        config_strv_push(&v2, &n2, "*");
      } else {
        url_list_t l;
        if (urls_parse_list(v, &l, why, whylen)) return CETCD_EINVAL;
        for (size_t i = 0; i < l.n; i++) config_strv_push(&v2, &n2, l.v[i].str);
        urls_list_free(&l);
      }
      if (store) {
        config_strv_free(FIELD(cfg, f, char **), COUNT(cfg, f));
        *FIELD(cfg, f, char **) = v2;
        *COUNT(cfg, f) = n2;
      } else {
        config_strv_free(&v2, &n2);
      }
      return 0;
    }
    case T_SLIST:
    case T_LIST: {
      char **v2;
      size_t n2;
      config_split_list(v, f->type == T_SLIST, &v2, &n2);
      if (store) {
        config_strv_free(FIELD(cfg, f, char **), COUNT(cfg, f));
        *FIELD(cfg, f, char **) = v2;
        *COUNT(cfg, f) = n2;
      } else {
        config_strv_free(&v2, &n2);
      }
      return 0;
    }
    default:
      return config_errf(why, whylen, "not a flag");
  }
}

/* Records a warning for a flag that is accepted but has no effect in cetcd. */
void config_note_ignored(cetcd_config_t *cfg, const flag_def_t *f) {
  if (f->type == T_IGN)
    config_warnf(cfg, "flag \"-%s\" is no longer supported - ignoring", f->name);
  else if (f->fl & F_IGNORE)
    config_warnf(cfg, "--%s is accepted for etcd compatibility but has no effect in cetcd", f->name);
}
/* Wraps a parse/validation message the way etcd prints it. */
int config_verify_fail(char *err, size_t errlen, const char *msg) {
  return config_errf(err, errlen, "error verifying flags, %s. See 'cetcd --help'.", msg);
}
