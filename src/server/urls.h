/* URL parsing with etcd's rules (pkg/types/urls.go): "scheme://host:port" where the scheme
 * is http, https, unix or unixs, the address has the form host:port (IPv6 in brackets) and
 * there is no path. Lists are comma-separated, sorted and de-duplicated like etcd's
 * --listen-client-urls and friends. */
#ifndef CETCD_SERVER_URLS_H
#define CETCD_SERVER_URLS_H

#include <stdbool.h>
#include <stddef.h>

/* One parsed URL. All strings are owned; release with urls_free_one. */
typedef struct url {
  char *scheme;   /* lower case: "http", "https", "unix" or "unixs" */
  char *host;     /* host name or IP without IPv6 brackets; "" if empty */
  int port;       /* 0..65535 */
  char *hostport; /* the address as written, e.g. "[::1]:2380" or "etcd.unix:1" */
  char *path;     /* "" unless parsed with URLS_ALLOW_PATH */
  char *str;      /* normalized form "scheme://hostport[path]", as etcd prints it */
  bool is_unix;   /* scheme is unix or unixs (a socket named by hostport) */
  bool is_tls;    /* scheme is https or unixs */
} url_t;

/* A parsed, sorted, de-duplicated URL list. Owns its elements. */
typedef struct url_list {
  url_t *v;
  size_t n;
} url_list_t;

/* urls_parse flag: accept a path after the address (etcd's lists reject one). */
#define URLS_ALLOW_PATH 1

/* Parses one URL (surrounding white space is trimmed). On success fills *u (owned by the
 * caller, free with urls_free_one) and returns 0; otherwise writes etcd's message (e.g.
 * "URL scheme must be http, https, unix, or unixs: foo://x") into err and returns
 * CETCD_EINVAL, leaving *u zeroed. flags: 0 or URLS_ALLOW_PATH. */
int urls_parse(const char *s, url_t *u, int flags, char *err, size_t errlen);

/* urls_parse with etcd's list rules (no path allowed). */
int urls_parse_one(const char *s, url_t *u, char *err, size_t errlen);

/* Releases the strings of *u and zeroes it. Safe on a zeroed url_t. */
void urls_free_one(url_t *u);

/* Parses a comma-separated list like "http://a:1,https://[::1]:2". The result is sorted
 * by normalized string and without duplicates. An empty list is an error ("no valid URLs
 * given"), as in etcd. Returns 0 or CETCD_EINVAL with a message in err; *out is owned by
 * the caller (urls_list_free). */
int urls_parse_list(const char *s, url_list_t *out, char *err, size_t errlen);

/* Frees a list from urls_parse_list and zeroes it. */
void urls_list_free(url_list_t *l);

/* Checks that a URL can be bound (etcd's checkBindURLs): unix sockets, IP literals and
 * "localhost" pass; a host name or empty host fails with "expected IP in URL for binding
 * (<url>)". Returns 0 or CETCD_EINVAL. */
int urls_check_bind(const url_t *u, char *err, size_t errlen);

/* Checks that an advertised URL has a host (etcd's checkHostURLs). Returns 0 or
 * CETCD_EINVAL with "unexpected empty host (<url>)". */
int urls_check_advertise(const url_t *u, char *err, size_t errlen);

/* The address to bind for a listen URL. For TCP writes the IP to host ("localhost" becomes
 * "127.0.0.1"; IPv6 without brackets) and the port to *port; for unix sockets writes the
 * socket path (the URL's host:port, as etcd uses it) to host and sets *port to -1.
 * Returns 0, or CETCD_EINVAL if host is too small or the URL cannot be bound. */
int urls_listen_addr(const url_t *u, char *host, size_t hostlen, int *port);

#endif
