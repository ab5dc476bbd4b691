/* URL parsing and validation with etcd's rules. See urls.h. */
#include "server/urls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cetcd/errors.h"

/* Copies n bytes of s into a new owned NUL-terminated string. */
static char *dupn(const char *s, size_t n) { return xmemdup(s, n); }

/* Formats an error message into err (if any) and returns CETCD_EINVAL. */
static int fail(char *err, size_t errlen, const char *fmt, const char *arg) {
  if (err && errlen) snprintf(err, errlen, fmt, arg);
  return CETCD_EINVAL;
}

/* True if c may appear in a host name or IPv4 literal (Go's url package is lenient about
 * sub-delimiters; whitespace, '/', '?', '#', '@', brackets and '%' outside IPv6 are not). */
static bool host_char_ok(unsigned char c) {
  if (isalnum(c)) return true;
  return strchr("-._~!$&'()*+;=", c) != NULL && c != '\0';
}

/* Splits "host:port" (IPv6 in brackets) like Go's net.SplitHostPort, additionally requiring
 * a decimal port 0..65535. On success sets *h and *hl to the host (without brackets) and *port. */
static int split_host_port(const char *hp, size_t n, const char **h, size_t *hl, int *port, bool *v6) {
  const char *colon;
  *v6 = false;
  if (n > 0 && hp[0] == '[') {
    const char *rb = memchr(hp, ']', n);
    if (!rb) return -1;
    if ((size_t)(rb - hp) + 1 >= n || rb[1] != ':') return -1;
    *h = hp + 1;
    *hl = (size_t)(rb - hp - 1);
    colon = rb + 1;
    *v6 = true;
  } else {
    colon = NULL;
    for (size_t i = 0; i < n; i++) {
      if (hp[i] == ':') {
        if (colon) return -1; /* too many colons (IPv6 needs brackets) */
        colon = hp + i;
      }
    }
    if (!colon) return -1; /* missing port */
    *h = hp;
    *hl = (size_t)(colon - hp);
  }
  const char *p = colon + 1, *end = hp + n;
  if (p == end || end - p > 5) return -1;
  long v = 0;
  for (; p < end; p++) {
    if (!isdigit((unsigned char)*p)) return -1;
    v = v * 10 + (*p - '0');
  }
  if (v > 65535) return -1;
  *port = (int)v;
  return 0;
}

int urls_parse(const char *s, url_t *u, int flags, char *err, size_t errlen) {
  memset(u, 0, sizeof(*u));
  if (!s) s = "";
  while (isspace((unsigned char)*s)) s++;
  size_t len = strlen(s);
  while (len > 0 && isspace((unsigned char)s[len - 1])) len--;
  char *in = dupn(s, len); /* the trimmed input, for messages */
  int rc = CETCD_EINVAL;

  const char *sep = strstr(in, "://");
  size_t sl = sep ? (size_t)(sep - in) : 0;
  bool scheme_ok = sl > 0 && isalpha((unsigned char)in[0]);
  for (size_t i = 0; scheme_ok && i < sl; i++)
    if (!isalnum((unsigned char)in[i]) && in[i] != '+' && in[i] != '-' && in[i] != '.') scheme_ok = false;
  char scheme[8] = "";
  if (scheme_ok && sl < sizeof(scheme)) {
    for (size_t i = 0; i < sl; i++) scheme[i] = (char)tolower((unsigned char)in[i]);
    scheme[sl] = '\0';
  }
  if (strcmp(scheme, "http") && strcmp(scheme, "https") && strcmp(scheme, "unix") &&
      strcmp(scheme, "unixs")) {
    rc = fail(err, errlen, "URL scheme must be http, https, unix, or unixs: %s", in);
    goto out;
  }
  const char *auth = sep + 3;
  size_t al = strcspn(auth, "/?#");
  const char *rest = auth + al;
  if (memchr(auth, '@', al)) {
    rc = fail(err, errlen, "URL must not contain user information: %s", in);
    goto out;
  }
  const char *h;
  size_t hl;
  int port;
  bool v6;
  if (split_host_port(auth, al, &h, &hl, &port, &v6)) {
    rc = fail(err, errlen, "URL address does not have the form \"host:port\": %s", in);
    goto out;
  }
  if (v6) {
    char tmp[INET6_ADDRSTRLEN + 1];
    struct in6_addr a6;
    if (hl >= sizeof(tmp)) goto badhost;
    memcpy(tmp, h, hl);
    tmp[hl] = '\0';
    if (inet_pton(AF_INET6, tmp, &a6) != 1) goto badhost;
  } else {
    for (size_t i = 0; i < hl; i++)
      if (!host_char_ok((unsigned char)h[i])) goto badhost;
  }
  if (*rest == '?' || *rest == '#') {
    rc = fail(err, errlen, "URL must not contain a query or fragment: %s", in);
    goto out;
  }
  size_t pl = strcspn(rest, "?#");
  if (rest[pl] != '\0') {
    rc = fail(err, errlen, "URL must not contain a query or fragment: %s", in);
    goto out;
  }
  if (pl > 0 && !(flags & URLS_ALLOW_PATH)) {
    rc = fail(err, errlen, "URL must not contain a path: %s", in);
    goto out;
  }
  for (size_t i = 0; i < pl; i++) {
    if (isspace((unsigned char)rest[i])) {
      rc = fail(err, errlen, "URL path must not contain white space: %s", in);
      goto out;
    }
  }
  u->scheme = xstrdup(scheme);
  u->host = dupn(h, hl);
  u->port = port;
  u->hostport = dupn(auth, al);
  u->path = dupn(rest, pl);
  size_t n = strlen(scheme) + 3 + al + pl + 1;
  u->str = xmalloc(n);
  snprintf(u->str, n, "%s://%s%s", scheme, u->hostport, u->path);
  u->is_unix = scheme[0] == 'u';
  u->is_tls = !strcmp(scheme, "https") || !strcmp(scheme, "unixs");
  rc = 0;
  goto out;
badhost:
  rc = fail(err, errlen, "URL has an invalid host: %s", in);
out:
  free(in);
  return rc;
}

