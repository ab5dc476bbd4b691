/* The "table" output format (olekukonko/tablewriter's default look, cells right-aligned,
 * headers upper-case and centred) and the rows shared with the simple format. Only the
 * cluster commands support it, as in etcdctl. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/printer.h"

/* Allocates a printf-formatted string. */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  char *s = NULL;
  if (vasprintf(&s, f, ap) < 0) abort();
  va_end(ap);
  return s;
}

/* Prepares t for nrows rows of ncols columns with the given header. */
static void table_init(ctl_table_t *t, const char *const *hdr, size_t ncols, size_t nrows) {
  t->hdr = hdr;
  t->ncols = ncols;
  t->nrows = nrows;
  t->rows = calloc(nrows + 1, sizeof(char **));
  if (!t->rows) abort();
  for (size_t i = 0; i < nrows; i++) {
    t->rows[i] = calloc(ncols, sizeof(char *));
    if (!t->rows[i]) abort();
  }
}

void ctl_table_free(ctl_table_t *t) {
  for (size_t r = 0; r < t->nrows; r++) {
    for (size_t c = 0; c < t->ncols; c++) free(t->rows[r][c]);
    free(t->rows[r]);
  }
  free(t->rows);
  t->rows = NULL;
}

/* Joins strings with sep into a new string. */
static char *join(char *const *v, size_t n, const char *sep) {
  size_t len = 1;
  for (size_t i = 0; i < n; i++) len += strlen(v[i]) + strlen(sep);
  char *s = calloc(1, len);
  if (!s) abort();
  for (size_t i = 0; i < n; i++) {
    if (i) strcat(s, sep);
    strcat(s, v[i]);
  }
  return s;
}

void ctl_table_member_list(const cetcd_member_list_t *l, ctl_table_t *t) {
  static const char *const hdr[] = {"ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"};
  table_init(t, hdr, 6, l->n_members);
  for (size_t i = 0; i < l->n_members; i++) {
    const cetcd_member_t *m = &l->members[i];
    char **r = t->rows[i];
    r[0] = fmt("%" PRIx64, m->id);
    r[1] = fmt("%s", m->name && m->name[0] ? "started" : "unstarted");
    r[2] = fmt("%s", m->name ? m->name : "");
    r[3] = join(m->peer_urls, m->n_peer_urls, ",");
    r[4] = join(m->client_urls, m->n_client_urls, ",");
    r[5] = fmt("%s", m->is_learner ? "true" : "false");
  }
}

void ctl_table_ep_health(const ep_health_t *hs, size_t n, ctl_table_t *t) {
  static const char *const hdr[] = {"endpoint", "health", "took", "error"};
  table_init(t, hdr, 4, n);
  for (size_t i = 0; i < n; i++) {
    char **r = t->rows[i];
    r[0] = fmt("%s", hs[i].ep);
    r[1] = fmt("%s", hs[i].health ? "true" : "false");
    r[2] = fmt("%s", hs[i].took);
    r[3] = fmt("%s", hs[i].error);
  }
}

void ctl_table_ep_status(const ep_status_t *s, size_t n, ctl_table_t *t) {
  static const char *const hdr[] = {"endpoint",           "ID",         "version",   "db size",
                                    "is leader",          "is learner", "raft term", "raft index",
                                    "raft applied index", "errors"};
  table_init(t, hdr, 10, n);
  for (size_t i = 0; i < n; i++) {
    const cetcd_status_t *st = s[i].st;
    char **r = t->rows[i];
    char sz[32];
    ctl_humanize_bytes((uint64_t)st->db_size, sz, sizeof(sz));
    r[0] = fmt("%s", s[i].ep);
    r[1] = fmt("%" PRIx64, st->header.member_id);
    r[2] = fmt("%s", st->version ? st->version : "");
    r[3] = fmt("%s", sz);
    r[4] = fmt("%s", st->leader == st->header.member_id ? "true" : "false");
    r[5] = fmt("%s", st->is_learner ? "true" : "false");
    r[6] = fmt("%" PRIu64, st->raft_term);
    r[7] = fmt("%" PRIu64, st->raft_index);
    r[8] = fmt("%" PRIu64, st->raft_applied_index);
    r[9] = join(st->errors, st->n_errors, ", ");
  }
}

