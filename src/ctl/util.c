/* cetcdctl helpers: client creation, etcdctl-style errors and exit codes, and Go-compatible
 * formatting (strconv.Quote, time.Duration.String, go-humanize Bytes, encoding/json). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl/ctl.h"

/* ---- client and errors -------------------------------------------------------------- */

/* Credentials from --user/--password (etcdctl's authCfgFromCmd), resolved once: "user",
 * "user:password" or --password; a missing password is asked for on the terminal. */
static bool creds_done;
static char *cred_user, *cred_pass;

/* Fills the credentials of o from the global flags. */
static void ctl_creds(cetcd_client_opts_t *o) {
  if (!g_ctl.user || !*g_ctl.user) return;
  if (!creds_done) {
    creds_done = true;
    if (g_ctl.password && *g_ctl.password) {
      cred_user = strdup(g_ctl.user);
      cred_pass = strdup(g_ctl.password);
    } else if (strchr(g_ctl.user, ':')) {
      const char *colon = strchr(g_ctl.user, ':');
      cred_user = strndup(g_ctl.user, (size_t)(colon - g_ctl.user));
      cred_pass = strdup(colon + 1);
    } else {
      cred_user = strdup(g_ctl.user);
      char err[128];
      cred_pass = ctl_ask_password("Password: ", err, sizeof err);
      if (!cred_pass) ctl_die(EXIT_ERR, "%s", err);
    }
    if (!cred_user || !cred_pass) abort();
  }
  o->username = cred_user;
  o->password = cred_pass;
}

/* TLS options from the global flags, as etcdctl's newClientCfg: a TLS config when a
 * certificate flag is given or --insecure-transport=false; --insecure-skip-tls-verify
 * only with one. https:// endpoints use TLS (system CAs) in any case. */
static void ctl_tls(cetcd_client_opts_t *o) {
  bool any = (g_ctl.cert && *g_ctl.cert) || (g_ctl.key && *g_ctl.key) || (g_ctl.cacert && *g_ctl.cacert);
  o->tls = any || !g_ctl.insecure_transport;
  o->ca_file = g_ctl.cacert;
  o->cert_file = g_ctl.cert;
  o->key_file = g_ctl.key;
  o->insecure_skip_verify = o->tls && g_ctl.insecure_skip_verify;
}

cetcd_client_t *ctl_client(void) {
  cetcd_client_opts_t o = {0};
  o.endpoints = (const char *const *)g_ctl.endpoints;
  o.n_endpoints = g_ctl.n_endpoints;
  o.dial_timeout_ms = (int)g_ctl.dial_timeout_ms;
  o.request_timeout_ms = g_ctl.command_timeout_ms > 0 ? (int)g_ctl.command_timeout_ms : -1;
  o.lazy_connect = true;
  ctl_creds(&o);
  ctl_tls(&o);
  cetcd_client_t *c = NULL;
  int rc = cetcd_client_new(&o, &c);
  if (rc != 0) ctl_die(EXIT_BADCONN, "%s", ctl_errmsg(rc));
  /* clientv3.New gets the token while dialing: a refused login is a failed connection */
  if (o.username && (rc = cetcd_client_authenticate(c)) != 0) ctl_die_call(EXIT_BADCONN, rc, NULL, NULL);
  return c;
}

int ctl_client_for(const char *endpoint, int64_t request_timeout_ms, cetcd_client_t **out) {
  cetcd_client_opts_t o = {0};
  const char *eps[1] = {endpoint};
  o.endpoints = eps;
  o.n_endpoints = 1;
  o.dial_timeout_ms = (int)g_ctl.dial_timeout_ms;
  o.request_timeout_ms = request_timeout_ms > 0 ? (int)request_timeout_ms : -1;
  o.lazy_connect = true;
  ctl_creds(&o);
  ctl_tls(&o);
  return cetcd_client_new(&o, out);
}

