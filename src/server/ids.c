/* etcd-compatible member and cluster id derivation. See ids.h. */
#include "server/ids.h"

#include <netdb.h>
#include <nettle/sha1.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cetcd/errors.h"
#include "server/urls.h"

/* Big-endian uint64 from the first 8 bytes of a digest. */

/* SHA-1 of a buffer (nettle). */
static void sha1_bytes(const void *data, size_t len, unsigned char md[SHA1_DIGEST_SIZE]) {
  struct sha1_ctx ctx;
  sha1_init(&ctx);
  sha1_update(&ctx, len, data);
  sha1_digest(&ctx, SHA1_DIGEST_SIZE, md);
}

static uint64_t be64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

/* qsort comparator for strings. */
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* qsort comparator for uint64. */
static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

uint64_t ids_member_id(char *const *peer_urls, size_t n, const char *token, const int64_t *unix_time) {
  const char **sorted = xcalloc(n ? n : 1, sizeof(char *));
  size_t len = 1;
  for (size_t i = 0; i < n; i++) sorted[i] = peer_urls[i], len += strlen(peer_urls[i]);
  qsort(sorted, n, sizeof(char *), cmp_str);
  if (token) len += strlen(token);
  char t[24] = "";
  if (unix_time) snprintf(t, sizeof(t), "%lld", (long long)*unix_time);
  len += strlen(t);
  char *b = xmalloc(len);
  size_t off = 0;
  for (size_t i = 0; i < n; i++) {
    memcpy(b + off, sorted[i], strlen(sorted[i]));
    off += strlen(sorted[i]);
  }
  if (token) memcpy(b + off, token, strlen(token)), off += strlen(token);
  memcpy(b + off, t, strlen(t));
  off += strlen(t);
  unsigned char md[SHA1_DIGEST_SIZE];
  sha1_bytes(b, off, md);
  free(b);
  free(sorted);
  return be64(md);
}

uint64_t ids_cluster_id(const uint64_t *member_ids, size_t n) {
  uint64_t *ids = xcalloc(n ? n : 1, sizeof(uint64_t));
  memcpy(ids, member_ids, n * sizeof(uint64_t));
  qsort(ids, n, sizeof(uint64_t), cmp_u64);
  unsigned char *b = xcalloc(n ? n * 8 : 1, 1);
  for (size_t i = 0; i < n; i++)
    for (int j = 0; j < 8; j++) b[i * 8 + (size_t)j] = (unsigned char)(ids[i] >> (56 - 8 * j));
  unsigned char md[SHA1_DIGEST_SIZE];
  sha1_bytes(b, n * 8, md);
  free(b);
  free(ids);
  return be64(md);
}

/* Formats a member map the way etcd's URLsMap.String does: sorted "name=url" pairs. */
static char *map_string(const char *name, char *const *urls, size_t n) {
  size_t cap = 1;
  for (size_t i = 0; i < n; i++) cap += strlen(name) + strlen(urls[i]) + 2;
  char **pairs = xcalloc(n ? n : 1, sizeof(char *));
  for (size_t i = 0; i < n; i++) {
    size_t l = strlen(name) + strlen(urls[i]) + 2;
    pairs[i] = xmalloc(l);
    snprintf(pairs[i], l, "%s=%s", name, urls[i]);
  }
  qsort(pairs, n, sizeof(char *), cmp_str);
  char *out = xcalloc(1, cap);
  for (size_t i = 0; i < n; i++) {
    if (i) strcat(out, ",");
    strcat(out, pairs[i]);
    free(pairs[i]);
  }
  free(pairs);
  return out;
}

/* Finds or appends a member by name. */
static ids_member_t *member_get(ids_cluster_t *c, const char *name, size_t nl) {
  for (size_t i = 0; i < c->n_members; i++)
    if (strlen(c->members[i].name) == nl && !memcmp(c->members[i].name, name, nl)) return &c->members[i];
  c->members = xrealloc(c->members, (c->n_members + 1) * sizeof(ids_member_t));
  ids_member_t *m = &c->members[c->n_members++];
  memset(m, 0, sizeof(*m));
  m->name = xmemdup(name, nl);
  return m;
}

