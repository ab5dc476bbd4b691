/* The --config-file YAML: etcd's embed.Config keys (plus etcdmain's proxy keys and the
 * client-transport-security / peer-transport-security blocks), read with libyaml.
 *
 * etcd decodes the file with sigs.k8s.io/yaml: go-yaml resolves each plain scalar with
 * YAML 1.1's rules (null, bool, int, float or string), the tree becomes JSON, and
 * encoding/json fills typed fields. So a value must have its field's JSON type: a string
 * key refuses a number or a bool (`name: 123`, `proxy: off`), a number refuses a quoted
 * string (`snapshot-count: "10"`), durations are integer nanoseconds, booleans are YAML 1.1
 * words (yes/no/on/off/true/false/y/n), the URL keys are one comma-separated string and
 * log-outputs / cipher-suites are sequences. Null keeps the default, unknown keys are
 * ignored (with a warning), keys match case-insensitively, the last of duplicate keys wins,
 * and only the first document is read. cetcd's messages name the file and the line. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "base/alloc.h"
#include "cetcd/errors.h"
#include "server/config_int.h"

/* The JSON type a YAML node becomes (the words encoding/json uses in its messages). */
enum ykind { YK_NULL, YK_BOOL, YK_NUMBER, YK_STRING, YK_ARRAY, YK_OBJECT };

/* A resolved scalar: its kind, and for numbers the JSON text they are encoded as. */
typedef struct yscalar {
  enum ykind kind;
  bool b;
  char num[64]; /* decimal integer, or Go-like float text when not integral */
  bool integral;
} yscalar_t;

/* One file being applied. */
typedef struct yfile {
  pctx_t *px;
  const char *path;
  yaml_document_t *doc;
  char *err;
  size_t errlen;
} yfile_t;

/* ---- YAML 1.1 scalar resolution (go-yaml v2's resolve) ------------------------------------ */

/* True if s is one of the NULL-terminated words. */
static bool in_words(const char *s, const char *const *words) {
  for (; *words; words++)
    if (!strcmp(s, *words)) return true;
  return false;
}

/* go-yaml's yamlStyleFloat: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool yaml_style_float(const char *s) {
  if (*s == '-' || *s == '+') s++;
  size_t d = strspn(s, "0123456789");
  if (d == 0) {
    if (*s != '.' || !strspn(s + 1, "0123456789")) return false;
    s += 1 + strspn(s + 1, "0123456789");
  } else {
    s += d;
    if (*s == '.') s += 1 + strspn(s + 1, "0123456789");
  }
  if (*s == 'e' || *s == 'E') {
    s++;
    if (*s == '-' || *s == '+') s++;
    if (!strspn(s, "0123456789")) return false;
    s += strspn(s, "0123456789");
  }
  return *s == '\0';
}

/* True if s starts like a YAML timestamp (four digits and '-'): go-yaml makes those
 * time values, which become JSON strings. */
static bool looks_like_date(const char *s) { return strspn(s, "0123456789") == 4 && s[4] == '-'; }

/* Stores a float as the JSON number text Go would write and whether it is integral. */
static void set_float(yscalar_t *v, double f) {
  v->kind = YK_NUMBER;
  v->integral = f == (double)(int64_t)f && f > -9.3e18 && f < 9.3e18;
  if (v->integral)
    snprintf(v->num, sizeof(v->num), "%" PRId64, (int64_t)f);
  else
    snprintf(v->num, sizeof(v->num), "%g", f);
}

