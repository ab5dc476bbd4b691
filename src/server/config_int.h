/* Internals shared by the configuration files of src/server/ (config.c, config_flags.c,
 * config_values.c, config_env.c, config_file.c, config_validate.c); nothing outside them
 * includes this header. config.h is the public interface.
 *
 * All functions run on the thread that calls config_parse (main, before the loop starts).
 * Messages are written into caller-provided buffers; strings stored in a cetcd_config_t are
 * owned by it. */
#ifndef CETCD_SERVER_CONFIG_INT_H
#define CETCD_SERVER_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/config.h"

/* ---- the flag table (config_flags.c) -------------------------------------------------- */

/* How a flag's value is parsed and where it is stored. */
enum ftype {
  T_SECTION, /* a heading in --help, not a flag */
  T_STR,     /* char * */
  T_BOOL,    /* bool */
  T_U32,     /* uint32_t, Go ParseUint base 0 */
  T_U64,     /* uint64_t */
  T_SIZE,    /* size_t */
  T_I64,     /* int64_t, Go ParseInt base 0 */
  T_DUR,     /* int64_t milliseconds, from a Go duration */
  T_CHOICE,  /* char *, one of choices */
  T_CMODE,   /* enum config_compaction_mode from "periodic" | "revision" */
  T_URLS,    /* char ** + size_t: sorted unique URL list */
  T_CORS,    /* like T_URLS but "*" is allowed */
  T_SLIST,   /* char ** + size_t: sorted unique strings */
  T_LIST,    /* char ** + size_t: strings in order */
  T_IGN,     /* etcd's removed flags: bool-like, any value, ignored with a warning */
};

/* flag_def_t.fl bits */
#define F_NOYAML 1u /* not a top-level key of etcd's config file */
#define F_IGNORE 2u /* accepted and validated but has no effect: warn when set */
#define F_QUIET 4u  /* accepted and ignored silently */
#define F_HIDDEN 8u /* not listed by --help */
#define F_YSEQ 16u  /* a YAML sequence of strings in the config file ([]string in etcd) */

#define NOFIELD ((size_t)-1)

/* One flag: its name (also the YAML key and, upper-cased, the ETCD_* variable). */
typedef struct flag_def {
  const char *name;
  unsigned char type;
  unsigned char fl;
  size_t off;          /* field offset, NOFIELD to discard */
  size_t off_n;        /* count field offset for list types */
  const char *choices; /* '|'-separated, T_CHOICE only */
  const char *def;     /* default shown by --help */
  const char *help;
} flag_def_t;

/* The table, in --help order, and its length (at most CONFIG_MAX_FLAGS). */
extern const flag_def_t config_flag_defs[];
extern const size_t config_nflags;
#define CONFIG_MAX_FLAGS 160

/* Typed access to a flag's field and list count inside a cetcd_config_t. */
#define FIELD(cfg, f, T) ((T *)((char *)(cfg) + (f)->off))
#define COUNT(cfg, f) ((size_t *)((char *)(cfg) + (f)->off_n))

/* Per-parse state: which flags were given, by which source. */
typedef struct pctx {
  cetcd_config_t *cfg;
  bool set[CONFIG_MAX_FLAGS];     /* given on the command line, in the environment or in the file */
  bool cmdline[CONFIG_MAX_FLAGS]; /* given on the command line */
  bool version;
} pctx_t;

/* Finds a flag by exact name (len bytes of name); returns its index or -1. */
int config_find_flag(const char *name, size_t len);

/* ---- values (config_values.c) --------------------------------------------------------- */

/* Writes a formatted message into err (if room) and returns CETCD_EINVAL. */
int config_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Appends a formatted warning to cfg->warnings (owned by cfg). */
void config_warnf(cetcd_config_t *cfg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Replaces an owned string field with a copy of v. */
void config_set_str(char **field, const char *v);

/* Frees an owned string array and zeroes it. */
void config_strv_free(char ***v, size_t *n);

/* Appends a copy of s to an owned string array. */
void config_strv_push(char ***v, size_t *n, const char *s);

/* Splits s on commas into a new owned array; empty elements are dropped. If sorted, the
 * result is sorted and de-duplicated. */
void config_split_list(const char *s, bool sorted, char ***v, size_t *n);

/* Like Go's strconv.ParseUint(s, 0, bits). Returns 0, -1 (syntax) or -2 (range). */
int config_go_parse_uint(const char *s, int bits, uint64_t *out);

/* Like Go's strconv.ParseInt(s, 0, 64). Returns 0, -1 (syntax) or -2 (range). */
int config_go_parse_int64(const char *s, int64_t *out);

/* Like Go's strconv.ParseBool. Returns 0 or -1. */
int config_go_parse_bool(const char *s, bool *out);

/* Nanoseconds to milliseconds, keeping a positive sub-millisecond value non-zero. */
int64_t config_ns_to_ms(int64_t ns);

/* Sets flag f from the text v (flag syntax). On a bad value writes the reason (the part
 * after "invalid value ... for flag -x: ") into why and returns CETCD_EINVAL. */
int config_set_value(cetcd_config_t *cfg, const flag_def_t *f, const char *v, char *why, size_t whylen);

/* Records a warning for a flag that is accepted but has no effect in cetcd. */
void config_note_ignored(cetcd_config_t *cfg, const flag_def_t *f);

/* Wraps a parse/validation message the way etcd prints it ("error verifying flags, ...
 * See 'cetcd --help'.") into err; returns CETCD_EINVAL. msg may not alias err. */
int config_verify_fail(char *err, size_t errlen, const char *msg);

/* ---- environment (config_env.c) -------------------------------------------------------- */

/* Looks up NAME in envp (NULL-terminated "K=V", may be NULL); returns its value (borrowed
 * from envp) or NULL. */
const char *config_env_get(char **envp, const char *name);

/* Applies ETCD_* variables for flags not given on the command line (etcd's
 * SetFlagsFromEnv), warning about shadowed and unrecognized ones. Returns 0 or
 * CETCD_EINVAL with the full message in err. */
int config_parse_env(pctx_t *px, char **envp, char *err, size_t errlen);

/* ---- config file (config_file.c) ------------------------------------------------------- */

/* Reads the YAML file at path and applies etcd's keys to px->cfg, marking them in px->set.
 * Returns 0, CETCD_EINVAL or -errno, with a message naming the file (and the line, for
 * errors inside it) in err. */
int config_file_load(pctx_t *px, const char *path, char *err, size_t errlen);

/* ---- validation (config_validate.c) ---------------------------------------------------- */

/* Fills derived values (data dir, initial cluster, quota, compaction, auth token) and
 * checks the combination (etcd's Config.Validate). Returns 0 or CETCD_EINVAL with the
 * message (without the "error verifying flags" wrapper) in err. */
int config_validate(pctx_t *px, char *err, size_t errlen);

#endif