int ids_parse_initial_cluster(const char *s, const char *token, ids_cluster_t *out, char *err,
                              size_t errlen) {
  memset(out, 0, sizeof(*out));
  char why[256];
  if (!s) s = "";
  const char *p = s;
  while (*p) {
    const char *c = strchr(p, ',');
    size_t len = c ? (size_t)(c - p) : strlen(p);
    if (len > 0) {
      const char *eq = memchr(p, '=', len);
      size_t nl = eq ? (size_t)(eq - p) : len;
      char *u = eq ? xmemdup(eq + 1, len - nl - 1) : xstrdup("");
      url_t url;
      int rc = urls_parse_one(u, &url, why, sizeof(why));
      free(u);
      if (rc) {
        ids_cluster_free(out);
        snprintf(err, errlen, "invalid --initial-cluster \"%s\": %s", s, why);
        return CETCD_EINVAL;
      }
      ids_member_t *m = member_get(out, p, nl);
      bool dup = false;
      for (size_t i = 0; i < m->n_peer_urls; i++)
        if (!strcmp(m->peer_urls[i], url.str)) dup = true;
      if (!dup) {
        m->peer_urls = xrealloc(m->peer_urls, (m->n_peer_urls + 1) * sizeof(char *));
        m->peer_urls[m->n_peer_urls++] = xstrdup(url.str);
      }
      urls_free_one(&url);
    }
    if (!c) break;
    p = c + 1;
  }
  /* duplicate URLs across members (etcd's checkDuplicateURL) */
  for (size_t i = 0; i < out->n_members; i++) {
    ids_member_t *m = &out->members[i];
    qsort(m->peer_urls, m->n_peer_urls, sizeof(char *), cmp_str);
    for (size_t j = 0; j < i; j++) {
      ids_member_t *o = &out->members[j];
      for (size_t a = 0; a < m->n_peer_urls; a++)
        for (size_t b = 0; b < o->n_peer_urls; b++)
          if (!strcmp(m->peer_urls[a], o->peer_urls[b])) {
            snprintf(err, errlen, "initial cluster %s has duplicate url", s);
            ids_cluster_free(out);
            return CETCD_EINVAL;
          }
    }
  }
  uint64_t *ids = xcalloc(out->n_members ? out->n_members : 1, sizeof(uint64_t));
  for (size_t i = 0; i < out->n_members; i++) {
    ids_member_t *m = &out->members[i];
    m->id = ids_member_id(m->peer_urls, m->n_peer_urls, token, NULL);
    ids[i] = m->id;
    for (size_t j = 0; j < i; j++) {
      if (out->members[j].id == m->id) {
        snprintf(err, errlen, "member %s has the same id %016llx as %s", m->name, (unsigned long long)m->id,
                 out->members[j].name);
        free(ids);
        ids_cluster_free(out);
        return CETCD_EINVAL;
      }
    }
    if (m->id == 0) {
      snprintf(err, errlen, "cannot use 0 as member id");
      free(ids);
      ids_cluster_free(out);
      return CETCD_EINVAL;
    }
  }
  out->cluster_id = ids_cluster_id(ids, out->n_members);
  free(ids);
  return 0;
}

const ids_member_t *ids_cluster_find(const ids_cluster_t *c, const char *name) {
  for (size_t i = 0; i < c->n_members; i++)
    if (!strcmp(c->members[i].name, name)) return &c->members[i];
  return NULL;
}

/* Resolves a URL's host to a numeric address (first IPv4, else IPv6) and rebuilds the URL
 * string; returns an owned string, or a copy of the input when resolution fails. */
static char *resolved(const char *s) {
  url_t u;
  if (urls_parse_one(s, &u, NULL, 0)) return xstrdup(s);
  char *out = NULL;
  if (!u.is_unix) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    int fams[2] = {AF_INET, AF_INET6};
    for (int f = 0; f < 2 && !out; f++) {
      hints.ai_family = fams[f];
      if (getaddrinfo(u.host, NULL, &hints, &res) == 0 && res) {
        char ip[64];
        if (getnameinfo(res->ai_addr, res->ai_addrlen, ip, sizeof(ip), NULL, 0, NI_NUMERICHOST) == 0) {
          size_t l = strlen(u.scheme) + strlen(ip) + 16;
          out = xmalloc(l);
          snprintf(out, l, fams[f] == AF_INET6 ? "%s://[%s]:%d" : "%s://%s:%d", u.scheme, ip, u.port);
        }
        freeaddrinfo(res);
        res = NULL;
      }
    }
  }
  if (!out) out = xstrdup(u.str);
  urls_free_one(&u);
  return out;
}

/* True if two URL sets are equal after sorting, resolving host names if needed (etcd's
 * netutil.URLStringsEqual). */
static bool urls_equal(char *const *a, size_t na, char *const *b, size_t nb) {
  if (na != nb) return false;
  char **x = xcalloc(na ? na : 1, sizeof(char *)), **y = xcalloc(nb ? nb : 1, sizeof(char *));
  bool eq = true;
  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < na; i++) {
      x[i] = pass ? resolved(a[i]) : xstrdup(a[i]);
      y[i] = pass ? resolved(b[i]) : xstrdup(b[i]);
    }
    qsort(x, na, sizeof(char *), cmp_str);
    qsort(y, na, sizeof(char *), cmp_str);
    eq = true;
    for (size_t i = 0; i < na; i++) eq = eq && !strcmp(x[i], y[i]);
    for (size_t i = 0; i < na; i++) free(x[i]), free(y[i]);
    if (eq) break;
  }
  free(x);
  free(y);
  return eq;
}

