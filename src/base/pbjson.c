/* protobuf-c ⇄ JSON for the gRPC gateway, driven by the message descriptors. */
#include "base/pbjson.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cetcd/errors.h"

/* ---- encoding ------------------------------------------------------------------------ */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Appends standard base64 (with padding) of data, quoted. */
static void put_base64(buf_t *out, const uint8_t *d, size_t n) {
  buf_reserve(out, 4 * ((n + 2) / 3) + 2);
  out->data[out->len++] = '"';
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
    out->data[out->len++] = b64chars[v >> 18];
    out->data[out->len++] = b64chars[(v >> 12) & 63];
    out->data[out->len++] = b64chars[(v >> 6) & 63];
    out->data[out->len++] = b64chars[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
    out->data[out->len++] = b64chars[v >> 18];
    out->data[out->len++] = b64chars[(v >> 12) & 63];
    out->data[out->len++] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
    out->data[out->len++] = '=';
  }
  out->data[out->len++] = '"';
}

void pbjson_string(buf_t *out, const char *s, size_t len) {
  buf_append(out, "\"", 1);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      buf_append(out, e, 2);
    } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
      buf_printf(out, "\\u%04x", c);
    } else {
      buf_append(out, &s[i], 1);
    }
  }
  buf_append(out, "\"", 1);
}

/* True if a singular field holds its default value (and so is omitted). */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *p) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM: return *(const uint32_t *)p == 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return *(const uint64_t *)p == 0;
    case PROTOBUF_C_TYPE_FLOAT: return *(const float *)p == 0;
    case PROTOBUF_C_TYPE_DOUBLE: return *(const double *)p == 0;
    case PROTOBUF_C_TYPE_BOOL: return *(const protobuf_c_boolean *)p == 0;
    case PROTOBUF_C_TYPE_STRING: {
      const char *s = *(char *const *)p;
      return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE: return *(void *const *)p == NULL;
  }
  return true;
}

/* Appends one value of field f stored at p. */
static void put_value(buf_t *out, const ProtobufCFieldDescriptor *f, const void *p) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: buf_printf(out, "%" PRId32, *(const int32_t *)p); break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: buf_printf(out, "%" PRIu32, *(const uint32_t *)p); break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: buf_printf(out, "\"%" PRId64 "\"", *(const int64_t *)p); break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: buf_printf(out, "\"%" PRIu64 "\"", *(const uint64_t *)p); break;
    case PROTOBUF_C_TYPE_FLOAT: buf_printf(out, "%g", (double)*(const float *)p); break;
    case PROTOBUF_C_TYPE_DOUBLE: buf_printf(out, "%g", *(const double *)p); break;
    case PROTOBUF_C_TYPE_BOOL: buf_printf(out, "%s", *(const protobuf_c_boolean *)p ? "true" : "false"); break;
    case PROTOBUF_C_TYPE_ENUM: {
      const ProtobufCEnumValue *ev =
          protobuf_c_enum_descriptor_get_value((const ProtobufCEnumDescriptor *)f->descriptor, *(const int *)p);
      if (ev)
        pbjson_string(out, ev->name, strlen(ev->name));
      else
        buf_printf(out, "%d", *(const int *)p);
      break;
    }
    case PROTOBUF_C_TYPE_STRING: {
      const char *s = *(char *const *)p;
      pbjson_string(out, s ? s : "", s ? strlen(s) : 0);
      break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
      const ProtobufCBinaryData *b = p;
      put_base64(out, b->data, b->len);
      break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
      const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
      if (m)
        pbjson_encode(m, out);
      else
        buf_append(out, "{}", 2);
      break;
    }
  }
}

/* Size of one element of a field's C representation. */
static size_t elem_size(const ProtobufCFieldDescriptor *f) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return 8;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    default: return 4;
  }
}

void pbjson_encode(const ProtobufCMessage *msg, buf_t *out) {
  const ProtobufCMessageDescriptor *d = msg->descriptor;
  const uint8_t *base = (const uint8_t *)msg;
  bool first = true;
  buf_append(out, "{", 1);
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const void *p = base + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)(base + f->quantifier_offset);
      if (!n) continue;
      buf_printf(out, "%s\"%s\":[", first ? "" : ",", f->name);
      const uint8_t *arr = *(uint8_t *const *)p;
      for (size_t k = 0; k < n; k++) {
        if (k) buf_append(out, ",", 1);
        put_value(out, f, arr + k * elem_size(f));
      }
      buf_append(out, "]", 1);
    } else {
      if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        if (*(const uint32_t *)(base + f->quantifier_offset) != f->id) continue;
      } else if (is_default(f, p)) {
        continue;
      }
      buf_printf(out, "%s\"%s\":", first ? "" : ",", f->name);
      put_value(out, f, p);
    }
    first = false;
  }
  buf_append(out, "}", 1);
}

