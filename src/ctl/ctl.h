/* cetcdctl: an etcdctl (v3 API) compatible command line client built on libcetcd's
 * public API. This header is shared by the command files: global options, the flag
 * parser, the command table, error reporting with etcdctl's exit codes, and small
 * formatting helpers (Go-style quoting, durations, human sizes). */
#ifndef CETCD_CTL_H
#define CETCD_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cetcd/cetcd.h"

/* etcdctl's exit codes. */
enum {
  EXIT_OK = 0,
  EXIT_ERR = 1,
  EXIT_BADCONN = 2,
  EXIT_INVALID_INPUT = 3,
  EXIT_BADFEATURE = 4,
  EXIT_INTERRUPTED = 5,
  EXIT_IO = 6,
  EXIT_BADARGS = 128
};

typedef enum ctl_fmt { FMT_SIMPLE, FMT_JSON, FMT_FIELDS, FMT_TABLE, FMT_PROTOBUF } ctl_fmt_t;

/* Global options (flags inherited by every command, or ETCDCTL_* variables). */
typedef struct ctl_global {
  char **endpoints;
  size_t n_endpoints;
  int64_t dial_timeout_ms;
  int64_t command_timeout_ms;
  bool command_timeout_set;
  int64_t keepalive_time_ms, keepalive_timeout_ms;
  char *write_out;
  bool hex;
  bool debug;
  char *user, *password, *cert, *key, *cacert, *discovery_srv, *discovery_srv_name;
  bool insecure_transport, insecure_skip_verify, insecure_discovery;
  ctl_fmt_t fmt;
  const char *cmd_path; /* e.g. "lease grant", for usage text */
} ctl_global_t;

extern ctl_global_t g_ctl;

/* ---- flags -------------------------------------------------------------------------- */

typedef enum flag_type {
  FLAG_BOOL,
  FLAG_STRING,
  FLAG_INT64,
  FLAG_INT,
  FLAG_DURATION,
  FLAG_STRINGS
} flag_type_t;

/* One flag: --name / -c. ptr points at bool, char *, int64_t, int, int64_t (ms) or a
 * string list (ctl_strings_t). changed (optional) is set when given on the command line. */
typedef struct ctl_flag {
  const char *name;
  char shorthand;
  flag_type_t type;
  void *ptr;
  const char *usage;
  bool *changed;
  const char *def; /* default as shown in usage ("=5s", "[=true]"); NULL: the type's zero */
} ctl_flag_t;

typedef struct ctl_strings {
  char **v;
  size_t n;
  bool set;
} ctl_strings_t;

/* Positional arguments after flag parsing. Arguments after a "--" go to exec (and
 * dashdash is set); pos holds the ones before. */
typedef struct ctl_args {
  char **pos;
  int npos;
  char **exec;
  int nexec;
  bool dashdash;
} ctl_args_t;

/* Parses argv[0..argc) against flags (NULL-name terminated, may be NULL) plus, when
 * with_global, the global flags. Returns 0, or -1 with a message in err. */
int ctl_parse_flags(const ctl_flag_t *flags, bool with_global, int argc, char **argv, ctl_args_t *out,
                    char *err, size_t errlen);
/* Frees the arrays of a ctl_args_t (not the strings, which belong to argv). */
void ctl_args_free(ctl_args_t *a);

/* ---- commands ----------------------------------------------------------------------- */

typedef struct ctl_cmd ctl_cmd_t;
struct ctl_cmd {
  const char *name;
  const char *use;
  const char *short_desc;
  int (*run)(ctl_args_t *a); /* returns the exit status */
  const ctl_flag_t *flags;
  const ctl_cmd_t *subs; /* NULL-name terminated */
  void (*reset)(void);   /* resets the flag variables to their defaults (optional) */
};

extern const ctl_cmd_t ctl_cmd_get, ctl_cmd_put, ctl_cmd_del, ctl_cmd_txn, ctl_cmd_watch, ctl_cmd_lease,
    ctl_cmd_compaction, ctl_cmd_defrag, ctl_cmd_endpoint, ctl_cmd_alarm, ctl_cmd_member, ctl_cmd_snapshot,
    ctl_cmd_churn, ctl_cmd_primary, ctl_cmd_lock, ctl_cmd_elect, ctl_cmd_version, ctl_cmd_move_leader,
    ctl_cmd_auth, ctl_cmd_user, ctl_cmd_role;

/* ---- client and errors ---------------------------------------------------------------- */