/* Resolves a plain (unquoted) scalar the way go-yaml v2 does. */
static void resolve_plain(const char *s, yscalar_t *v) {
  static const char *const yes[] = {"y",    "Y",    "yes", "Yes", "YES", "true",
                                    "True", "TRUE", "on",  "On",  "ON",  NULL};
  static const char *const no[] = {"n",     "N",     "no",  "No",  "NO",  "false",
                                   "False", "FALSE", "off", "Off", "OFF", NULL};
  static const char *const null[] = {"", "~", "null", "Null", "NULL", NULL};
  static const char *const inf[] = {".inf",  ".Inf",  ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
                                    "-.Inf", "-.INF", ".nan", ".NaN",  ".NAN",  NULL};
  memset(v, 0, sizeof(*v));
  v->kind = YK_STRING;
  if (in_words(s, yes) || in_words(s, no)) {
    v->kind = YK_BOOL;
    v->b = in_words(s, yes);
    return;
  }
  if (in_words(s, null)) {
    v->kind = YK_NULL;
    return;
  }
  if (in_words(s, inf)) {
    v->kind = YK_NUMBER;
    snprintf(v->num, sizeof(v->num), "%s", s);
    return;
  }
  bool digit = (*s >= '0' && *s <= '9') || *s == '-' || *s == '+';
  if (*s == '.' && yaml_style_float(s)) return set_float(v, strtod(s, NULL));
  if (!digit || looks_like_date(s)) return;
  char plain[64];
  size_t n = 0;
  for (const char *p = s; *p; p++) {
    if (n + 1 >= sizeof(plain)) return; /* far too long for a number */
    if (*p != '_') plain[n++] = *p;
  }
  plain[n] = '\0';
  int64_t i;
  uint64_t u;
  if (config_go_parse_int64(plain, &i) == 0) {
    v->kind = YK_NUMBER;
    v->integral = true;
    snprintf(v->num, sizeof(v->num), "%" PRId64, i);
  } else if (config_go_parse_uint(plain[0] == '+' ? plain + 1 : plain, 64, &u) == 0) {
    v->kind = YK_NUMBER;
    v->integral = true;
    snprintf(v->num, sizeof(v->num), "%" PRIu64, u);
  } else if (yaml_style_float(plain)) {
    set_float(v, strtod(plain, NULL));
  }
}

/* Resolves any scalar node: quoted and block scalars are strings. */
static void resolve_scalar(yaml_node_t *n, yscalar_t *v) {
  if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
    resolve_plain((const char *)n->data.scalar.value, v);
    return;
  }
  memset(v, 0, sizeof(*v));
  v->kind = YK_STRING;
}

/* The JSON kind of any node. */
static enum ykind node_kind(yaml_node_t *n) {
  if (n->type == YAML_SEQUENCE_NODE) return YK_ARRAY;
  if (n->type == YAML_MAPPING_NODE) return YK_OBJECT;
  yscalar_t v;
  resolve_scalar(n, &v);
  return v.kind;
}

/* encoding/json's word for a kind. */
static const char *kind_word(enum ykind k) {
  static const char *const words[] = {"null", "bool", "number", "string", "array", "object"};
  return words[k];
}

/* ---- keys ------------------------------------------------------------------------------- */

/* The Go type etcd decodes a flag's value into (for messages). */
static const char *go_type(const flag_def_t *f) {
  if (f->fl & F_YSEQ) return "[]string";
  switch (f->type) {
    case T_BOOL:
      return "bool";
    case T_U32:
    case T_SIZE:
      return "uint";
    case T_U64:
      return "uint64";
    case T_I64:
      return "int64";
    case T_DUR:
      return "time.Duration";
    default:
      return "string";
  }
}

/* Finds the flag of a top-level key: exact name first, then ignoring case (as
 * encoding/json matches keys). Returns -1 for keys etcd's file does not have. */
static int find_key(const char *key) {
  int fi = config_find_flag(key, strlen(key));
  for (size_t i = 0; fi < 0 && i < config_nflags; i++)
    if (config_flag_defs[i].type != T_SECTION && !strcasecmp(config_flag_defs[i].name, key)) fi = (int)i;
  if (fi >= 0 && (config_flag_defs[fi].fl & F_NOYAML)) return -1;
  return fi;
}

/* The flag of a key inside a transport-security block, or -1. */
static int find_security_key(bool peer, const char *key) {
  static const char *const keys[] = {"cert-file", "key-file", "client-cert-auth", "trusted-ca-file",
                                     "auto-tls"};
  static const char *const flags[2][5] = {
      {"cert-file", "key-file", "client-cert-auth", "trusted-ca-file", "auto-tls"},
      {"peer-cert-file", "peer-key-file", "peer-client-cert-auth", "peer-trusted-ca-file", "peer-auto-tls"}};
  for (size_t i = 0; i < 5; i++)
    if (!strcasecmp(key, keys[i])) return config_find_flag(flags[peer][i], strlen(flags[peer][i]));
  return -1;
}