int urls_parse_one(const char *s, url_t *u, char *err, size_t errlen) {
  return urls_parse(s, u, 0, err, errlen);
}

void urls_free_one(url_t *u) {
  free(u->scheme);
  free(u->host);
  free(u->hostport);
  free(u->path);
  free(u->str);
  memset(u, 0, sizeof(*u));
}

/* qsort comparator: by normalized string. */
static int cmp_url(const void *a, const void *b) {
  return strcmp(((const url_t *)a)->str, ((const url_t *)b)->str);
}

int urls_parse_list(const char *s, url_list_t *out, char *err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  if (!s) s = "";
  size_t cap = 1;
  for (const char *p = s; *p; p++)
    if (*p == ',') cap++;
  url_t *v = xcalloc(cap, sizeof(url_t));
  size_t n = 0;
  const char *p = s;
  for (;;) {
    const char *c = strchr(p, ',');
    size_t len = c ? (size_t)(c - p) : strlen(p);
    char *one = dupn(p, len);
    int rc = urls_parse(one, &v[n], 0, err, errlen);
    free(one);
    if (rc) {
      for (size_t i = 0; i < n; i++) urls_free_one(&v[i]);
      free(v);
      return rc;
    }
    n++;
    if (!c) break;
    p = c + 1;
  }
  qsort(v, n, sizeof(url_t), cmp_url);
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    if (w > 0 && !strcmp(v[w - 1].str, v[i].str)) {
      urls_free_one(&v[i]);
      continue;
    }
    if (w != i) {
      v[w] = v[i];
      memset(&v[i], 0, sizeof(v[i]));
    }
    w++;
  }
  out->v = v;
  out->n = w;
  return 0;
}

void urls_list_free(url_list_t *l) {
  for (size_t i = 0; i < l->n; i++) urls_free_one(&l->v[i]);
  free(l->v);
  memset(l, 0, sizeof(*l));
}

/* True if s is an IPv4 or IPv6 literal. */
static bool is_ip(const char *s) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int urls_check_bind(const url_t *u, char *err, size_t errlen) {
  if (u->is_unix) return 0;
  if (!strcmp(u->host, "localhost") || is_ip(u->host)) return 0;
  return fail(err, errlen, "expected IP in URL for binding (%s)", u->str);
}

int urls_check_advertise(const url_t *u, char *err, size_t errlen) {
  if (u->host[0]) return 0;
  return fail(err, errlen, "unexpected empty host (%s)", u->str);
}

int urls_listen_addr(const url_t *u, char *host, size_t hostlen, int *port) {
  const char *h;
  if (u->is_unix) {
    h = u->hostport;
    *port = -1;
  } else {
    if (urls_check_bind(u, NULL, 0)) return CETCD_EINVAL;
    h = !strcmp(u->host, "localhost") ? "127.0.0.1" : u->host;
    *port = u->port;
  }
  if (strlen(h) >= hostlen) return CETCD_EINVAL;
  memcpy(host, h, strlen(h) + 1);
  return 0;
}