/* Creates a client for the global endpoints (lazy connect) with the command timeout as
 * request timeout; exits with EXIT_BADCONN on failure. */
cetcd_client_t *ctl_client(void);
/* Like ctl_client for one endpoint. Returns 0 or a CETCD_E* code. */
int ctl_client_for(const char *endpoint, int64_t request_timeout_ms, cetcd_client_t **out);
/* The etcdctl-style message for a failed call's code (server message when there is one). */
const char *ctl_errmsg(int code);
/* When the last failure was answered by the server with a gRPC status, writes the zap
 * warning line clientv3's retry interceptor logs for failed unary calls. */
void ctl_warn_unary(int code, const char *endpoint);
/* Prints "Error: <msg>" on stderr and exits with status code. */
_Noreturn void ctl_die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ctl_warn_unary + ctl_die(status, "%s%s%s", prefix, ctl_errmsg(code), suffix). */
_Noreturn void ctl_die_call(int status, int code, const char *prefix, const char *suffix);
/* Exits with EXIT_BADFEATURE when the output format cannot print `what` (etcdctl's
 * "<fmt> not supported as output format"). */
void ctl_require_format(bool supported);

/* ---- parsing and formatting helpers --------------------------------------------------- */

/* Parses a Go duration ("5s", "1m30s", "250ms", "1.5h"). Returns 0 and ms, or -1. */
int ctl_parse_duration(const char *s, int64_t *ms);
/* Parses a signed integer in base 10 or 16 like Go's strconv.ParseInt; on failure writes
 * Go's message ("strconv.ParseInt: parsing \"x\": invalid syntax") into err. */
int ctl_parse_int(const char *s, int base, int64_t *out, char *err, size_t errlen);
/* Appends Go's strconv.Quote of bytes to f. */
void ctl_fquote(FILE *f, const void *p, size_t n);
/* Writes Go's time.Duration.String() of ns nanoseconds into buf. */
void ctl_go_duration(int64_t ns, char *buf, size_t len);
/* Writes go-humanize's Bytes(n) ("20 kB") into buf. */
void ctl_humanize_bytes(uint64_t n, char *buf, size_t len);
/* Monotonic clock in nanoseconds. */
int64_t ctl_now_ns(void);
/* Writes the current UTC time as "2006-01-02T15:04:05.000Z" into buf. */
void ctl_iso_time(char *buf, size_t len);
/* Derives the prefix range end of key (etcd's GetPrefixRangeEnd) into *end (malloc'd). */
size_t ctl_prefix_end(const char *key, size_t klen, char **end);
/* Splits a line into arguments like etcdctl's argify (double and single quotes); returns
 * the count and a malloc'd array of malloc'd strings in *out. */
int ctl_argify(const char *s, char ***out);
/* Asks for a password on the terminal (/dev/tty, echo off), like speakeasy.Ask: writes
 * prompt, reads one line. Returns a malloc'd password, or NULL with the reason in err. */
char *ctl_ask_password(const char *prompt, char *err, size_t errlen);
/* Reads the first whitespace-delimited word of stdin (Go's fmt.Scanf("%s")); "" if none.
 * Returns a malloc'd string. */
char *ctl_scan_word(void);

/* Reads all of stdin into a malloc'd buffer; returns its length. */
size_t ctl_read_stdin(char **out);

/* JSON output (Go encoding/json conventions): a string with HTML-safe escaping, bytes in
 * standard base64. */
void ctl_json_str(FILE *f, const char *s);
void ctl_json_bytes(FILE *f, const void *p, size_t n);

/* Concurrency-free helpers used by several commands: current store revision via a
 * serializable count-only get. Returns 0 and *header, or a code. */
int ctl_header(cetcd_client_t *c, cetcd_header_t *h);

/* Signal handling for the long-running commands (watch exec, lock, elect, primary): blocks
 * sigs in every thread (call before creating the client, whose I/O thread inherits the
 * mask) and starts a thread that, for each signal, calls cb(signo, ctx) (may be NULL) and
 * writes the signal number as one byte to a pipe. Returns the pipe's read end. */
int ctl_signals(const int *sigs, size_t n, void (*cb)(int signo, void *ctx), void *ctx);
/* Restores the signal mask the process started with (in a forked child before exec). */
void ctl_signals_restore(void);
/* Ends the process the way signal signo would (default action), else exits 128+signo. */
_Noreturn void ctl_reraise(int signo);
#endif