/* ---- decoding ------------------------------------------------------------------------ */

typedef struct jp {
  const char *start, *s, *end;
  arena_t *arena;
  char *err;
  size_t errlen;
  int depth;
} jp_t;

/* Records a parse error (first one wins). */
static int fail(jp_t *j, const char *what) {
  if (j->err[0] == 0) snprintf(j->err, j->errlen, "%s at offset %td", what, j->s - j->start);
  return CETCD_EINVAL;
}

static void skip_ws(jp_t *j) {
  while (j->s < j->end && (*j->s == ' ' || *j->s == '\t' || *j->s == '\n' || *j->s == '\r')) j->s++;
}

/* Consumes c (after whitespace) or fails. */
static int expect(jp_t *j, char c) {
  skip_ws(j);
  if (j->s >= j->end || *j->s != c) {
    char m[40];
    snprintf(m, sizeof(m), "expected '%c'", c);
    return fail(j, m);
  }
  j->s++;
  return 0;
}

/* Appends the UTF-8 encoding of code point cp. */
static void put_utf8(buf_t *b, uint32_t cp) {
  uint8_t u[4];
  size_t n;
  if (cp < 0x80) {
    u[0] = (uint8_t)cp;
    n = 1;
  } else if (cp < 0x800) {
    u[0] = (uint8_t)(0xC0 | cp >> 6);
    u[1] = (uint8_t)(0x80 | (cp & 63));
    n = 2;
  } else if (cp < 0x10000) {
    u[0] = (uint8_t)(0xE0 | cp >> 12);
    u[1] = (uint8_t)(0x80 | ((cp >> 6) & 63));
    u[2] = (uint8_t)(0x80 | (cp & 63));
    n = 3;
  } else {
    u[0] = (uint8_t)(0xF0 | cp >> 18);
    u[1] = (uint8_t)(0x80 | ((cp >> 12) & 63));
    u[2] = (uint8_t)(0x80 | ((cp >> 6) & 63));
    u[3] = (uint8_t)(0x80 | (cp & 63));
    n = 4;
  }
  buf_append(b, u, n);
}

/* Parses a JSON string into an arena copy (NUL-terminated); *len gets its length. */
static int parse_string(jp_t *j, char **out, size_t *len) {
  if (expect(j, '"')) return CETCD_EINVAL;
  buf_t b = {0};
  while (j->s < j->end && *j->s != '"') {
    char c = *j->s++;
    if (c != '\\') {
      buf_append(&b, &c, 1);
      continue;
    }
    if (j->s >= j->end) break;
    c = *j->s++;
    switch (c) {
      case 'n': buf_append(&b, "\n", 1); break;
      case 't': buf_append(&b, "\t", 1); break;
      case 'r': buf_append(&b, "\r", 1); break;
      case 'b': buf_append(&b, "\b", 1); break;
      case 'f': buf_append(&b, "\f", 1); break;
      case 'u': {
        if (j->end - j->s < 4) {
          buf_free(&b);
          return fail(j, "bad \\u escape");
        }
        char hex[5] = {j->s[0], j->s[1], j->s[2], j->s[3], 0};
        j->s += 4;
        uint32_t cp = (uint32_t)strtoul(hex, NULL, 16);
        if (cp >= 0xD800 && cp < 0xDC00 && j->end - j->s >= 6 && j->s[0] == '\\' && j->s[1] == 'u') {
          char lo[5] = {j->s[2], j->s[3], j->s[4], j->s[5], 0};
          uint32_t l = (uint32_t)strtoul(lo, NULL, 16);
          if (l >= 0xDC00 && l < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (l - 0xDC00);
            j->s += 6;
          }
        }
        put_utf8(&b, cp);
        break;
      }
      default: buf_append(&b, &c, 1); break;
    }
  }
  if (j->s >= j->end) {
    buf_free(&b);
    return fail(j, "unterminated string");
  }
  j->s++;
  *len = b.len;
  *out = arena_memdup(j->arena, b.data ? (const char *)b.data : "", b.len);
  buf_free(&b);
  return 0;
}