void ctl_table_ep_hashkv(const ep_hashkv_t *h, size_t n, ctl_table_t *t) {
  static const char *const hdr[] = {"endpoint", "hash"};
  table_init(t, hdr, 2, n);
  for (size_t i = 0; i < n; i++) {
    t->rows[i][0] = fmt("%s", h[i].ep);
    t->rows[i][1] = fmt("%" PRIu32, h[i].hash);
  }
}

void ctl_table_db_status(const db_status_t *s, ctl_table_t *t) {
  static const char *const hdr[] = {"hash", "revision", "total keys", "total size"};
  table_init(t, hdr, 4, 1);
  char sz[32];
  ctl_humanize_bytes((uint64_t)s->total_size, sz, sizeof(sz));
  t->rows[0][0] = fmt("%" PRIx32, s->hash);
  t->rows[0][1] = fmt("%" PRId64, s->revision);
  t->rows[0][2] = fmt("%" PRId64, s->total_key);
  t->rows[0][3] = fmt("%s", sz);
}

/* Display width of a UTF-8 string (one column per code point). */
static size_t width(const char *s) {
  size_t w = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xc0) != 0x80) w++;
  return w;
}

/* Prints the +-----+ separator line. */
static void sep_line(FILE *f, const size_t *w, size_t n) {
  for (size_t c = 0; c < n; c++) {
    fputc('+', f);
    for (size_t i = 0; i < w[c] + 2; i++) fputc('-', f);
  }
  fputs("+\n", f);
}

/* Prints n spaces. */
static void pad(FILE *f, size_t n) {
  while (n--) fputc(' ', f);
}

void ctl_table_render(FILE *f, const ctl_table_t *t) {
  size_t w[16] = {0};
  char hdr[16][64];
  for (size_t c = 0; c < t->ncols; c++) {
    size_t j = 0;
    for (const char *p = t->hdr[c]; *p && j + 1 < sizeof(hdr[c]); p++)
      hdr[c][j++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    hdr[c][j] = 0;
    w[c] = width(hdr[c]);
    for (size_t r = 0; r < t->nrows; r++)
      if (width(t->rows[r][c]) > w[c]) w[c] = width(t->rows[r][c]);
  }
  sep_line(f, w, t->ncols);
  for (size_t c = 0; c < t->ncols; c++) {
    size_t l = width(hdr[c]), left = (w[c] - l) / 2;
    fputs("| ", f);
    pad(f, left);
    fputs(hdr[c], f);
    pad(f, w[c] - l - left + 1);
  }
  fputs("|\n", f);
  sep_line(f, w, t->ncols);
  for (size_t r = 0; r < t->nrows; r++) {
    for (size_t c = 0; c < t->ncols; c++) {
      fputs("| ", f);
      pad(f, w[c] - width(t->rows[r][c]));
      fputs(t->rows[r][c], f);
      fputc(' ', f);
    }
    fputs("|\n", f);
  }
  sep_line(f, w, t->ncols);
}

/* Renders a table to stdout and frees it. */
static void render(ctl_table_t *t) {
  ctl_table_render(stdout, t);
  ctl_table_free(t);
}

static void t_member_list(const cetcd_member_list_t *l) {
  ctl_table_t t;
  ctl_table_member_list(l, &t);
  render(&t);
}

static void t_ep_health(const ep_health_t *hs, size_t n) {
  ctl_table_t t;
  ctl_table_ep_health(hs, n, &t);
  render(&t);
}

static void t_ep_status(const ep_status_t *s, size_t n) {
  ctl_table_t t;
  ctl_table_ep_status(s, n, &t);
  render(&t);
}

static void t_ep_hashkv(const ep_hashkv_t *h, size_t n) {
  ctl_table_t t;
  ctl_table_ep_hashkv(h, n, &t);
  render(&t);
}

static void t_db_status(const db_status_t *s) {
  ctl_table_t t;
  ctl_table_db_status(s, &t);
  render(&t);
}

const ctl_printer_t ctl_printer_table = {
    .member_list = t_member_list,
    .ep_health = t_ep_health,
    .ep_status = t_ep_status,
    .ep_hashkv = t_ep_hashkv,
    .db_status = t_db_status,
};