const char *ctl_errmsg(int code) {
  const cetcd_error_info_t *e = cetcd_client_last_error(NULL);
  if (e->code == code && e->grpc_status != 0 && e->message[0]) return e->message;
  switch (code) {
    case CETCD_ETIMEOUT:
    case CETCD_EUNAVAILABLE:
      return "context deadline exceeded";
    case CETCD_ECANCELED:
      return "context canceled";
    case CETCD_ECOMPACTED:
      return "etcdserver: mvcc: required revision has been compacted";
    case CETCD_EFUTUREREV:
      return "etcdserver: mvcc: required revision is a future revision";
    case CETCD_ELEASENOTFOUND:
      return "etcdserver: requested lease not found";
    case CETCD_EKEYNOTFOUND:
      return "etcdserver: key not found";
    case CETCD_ENOSPACE:
      return "etcdserver: mvcc: database space exceeded";
    case CETCD_EKEYEMPTY:
      return "etcdserver: key is not provided";
    case CETCD_EDUPKEY:
      return "etcdserver: duplicate key given in txn request";
    case CETCD_ETOOMANYOPS:
      return "etcdserver: too many operations in txn request";
    case CETCD_ELEASEEXISTS:
      return "etcdserver: lease already exists";
    case CETCD_ETTLTOOLARGE:
      return "etcdserver: too large lease TTL";
    default:
      return cetcd_strerror(code);
  }
}

/* gRPC status code names as grpc-go prints them. */
static const char *grpc_code_name(int c) {
  static const char *n[] = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  return c >= 0 && c <= 16 ? n[c] : "Unknown";
}

/* Writes s as a JSON string without HTML escaping (zap's encoder). */
static void zap_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      fprintf(f, "\\%c", ch);
    else if (ch == '\n')
      fputs("\\n", f);
    else if (ch == '\t')
      fputs("\\t", f);
    else if (ch == '\r')
      fputs("\\r", f);
    else if (ch < 0x20)
      fprintf(f, "\\u%04x", ch);
    else
      fputc(ch, f);
  }
  fputc('"', f);
}

void ctl_warn_unary(int code, const char *endpoint) {
  const cetcd_error_info_t *e = cetcd_client_last_error(NULL);
  if (e->code != code || e->grpc_status == 0) return;
  char ts[64], target[160], err[700];
  ctl_iso_time(ts, sizeof(ts));
  unsigned char r[16];
  for (size_t i = 0; i < sizeof(r); i++) r[i] = (unsigned char)(random() & 0xff);
  snprintf(target, sizeof(target),
           "endpoint://client-%02x%02x%02x%02x-%02x%02x-4%x%02x-%x%x%02x-%02x%02x%02x%02x%02x%02x/%s", r[0],
           r[1], r[2], r[3], r[4], r[5], r[6] & 15, r[7], 8 | (r[8] & 3), r[8] >> 4, r[9], r[10], r[11],
           r[12], r[13], r[14], r[15], endpoint ? endpoint : g_ctl.endpoints[0]);
  snprintf(err, sizeof(err), "rpc error: code = %s desc = %s", grpc_code_name(e->grpc_status), e->message);
  fprintf(stderr,
          "{\"level\":\"warn\",\"ts\":\"%s\",\"caller\":\"clientv3/retry_interceptor.go:62\",\"msg\":"
          "\"retrying of unary invoker failed\",\"target\":",
          ts);
  zap_str(stderr, target);
  fputs(",\"attempt\":0,\"error\":", stderr);
  zap_str(stderr, err);
  fputs("}\n", stderr);
}