int ids_verify_bootstrap(const ids_cluster_t *c, const char *name, char *const *ap_urls, size_t n_ap,
                         int existing, char *err, size_t errlen) {
  const ids_member_t *self = ids_cluster_find(c, name);
  if (!self) {
    snprintf(err, errlen, "couldn't find local name \"%s\" in the initial cluster configuration", name);
    return CETCD_EINVAL;
  }
  if (existing) return 0;
  if (urls_equal(self->peer_urls, self->n_peer_urls, ap_urls, n_ap)) return 0;
  /* Which side is missing what: etcd's advertiseMatchesCluster messages. */
  char missing[1024] = "";
  for (size_t i = 0; i < self->n_peer_urls; i++) {
    bool found = false;
    for (size_t j = 0; j < n_ap; j++) found = found || !strcmp(self->peer_urls[i], ap_urls[j]);
    if (!found) {
      size_t l = strlen(missing);
      snprintf(missing + l, sizeof(missing) - l, "%s%s=%s", l ? "," : "", name, self->peer_urls[i]);
    }
  }
  char aps[1024] = "";
  for (size_t j = 0; j < n_ap; j++) {
    size_t l = strlen(aps);
    snprintf(aps + l, sizeof(aps) - l, "%s%s", j ? "," : "", ap_urls[j]);
  }
  if (missing[0]) {
    snprintf(err, errlen, "--initial-cluster has %s but missing from --initial-advertise-peer-urls=%s",
             missing, aps);
    return CETCD_EINVAL;
  }
  for (size_t j = 0; j < n_ap; j++) {
    bool found = false;
    for (size_t i = 0; i < self->n_peer_urls; i++) found = found || !strcmp(self->peer_urls[i], ap_urls[j]);
    if (!found) {
      size_t l = strlen(missing);
      snprintf(missing + l, sizeof(missing) - l, "%s%s", l ? "," : "", ap_urls[j]);
    }
  }
  char *um = map_string(name, ap_urls, n_ap);
  if (missing[0])
    snprintf(err, errlen, "--initial-advertise-peer-urls has %s but missing from --initial-cluster=%s",
             missing, um);
  else
    snprintf(err, errlen, "failed to resolve %s to match --initial-cluster=%s", aps, um);
  free(um);
  return CETCD_EINVAL;
}

void ids_cluster_free(ids_cluster_t *c) {
  for (size_t i = 0; i < c->n_members; i++) {
    free(c->members[i].name);
    for (size_t j = 0; j < c->members[i].n_peer_urls; j++) free(c->members[i].peer_urls[j]);
    free(c->members[i].peer_urls);
  }
  free(c->members);
  memset(c, 0, sizeof(*c));
}

int ids_from_config(const cetcd_config_t *cfg, uint64_t *member_id, uint64_t *cluster_id, char *err,
                    size_t errlen) {
  ids_cluster_t c;
  const char *token = cfg->initial_cluster_token ? cfg->initial_cluster_token : "";
  if (cfg->discovery && cfg->discovery[0]) {
    snprintf(err, errlen, "--discovery is not supported by cetcd; use --initial-cluster");
    return CETCD_EINVAL;
  }
  if (!cfg->initial_cluster || !cfg->initial_cluster[0]) {
    snprintf(err, errlen, "initial cluster unset and no discovery URL found");
    return CETCD_EINVAL;
  }
  int rc = ids_parse_initial_cluster(cfg->initial_cluster, token, &c, err, errlen);
  if (rc) return rc;
  rc = ids_verify_bootstrap(&c, cfg->name, cfg->initial_advertise_peer_urls,
                            cfg->n_initial_advertise_peer_urls, cfg->initial_cluster_existing, err, errlen);
  if (rc == 0) {
    *member_id = ids_cluster_find(&c, cfg->name)->id;
    *cluster_id = c.cluster_id;
  }
  ids_cluster_free(&c);
  return rc;
}

int ids_for_config(const cetcd_config_t *cfg, uint64_t *member_id, uint64_t *cluster_id) {
  char err[1024];
  int rc = ids_from_config(cfg, member_id, cluster_id, err, sizeof(err));
  if (rc) LOGE("msg=\"cannot derive member and cluster ids\" error=\"%s\"", err);
  return rc;
}

char *ids_format(uint64_t id, char out[17]) {
  snprintf(out, 17, "%llx", (unsigned long long)id);
  return out;
}

int ids_parse(const char *s, uint64_t *id) {
  if (!s || !*s || strlen(s) > 16) return CETCD_EINVAL;
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    int d;
    if (*p >= '0' && *p <= '9')
      d = *p - '0';
    else if (*p >= 'a' && *p <= 'f')
      d = *p - 'a' + 10;
    else if (*p >= 'A' && *p <= 'F')
      d = *p - 'A' + 10;
    else
      return CETCD_EINVAL;
    v = v << 4 | (uint64_t)d;
  }
  *id = v;
  return 0;
}