/* Reads a bare token (number, true, false, null) into tok. */
static int parse_token(jp_t *j, char *tok, size_t cap) {
  skip_ws(j);
  size_t n = 0;
  while (j->s < j->end && (isalnum((unsigned char)*j->s) || *j->s == '-' || *j->s == '+' || *j->s == '.')) {
    if (n + 1 >= cap) return fail(j, "token too long");
    tok[n++] = *j->s++;
  }
  tok[n] = 0;
  return n ? 0 : fail(j, "unexpected character");
}

/* Skips any JSON value (for unknown fields). */
static int skip_value(jp_t *j) {
  skip_ws(j);
  if (j->s >= j->end) return fail(j, "unexpected end");
  if (++j->depth > 64) return fail(j, "too deeply nested");
  int rc = 0;
  if (*j->s == '"') {
    char *s;
    size_t n;
    rc = parse_string(j, &s, &n);
  } else if (*j->s == '{' || *j->s == '[') {
    char close = *j->s == '{' ? '}' : ']';
    j->s++;
    skip_ws(j);
    if (j->s < j->end && *j->s == close) {
      j->s++;
    } else {
      for (;;) {
        if (close == '}') {
          char *k;
          size_t kn;
          if ((rc = parse_string(j, &k, &kn)) || (rc = expect(j, ':'))) break;
        }
        if ((rc = skip_value(j))) break;
        skip_ws(j);
        if (j->s < j->end && *j->s == ',') {
          j->s++;
          continue;
        }
        rc = expect(j, close);
        break;
      }
    }
  } else {
    char tok[64];
    rc = parse_token(j, tok, sizeof(tok));
  }
  j->depth--;
  return rc;
}

/* Decodes standard or URL-safe base64 (padding optional) into the arena. */
static int decode_base64(jp_t *j, const char *s, size_t n, ProtobufCBinaryData *out) {
  uint8_t *d = arena_alloc(j->arena, n * 3 / 4 + 3);
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+' || c == '-') v = 62;
    else if (c == '/' || c == '_') v = 63;
    else if (c == '=') break;
    else return fail(j, "illegal base64 data");
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      d[o++] = (uint8_t)(acc >> bits);
    }
  }
  out->data = d;
  out->len = o;
  return 0;
}

static int parse_message(jp_t *j, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out);

/* Parses one scalar or message value of field f into p. */
static int parse_value(jp_t *j, const ProtobufCFieldDescriptor *f, void *p) {
  skip_ws(j);
  if (j->s >= j->end) return fail(j, "unexpected end");
  if (f->type == PROTOBUF_C_TYPE_MESSAGE)
    return parse_message(j, f->descriptor, (ProtobufCMessage **)p);
  char tok[64];
  char *str = NULL;
  size_t slen = 0;
  bool quoted = *j->s == '"';
  if (quoted) {
    if (parse_string(j, &str, &slen)) return CETCD_EINVAL;
  } else if (parse_token(j, tok, sizeof(tok))) {
    return CETCD_EINVAL;
  }
  if (!quoted && !strcmp(tok, "null")) return 0;
  const char *t = quoted ? str : tok;
  errno = 0;
  char *endp = NULL;
  switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
      if (!quoted) return fail(j, "expected a string");
      *(char **)p = str;
      return 0;
    case PROTOBUF_C_TYPE_BYTES:
      if (!quoted) return fail(j, "expected a base64 string");
      return decode_base64(j, str, slen, p);
    case PROTOBUF_C_TYPE_BOOL:
      if (!strcmp(t, "true")) *(protobuf_c_boolean *)p = 1;
      else if (!strcmp(t, "false")) *(protobuf_c_boolean *)p = 0;
      else return fail(j, "expected a boolean");
      return 0;
    case PROTOBUF_C_TYPE_ENUM: {
      const ProtobufCEnumDescriptor *ed = f->descriptor;
      if (quoted) {
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(ed, t);
        if (ev) {
          *(int *)p = ev->value;
          return 0;
        }
      }
      long v = strtol(t, &endp, 10);
      if (endp == t || *endp) return fail(j, "unknown enum value");
      *(int *)p = (int)v;
      return 0;
    }
    case PROTOBUF_C_TYPE_FLOAT: *(float *)p = strtof(t, &endp); break;
    case PROTOBUF_C_TYPE_DOUBLE: *(double *)p = strtod(t, &endp); break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: *(uint32_t *)p = (uint32_t)strtoul(t, &endp, 10); break;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: *(int32_t *)p = (int32_t)strtol(t, &endp, 10); break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: *(uint64_t *)p = strtoull(t, &endp, 10); break;
    default: *(int64_t *)p = strtoll(t, &endp, 10); break;
  }
  if (endp == t || *endp || errno) return fail(j, "bad number");
  return 0;
}