/* ---- applying values ----------------------------------------------------------------------- */

/* Writes "config file P: line N: ..." into the file's err; returns CETCD_EINVAL. */
static int file_err(yfile_t *yf, yaml_node_t *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int file_err(yfile_t *yf, yaml_node_t *at, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return config_errf(yf->err, yf->errlen, "config file %s: line %zu: %s", yf->path, at->start_mark.line + 1,
                     msg);
}

/* Refuses a value of the wrong JSON type with encoding/json's wording. field is the Go
 * struct field as etcd names it (configYAML.name, securityConfig.x.cert-file). */
static int type_err(yfile_t *yf, yaml_node_t *n, const char *key, const char *field, enum ykind k,
                    const char *type) {
  if (n->type == YAML_SEQUENCE_NODE) return file_err(yf, n, "%s: expected a single value, not a list", key);
  if (n->type == YAML_MAPPING_NODE) return file_err(yf, n, "%s: expected a single value, not a map", key);
  return file_err(yf, n,
                  "invalid value \"%s\" for %s: cannot unmarshal %s into Go struct field %s of type %s",
                  (const char *)n->data.scalar.value, key, kind_word(k), field, type);
}

/* Applies a sequence of strings (log-outputs, cipher-suites) as a comma-joined list. */
static int apply_seq(yfile_t *yf, const flag_def_t *f, yaml_node_t *n, const char *key, const char *field) {
  size_t cap = 1;
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
    yaml_node_t *item = yaml_document_get_node(yf->doc, *it);
    enum ykind k = node_kind(item);
    if (k == YK_NULL) continue;
    if (k != YK_STRING) return type_err(yf, item, key, field, k, "string");
    cap += item->data.scalar.length + 1;
  }
  char *text = xcalloc(1, cap);
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
    yaml_node_t *item = yaml_document_get_node(yf->doc, *it);
    if (node_kind(item) == YK_NULL) continue;
    if (*text) strcat(text, ",");
    strcat(text, (const char *)item->data.scalar.value);
  }
  char why[384];
  int rc = 0;
  if (!*text && f->off != NOFIELD) /* [] clears the list */
    config_strv_free(FIELD(yf->px->cfg, f, char **), COUNT(yf->px->cfg, f));
  else if (config_set_value(yf->px->cfg, f, text, why, sizeof(why)))
    rc = file_err(yf, n, "invalid value \"%s\" for %s: %s", text, key, why);
  free(text);
  return rc;
}

/* Applies a number to an integer or duration flag, refusing what encoding/json refuses. */
static int apply_number(yfile_t *yf, const flag_def_t *f, yaml_node_t *n, const yscalar_t *v, const char *key,
                        const char *field) {
  char why[384];
  int64_t ns;
  bool ok = v->integral;
  if (ok && f->type == T_DUR) {
    ok = config_go_parse_int64(v->num, &ns) == 0;
    if (ok && f->off != NOFIELD) *FIELD(yf->px->cfg, f, int64_t) = config_ns_to_ms(ns);
  } else if (ok) {
    ok = config_set_value(yf->px->cfg, f, v->num, why, sizeof(why)) == 0;
  }
  if (!ok)
    return file_err(
        yf, n, "invalid value \"%s\" for %s: cannot unmarshal number %s into Go struct field %s of type %s",
        (const char *)n->data.scalar.value, key, v->num, field, go_type(f));
  return 0;
}