_Noreturn void ctl_die(int status, const char *fmt, ...) {
  fflush(stdout);
  va_list ap;
  va_start(ap, fmt);
  fputs("Error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(status);
}

_Noreturn void ctl_die_call(int status, int code, const char *prefix, const char *suffix) {
  ctl_warn_unary(code, NULL);
  ctl_die(status, "%s%s%s", prefix ? prefix : "", ctl_errmsg(code), suffix ? suffix : "");
}

void ctl_require_format(bool supported) {
  if (!supported) ctl_die(EXIT_BADFEATURE, "%s not supported as output format", g_ctl.write_out);
}

int ctl_header(cetcd_client_t *c, cetcd_header_t *h) {
  cetcd_get_opts_t o = {0};
  o.count_only = true;
  o.serializable = true;
  cetcd_get_result_t *r = NULL;
  int rc = cetcd_get(c, "\0", 1, &o, &r);
  if (rc == 0) *h = r->header;
  cetcd_get_result_free(r);
  return rc;
}

/* ---- parsing ------------------------------------------------------------------------ */

int ctl_parse_int(const char *s, int base, int64_t *out, char *err, size_t errlen) {
  const char *p = s;
  bool neg = false;
  if (*p == '+' || *p == '-') neg = *p++ == '-';
  if (!*p) goto syntax;
  uint64_t v = 0;
  bool range = false;
  for (; *p; p++) {
    int d;
    if (*p >= '0' && *p <= '9')
      d = *p - '0';
    else if (*p >= 'a' && *p <= 'z')
      d = *p - 'a' + 10;
    else if (*p >= 'A' && *p <= 'Z')
      d = *p - 'A' + 10;
    else if (*p == '_')
      goto syntax;
    else
      goto syntax;
    if (d >= base) goto syntax;
    if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) range = true;
    v = v * (uint64_t)base + (uint64_t)d;
  }
  if (range || v > (uint64_t)INT64_MAX + (neg ? 1u : 0u)) {
    snprintf(err, errlen, "strconv.ParseInt: parsing \"%s\": value out of range", s);
    return -1;
  }
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return 0;
syntax:
  snprintf(err, errlen, "strconv.ParseInt: parsing \"%s\": invalid syntax", s);
  return -1;
}

int ctl_parse_duration(const char *s, int64_t *ms) {
  static const struct {
    const char *u;
    double ns;
  } units[] = {{"ns", 1},   {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3},
               {"ms", 1e6}, {"s", 1e9},  {"m", 60e9},        {"h", 3600e9}};
  const char *p = s;
  bool neg = false;
  if (*p == '+' || *p == '-') neg = *p++ == '-';
  if (strcmp(p, "0") == 0) return *ms = 0, 0;
  if (!*p) return -1;
  double total = 0;
  while (*p) {
    char *end;
    if (!((*p >= '0' && *p <= '9') || *p == '.')) return -1;
    double v = strtod(p, &end);
    if (end == p) return -1;
    p = end;
    size_t best = 0, bl = 0;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
      size_t l = strlen(units[i].u);
      if (strncmp(p, units[i].u, l) == 0 && l > bl) best = i, bl = l;
    }
    if (!bl) return -1;
    total += v * units[best].ns;
    p += bl;
  }
  *ms = (int64_t)((neg ? -total : total) / 1e6);
  return 0;
}