/* Finds a field by original or lowerCamelCase name. */
static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d, const char *name) {
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);
  if (f) return f;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const char *a = d->fields[i].name, *b = name;
    for (; *a && *b; a++, b++) {
      if (*a == '_' && a[1]) {
        a++;
        if (toupper((unsigned char)*a) != *b) break;
      } else if (*a != *b) {
        break;
      }
    }
    if (!*a && !*b) return &d->fields[i];
  }
  return NULL;
}

/* Parses a JSON array into a repeated field. */
static int parse_repeated(jp_t *j, const ProtobufCFieldDescriptor *f, uint8_t *base) {
  skip_ws(j);
  if (j->s < j->end && *j->s == 'n') {
    char tok[8];
    return parse_token(j, tok, sizeof(tok));
  }
  if (expect(j, '[')) return CETCD_EINVAL;
  size_t es = elem_size(f), n = 0, cap = 0;
  uint8_t *arr = NULL;
  skip_ws(j);
  if (j->s < j->end && *j->s == ']') {
    j->s++;
  } else {
    for (;;) {
      if (n == cap) {
        size_t ncap = cap ? cap * 2 : 4;
        uint8_t *na = arena_zalloc(j->arena, ncap * es);
        if (n) memcpy(na, arr, n * es);
        arr = na;
        cap = ncap;
      }
      if (parse_value(j, f, arr + n * es)) return CETCD_EINVAL;
      n++;
      skip_ws(j);
      if (j->s < j->end && *j->s == ',') {
        j->s++;
        continue;
      }
      if (expect(j, ']')) return CETCD_EINVAL;
      break;
    }
  }
  *(size_t *)(base + f->quantifier_offset) = n;
  *(uint8_t **)(base + f->offset) = arr;
  return 0;
}

/* Parses a JSON object into a new message of type d. */
static int parse_message(jp_t *j, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out) {
  skip_ws(j);
  if (j->s < j->end && *j->s == 'n') {
    char tok[8];
    *out = NULL;
    return parse_token(j, tok, sizeof(tok));
  }
  if (++j->depth > 64) return fail(j, "too deeply nested");
  if (expect(j, '{')) return CETCD_EINVAL;
  ProtobufCMessage *m = arena_zalloc(j->arena, d->sizeof_message);
  d->message_init(m);
  uint8_t *base = (uint8_t *)m;
  skip_ws(j);
  if (j->s < j->end && *j->s == '}') {
    j->s++;
  } else {
    for (;;) {
      char *key;
      size_t klen;
      if (parse_string(j, &key, &klen) || expect(j, ':')) return CETCD_EINVAL;
      const ProtobufCFieldDescriptor *f = find_field(d, key);
      int rc;
      if (!f)
        rc = skip_value(j);
      else if (f->label == PROTOBUF_C_LABEL_REPEATED)
        rc = parse_repeated(j, f, base);
      else {
        rc = parse_value(j, f, base + f->offset);
        if (!rc && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) *(uint32_t *)(base + f->quantifier_offset) = f->id;
        else if (!rc && f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
          *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
      }
      if (rc) return rc;
      skip_ws(j);
      if (j->s < j->end && *j->s == ',') {
        j->s++;
        continue;
      }
      if (expect(j, '}')) return CETCD_EINVAL;
      break;
    }
  }
  j->depth--;
  *out = m;
  return 0;
}

int pbjson_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len, arena_t *arena,
                  ProtobufCMessage **out, char *err, size_t errlen) {
  jp_t j = {.start = json, .s = json, .end = json + len, .arena = arena, .err = err, .errlen = errlen};
  err[0] = 0;
  skip_ws(&j);
  if (j.s == j.end) { /* an empty body is an empty message */
    ProtobufCMessage *m = arena_zalloc(arena, desc->sizeof_message);
    desc->message_init(m);
    *out = m;
    return 0;
  }
  int rc = parse_message(&j, desc, out);
  if (rc) return rc;
  skip_ws(&j);
  if (j.s != j.end) return fail(&j, "trailing data after JSON object");
  if (!*out) return fail(&j, "expected an object");
  return 0;
}