/* Applies one key's value node to flag f (key and field name it in messages). */
static int apply_value(yfile_t *yf, const flag_def_t *f, int fi, yaml_node_t *n, const char *key,
                       const char *field) {
  enum ykind k = node_kind(n);
  if (k == YK_NULL) return 0; /* null keeps the default, as in etcd */
  int rc;
  if (f->fl & F_YSEQ) {
    if (k != YK_ARRAY) return type_err(yf, n, key, field, k, "[]string");
    rc = apply_seq(yf, f, n, key, field);
  } else if (k == YK_ARRAY || k == YK_OBJECT) {
    return type_err(yf, n, key, field, k, go_type(f));
  } else {
    yscalar_t v;
    resolve_scalar(n, &v);
    const char *text = (const char *)n->data.scalar.value;
    bool is_list = f->type == T_URLS || f->type == T_CORS || f->type == T_SLIST || f->type == T_LIST;
    char why[384];
    if (f->type == T_BOOL) {
      if (k != YK_BOOL) return type_err(yf, n, key, field, k, "bool");
      rc = config_set_value(yf->px->cfg, f, v.b ? "true" : "false", why, sizeof(why));
    } else if (f->type == T_U32 || f->type == T_U64 || f->type == T_SIZE || f->type == T_I64 ||
               f->type == T_DUR) {
      if (k != YK_NUMBER) return type_err(yf, n, key, field, k, go_type(f));
      rc = apply_number(yf, f, n, &v, key, field);
      why[0] = '\0';
      if (rc) return rc;
    } else if (k != YK_STRING) {
      return type_err(yf, n, key, field, k, "string");
    } else if (is_list && !*text) {
      return 0; /* etcd skips empty URL strings */
    } else {
      rc = config_set_value(yf->px->cfg, f, text, why, sizeof(why));
    }
    if (rc) return file_err(yf, n, "invalid value \"%s\" for %s: %s", text, key, why);
  }
  if (rc) return rc;
  yf->px->set[fi] = true;
  config_note_ignored(yf->px->cfg, f);
  return 0;
}

/* Applies a client-transport-security / peer-transport-security block. */
static int apply_security(yfile_t *yf, bool peer, const char *block, yaml_node_t *n) {
  char field[200];
  snprintf(field, sizeof(field), "configYAML.%s", block);
  enum ykind k = node_kind(n);
  if (k == YK_NULL) return 0;
  if (k != YK_OBJECT)
    return file_err(yf, n, "%s: cannot unmarshal %s into Go struct field %s of type embed.securityConfig",
                    block, kind_word(k), field);
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *kn = yaml_document_get_node(yf->doc, p->key),
                *vn = yaml_document_get_node(yf->doc, p->value);
    if (kn->type != YAML_SCALAR_NODE) return file_err(yf, kn, "%s: keys must be strings", block);
    const char *key = (const char *)kn->data.scalar.value;
    char full[160];
    snprintf(full, sizeof(full), "%s.%s", block, key);
    int fi = find_security_key(peer, key);
    if (fi < 0) {
      config_warnf(yf->px->cfg, "config file %s: line %zu: unknown key \"%s\" ignored", yf->path,
                   kn->start_mark.line + 1, full);
      continue;
    }
    snprintf(field, sizeof(field), "securityConfig.%s", full);
    int rc = apply_value(yf, &config_flag_defs[fi], fi, vn, full, field);
    if (rc) return rc;
  }
  return 0;
}

/* Applies the document's top-level mapping. */
static int apply_root(yfile_t *yf, yaml_node_t *root) {
  enum ykind k = node_kind(root);
  if (k == YK_NULL) return 0; /* an empty file keeps every default, as in etcd */
  if (k != YK_OBJECT)
    return file_err(
        yf, root,
        "expected \"key: value\" mappings at the top level (json: cannot unmarshal %s into Go value of "
        "type embed.configYAML)",
        kind_word(k));
  for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
    yaml_node_t *kn = yaml_document_get_node(yf->doc, p->key),
                *vn = yaml_document_get_node(yf->doc, p->value);
    if (kn->type != YAML_SCALAR_NODE) return file_err(yf, kn, "keys must be strings");
    const char *key = (const char *)kn->data.scalar.value;
    bool client = !strcasecmp(key, "client-transport-security"),
         peer = !strcasecmp(key, "peer-transport-security");
    int rc = 0;
    if (client || peer) {
      rc = apply_security(yf, peer, peer ? "peer-transport-security" : "client-transport-security", vn);
    } else {
      int fi = find_key(key);
      if (fi < 0) {
        config_warnf(yf->px->cfg, "config file %s: line %zu: unknown key \"%s\" ignored", yf->path,
                     kn->start_mark.line + 1, key);
        continue;
      }
      const flag_def_t *f = &config_flag_defs[fi];
      char field[160];
      snprintf(field, sizeof(field), "configYAML.%s", f->name);
      rc = apply_value(yf, f, fi, vn, f->name, field);
    }
    if (rc) return rc;
  }
  return 0;
}