size_t ctl_read_stdin(char **out) {
  size_t cap = 4096, n = 0;
  char *b = malloc(cap);
  if (!b) abort();
  for (;;) {
    if (n == cap) {
      cap *= 2;
      b = realloc(b, cap);
      if (!b) abort();
    }
    ssize_t r = read(0, b + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  *out = b;
  return n;
}

size_t ctl_prefix_end(const char *key, size_t klen, char **end) {
  char *e = malloc(klen + 1);
  if (!e) abort();
  memcpy(e, key, klen);
  for (size_t i = klen; i > 0; i--) {
    if ((unsigned char)e[i - 1] < 0xff) {
      e[i - 1]++;
      e[i] = 0;
      *end = e;
      return i;
    }
  }
  e[0] = 0;
  *end = e;
  return 1;
}

/* ---- formatting --------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (n bytes left) and its code point; 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n, uint32_t *cp) {
  if (p[0] < 0x80) return *cp = p[0], 1;
  size_t l;
  uint32_t c, min;
  if ((p[0] & 0xe0) == 0xc0)
    l = 2, c = p[0] & 0x1f, min = 0x80;
  else if ((p[0] & 0xf0) == 0xe0)
    l = 3, c = p[0] & 0x0f, min = 0x800;
  else if ((p[0] & 0xf8) == 0xf0)
    l = 4, c = p[0] & 0x07, min = 0x10000;
  else
    return 0;
  if (l > n) return 0;
  for (size_t i = 1; i < l; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    c = (c << 6) | (p[i] & 0x3f);
  }
  if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
  *cp = c;
  return l;
}

void ctl_fquote(FILE *f, const void *data, size_t n) {
  const unsigned char *p = data;
  fputc('"', f);
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t l = utf8_len(p + i, n - i, &cp);
    if (l == 0) {
      fprintf(f, "\\x%02x", p[i]);
      i++;
      continue;
    }
    if (l == 1) {
      unsigned char c = p[i];
      switch (c) {
        case '"':
          fputs("\\\"", f);
          break;
        case '\\':
          fputs("\\\\", f);
          break;
        case '\a':
          fputs("\\a", f);
          break;
        case '\b':
          fputs("\\b", f);
          break;
        case '\f':
          fputs("\\f", f);
          break;
        case '\n':
          fputs("\\n", f);
          break;
        case '\r':
          fputs("\\r", f);
          break;
        case '\t':
          fputs("\\t", f);
          break;
        case '\v':
          fputs("\\v", f);
          break;
        default:
          if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
          else
            fputc(c, f);
      }
    } else if (cp < 0xa0 || cp == 0xad || cp == 0xfeff) {
      fprintf(f, "\\u%04x", cp);
    } else {
      fwrite(p + i, 1, l, f);
    }
    i += l;
  }
  fputc('"', f);
}

/* Writes v / 10^prec with trailing fractional zeros removed. */
static int frac_str(char *buf, size_t len, uint64_t v, int prec) {
  uint64_t pw = 1;
  for (int i = 0; i < prec; i++) pw *= 10;
  uint64_t ip = v / pw, fp = v % pw;
  if (!fp) return snprintf(buf, len, "%llu", (unsigned long long)ip);
  char fs[24];
  snprintf(fs, sizeof(fs), "%0*llu", prec, (unsigned long long)fp);
  size_t l = strlen(fs);
  while (l && fs[l - 1] == '0') fs[--l] = 0;
  return snprintf(buf, len, "%llu.%s", (unsigned long long)ip, fs);
}

void ctl_go_duration(int64_t ns, char *buf, size_t len) {
  const char *sign = ns < 0 ? "-" : "";
  uint64_t u = ns < 0 ? (uint64_t)(-ns) : (uint64_t)ns;
  char n[64];
  if (u == 0) {
    snprintf(buf, len, "0s");
  } else if (u < 1000) {
    snprintf(buf, len, "%s%lluns", sign, (unsigned long long)u);
  } else if (u < 1000000) {
    frac_str(n, sizeof(n), u, 3);
    snprintf(buf, len, "%s%s\xc2\xb5s", sign, n);
  } else if (u < 1000000000) {
    frac_str(n, sizeof(n), u, 6);
    snprintf(buf, len, "%s%sms", sign, n);
  } else {
    uint64_t h = u / 3600000000000ull, m = (u / 60000000000ull) % 60, s = u % 60000000000ull;
    frac_str(n, sizeof(n), s, 9);
    char hs[32] = "", ms[32] = "";
    if (h) snprintf(hs, sizeof(hs), "%lluh", (unsigned long long)h);
    if (h || m) snprintf(ms, sizeof(ms), "%llum", (unsigned long long)m);
    snprintf(buf, len, "%s%s%s%ss", sign, hs, ms, n);
  }
}

void ctl_humanize_bytes(uint64_t s, char *buf, size_t len) {
  static const char *sizes[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  if (s < 10) {
    snprintf(buf, len, "%llu B", (unsigned long long)s);
    return;
  }
  double e = floor(log((double)s) / log(1000.0));
  double val = floor((double)s / pow(1000.0, e) * 10 + 0.5) / 10;
  snprintf(buf, len, val < 10 ? "%.1f %s" : "%.0f %s", val, sizes[(int)e]);
}

int64_t ctl_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void ctl_iso_time(char *buf, size_t len) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char b[32];
  strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf, len, "%s.%03ldZ", b, ts.tv_nsec / 1000000);
}

void ctl_json_str(FILE *f, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s);
  fputc('"', f);
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t l = utf8_len(p + i, n - i, &cp);
    if (l == 0) {
      fputs("\\ufffd", f);
      i++;
      continue;
    }
    if (l == 1) {
      unsigned char c = p[i];
      if (c == '"' || c == '\\')
        fprintf(f, "\\%c", c);
      else if (c == '\n')
        fputs("\\n", f);
      else if (c == '\r')
        fputs("\\r", f);
      else if (c == '\t')
        fputs("\\t", f);
      else if (c < 0x20 || c == '<' || c == '>' || c == '&')
        fprintf(f, "\\u%04x", c);
      else
        fputc(c, f);
    } else if (cp == 0x2028 || cp == 0x2029) {
      fprintf(f, "\\u%04x", cp);
    } else {
      fwrite(p + i, 1, l, f);
    }
    i += l;
  }
  fputc('"', f);
}