/* ---- reading the file ------------------------------------------------------------------ */

/* Reads the whole file into an owned buffer. Returns 0 or -errno with a message. */
static int read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    int e = errno;
    config_errf(err, errlen, "cannot read config file %s: %s", path, strerror(e));
    return -e;
  }
  size_t cap = 4096, n = 0, r;
  char *b = xmalloc(cap);
  while ((r = fread(b + n, 1, cap - n, fp)) > 0)
    if ((n += r) == cap) b = xrealloc(b, cap *= 2);
  bool bad = ferror(fp);
  fclose(fp);
  if (bad) {
    free(b);
    config_errf(err, errlen, "cannot read config file %s", path);
    return -EIO;
  }
  *buf = b;
  *len = n;
  return 0;
}

/* Formats libyaml's syntax error: the line of the problem, the problem, its context. */
static int syntax_err(const yaml_parser_t *p, const char *path, char *err, size_t errlen) {
  size_t line = p->problem_mark.line + 1;
  if (p->error == YAML_READER_ERROR)
    return config_errf(err, errlen, "config file %s: %s at byte %zu", path,
                       p->problem ? p->problem : "bad input", p->problem_offset);
  if (p->context)
    return config_errf(err, errlen, "config file %s: line %zu: %s (%s at line %zu)", path, line,
                       p->problem ? p->problem : "syntax error", p->context, p->context_mark.line + 1);
  return config_errf(err, errlen, "config file %s: line %zu: %s", path, line,
                     p->problem ? p->problem : "syntax error");
}

/* go-yaml reads a plain scalar with an explicit !!str tag (`name: !!str 123`) as a string, but
 * libyaml's document API gives every plain scalar that tag. So a pass over the events finds
 * the scalars tagged explicitly, and their nodes in doc are marked as quoted. */
static void mark_explicit_strings(const char *buf, size_t len, yaml_document_t *doc) {
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) abort();
  yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p, &ev)) break; /* the load reported it already */
    yaml_event_type_t type = ev.type;
    if (type == YAML_SCALAR_EVENT && ev.data.scalar.tag && !ev.data.scalar.plain_implicit &&
        ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        !strcmp((const char *)ev.data.scalar.tag, YAML_STR_TAG)) {
      for (yaml_node_t *n = doc->nodes.start; n < doc->nodes.top; n++)
        if (n->type == YAML_SCALAR_NODE && n->start_mark.index == ev.start_mark.index)
          n->data.scalar.style = YAML_SINGLE_QUOTED_SCALAR_STYLE;
    }
    yaml_event_delete(&ev);
    if (type == YAML_DOCUMENT_END_EVENT || type == YAML_STREAM_END_EVENT) break; /* first document only */
  }
  yaml_parser_delete(&p);
}

/* Reads, parses and applies the file (config_int.h). */
int config_file_load(pctx_t *px, const char *path, char *err, size_t errlen) {
  char *buf = NULL;
  size_t len = 0;
  int rc = read_file(path, &buf, &len, err, errlen);
  if (rc) return rc;
  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) abort();
  yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
  if (!yaml_parser_load(&parser, &doc)) {
    rc = syntax_err(&parser, path, err, errlen);
  } else {
    mark_explicit_strings(buf, len, &doc);
    yfile_t yf = {px, path, &doc, err, errlen};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    rc = root ? apply_root(&yf, root) : 0;
    yaml_document_delete(&doc);
  }
  yaml_parser_delete(&parser);
  free(buf);
  return rc;
}

/* config.h: the file alone, over cfg's current values. */
int config_load_file(cetcd_config_t *cfg, const char *path, char *err, size_t errlen) {
  pctx_t *px = xcalloc(1, sizeof(*px));
  px->cfg = cfg;
  int rc = config_file_load(px, path, err, errlen);
  free(px);
  return rc;
}