void ctl_json_bytes(FILE *f, const void *data, size_t n) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *p = data;
  fputc('"', f);
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    fputc(tbl[v >> 18], f);
    fputc(tbl[(v >> 12) & 63], f);
    fputc(tbl[(v >> 6) & 63], f);
    fputc(tbl[v & 63], f);
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)p[i] << 16;
    fprintf(f, "%c%c==", tbl[v >> 18], tbl[(v >> 12) & 63]);
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
    fprintf(f, "%c%c%c=", tbl[v >> 18], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63]);
  }
  fputc('"', f);
}

/* ---- signals ------------------------------------------------------------------------ */

static sigset_t g_sig_old, g_sig_set;
static int g_sig_pipe[2] = {-1, -1};
static void (*g_sig_cb)(int, void *);
static void *g_sig_ctx;

/* Waits for the blocked signals and reports each one. */
static void *sig_thread(void *arg) {
  (void)arg;
  for (;;) {
    int signo = 0;
    if (sigwait(&g_sig_set, &signo) != 0) continue;
    if (g_sig_cb) g_sig_cb(signo, g_sig_ctx);
    unsigned char b = (unsigned char)signo;
    ssize_t w = write(g_sig_pipe[1], &b, 1);
    (void)w;
  }
  return NULL;
}

int ctl_signals(const int *sigs, size_t n, void (*cb)(int signo, void *ctx), void *ctx) {
  sigemptyset(&g_sig_set);
  for (size_t i = 0; i < n; i++) sigaddset(&g_sig_set, sigs[i]);
  g_sig_cb = cb;
  g_sig_ctx = ctx;
  if (pipe2(g_sig_pipe, O_CLOEXEC) != 0) ctl_die(EXIT_ERR, "pipe: %s", strerror(errno));
  pthread_sigmask(SIG_BLOCK, &g_sig_set, &g_sig_old);
  pthread_t t;
  if (pthread_create(&t, NULL, sig_thread, NULL) != 0) ctl_die(EXIT_ERR, "cannot start the signal thread");
  pthread_detach(t);
  return g_sig_pipe[0];
}

void ctl_signals_restore(void) { pthread_sigmask(SIG_SETMASK, &g_sig_old, NULL); }

_Noreturn void ctl_reraise(int signo) {
  fflush(stdout);
  fflush(stderr);
  signal(signo, SIG_DFL);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, signo);
  pthread_sigmask(SIG_UNBLOCK, &s, NULL);
  raise(signo);
  _exit(128 + signo);
}
