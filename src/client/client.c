/* libcetcd: client lifecycle, errors, unary calls with retry, shared conversions. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client/client_int.h"
#include "client/transport/grpc_client_tls.h"

enum {
  DEFAULT_DIAL_MS = 5000,
  DEFAULT_REQUEST_MS = 5000,
  DEFAULT_MAX_RECV = 64 * 1024 * 1024,
};

/* ===================================================================================== */
/* Errors                                                                                */
/* ===================================================================================== */

static _Thread_local cetcd_error_info_t tl_err;

int cc_error(int code, int grpc_status, const char *msg) {
  tl_err.code = code;
  tl_err.grpc_status = grpc_status;
  snprintf(tl_err.message, sizeof tl_err.message, "%s", msg && *msg ? msg : cetcd_strerror(code));
  return code;
}

const cetcd_error_info_t *cetcd_client_last_error(const cetcd_client_t *client) {
  (void)client;
  return &tl_err;
}

/* etcd's error messages (api/v3rpc/rpctypes) and the codes they map to. */
static const struct {
  const char *msg;
  int code;
} known_errors[] = {
    {"etcdserver: mvcc: required revision has been compacted", CETCD_ECOMPACTED},
    {"etcdserver: mvcc: required revision is a future revision", CETCD_EFUTUREREV},
    {"etcdserver: requested lease not found", CETCD_ELEASENOTFOUND},
    {"etcdserver: lease already exists", CETCD_ELEASEEXISTS},
    {"etcdserver: too large lease TTL", CETCD_ETTLTOOLARGE},
    {"etcdserver: mvcc: database space exceeded", CETCD_ENOSPACE},
    {"etcdserver: too many operations in txn request", CETCD_ETOOMANYOPS},
    {"etcdserver: duplicate key given in txn request", CETCD_EDUPKEY},
    {"etcdserver: key is not provided", CETCD_EKEYEMPTY},
    {"etcdserver: key not found", CETCD_EKEYNOTFOUND},
    {"etcdserver: value is provided", CETCD_EVALUEPROVIDED},
    {"etcdserver: lease is provided", CETCD_ELEASEPROVIDED},
    {"etcdserver: request is too large", CETCD_ETOOLARGE},
    {"etcdserver: no leader", CETCD_ENOLEADER},
    {"etcdserver: server stopped", CETCD_ESTOPPED},
    {"etcdserver: request timed out", CETCD_ETIMEOUT},
    {"etcdserver: corrupt cluster", CETCD_ECORRUPT},
    {"etcdserver: authentication failed, invalid user ID or password", CETCD_EAUTHFAILED},
    {"etcdserver: invalid auth token", CETCD_EAUTHBADTOKEN},
    {"etcdserver: permission denied", CETCD_EAUTHDENIED},
    {"etcdserver: authentication is not enabled", CETCD_EAUTHNOTENABLED},
    {"etcdserver: user name not found", CETCD_EAUTHUSERNOTFOUND},
    {"etcdserver: role name not found", CETCD_EAUTHROLENOTFOUND},
    {"etcdserver: user name already exists", CETCD_EAUTHUSEREXISTS},
    {"etcdserver: role name already exists", CETCD_EAUTHROLEEXISTS},
    {"etcdserver: root user does not exist", CETCD_EAUTHROOTUSER},
    {"etcdserver: root user does not have root role", CETCD_EAUTHROOTROLE},
    {"etcdserver: user name is empty", CETCD_EAUTHUSEREMPTY},
    {"etcdserver: role name is empty", CETCD_EAUTHROLEEMPTY},
    {"etcdserver: role is not granted to the user", CETCD_EAUTHROLENOTGRANTED},
    {"etcdserver: permission is not granted to the role", CETCD_EAUTHPERMNOTGRANTED},
    {"etcdserver: revision of auth store is old", CETCD_EAUTHOLDREV},
    {"etcdserver: invalid auth management", CETCD_EAUTHBADMGMT},
};

int cc_map_status(int status, const char *msg) {
  if (status == 0) return 0;
  for (size_t i = 0; msg && i < sizeof known_errors / sizeof known_errors[0]; i++)
    if (!strcmp(msg, known_errors[i].msg)) return known_errors[i].code;
  switch (status) {
    case 1:
      return CETCD_ECANCELED;
    case 4:
      return CETCD_ETIMEOUT;
    case 14:
      return CETCD_EUNAVAILABLE;
    default:
      return CETCD_EGRPC;
  }
}

/* ===================================================================================== */
/* Lifecycle                                                                             */
/* ===================================================================================== */

/* True when opts ask for TLS on endpoints without a scheme. */
static bool tls_wanted(const cetcd_client_opts_t *o) {
  return o->tls || o->insecure_skip_verify || (o->ca_file && *o->ca_file) || (o->cert_file && *o->cert_file) ||
         (o->key_file && *o->key_file) || (o->server_name && *o->server_name);
}

/* Builds the TLS settings when any endpoint or option needs them. Returns 0 or a
 * recorded code. */
static int tls_setup(cetcd_client_t *c, const cetcd_client_opts_t *o) {
  bool https = false;
  for (size_t i = 0; i < o->n_endpoints; i++) https |= o->endpoints[i] && !strncmp(o->endpoints[i], "https://", 8);
  if (!https && !tls_wanted(o)) return 0;
  grpc_tls_config_t tc = {.ca_file = o->ca_file, .cert_file = o->cert_file, .key_file = o->key_file,
                          .server_name = o->server_name, .insecure_skip_verify = o->insecure_skip_verify};
  char err[400] = "";
  int rc = grpc_tls_ctx_new(&tc, &c->tls, err, sizeof err);
  return rc ? cc_error(rc, 0, err) : 0;
}

/* Frees the client struct and its credentials (the transport is gone or never was). */
static void client_release(cetcd_client_t *c) {
  grpc_tls_ctx_free(c->tls);
  if (c->password) memset(c->password, 0, strlen(c->password));
  cc_free(c->user);
  cc_free(c->password);
  cc_free(c);
}

int cetcd_client_new(const cetcd_client_opts_t *opts, cetcd_client_t **out) {
  if (!out) return cc_error(CETCD_EINVAL, 0, "out is NULL");
  *out = NULL;
  if (!opts || !opts->endpoints || !opts->n_endpoints) return cc_error(CETCD_EINVAL, 0, "no endpoints");
  if (!opts->username != !opts->password || (opts->username && !*opts->username))
    return cc_error(CETCD_EINVAL, 0, "username and password go together");
  cetcd_client_t *c = cc_calloc(1, sizeof(*c));
  if (!c) return cc_error(CETCD_ENOMEM, 0, NULL);
  if (opts->username) {
    c->user = cc_memdup(opts->username, strlen(opts->username));
    c->password = cc_memdup(opts->password, strlen(opts->password));
    if (!c->user || !c->password) {
      client_release(c);
      return cc_error(CETCD_ENOMEM, 0, NULL);
    }
  }
  c->request_timeout_ms = opts->request_timeout_ms == 0  ? DEFAULT_REQUEST_MS
                          : opts->request_timeout_ms < 0 ? 0
                                                         : (uint64_t)opts->request_timeout_ms;
  grpc_client_config_t cfg = {
      .endpoints = opts->endpoints,
      .n_endpoints = opts->n_endpoints,
      .dial_timeout_ms = opts->dial_timeout_ms > 0 ? opts->dial_timeout_ms : DEFAULT_DIAL_MS,
      .max_recv_bytes = opts->max_recv_bytes ? opts->max_recv_bytes : DEFAULT_MAX_RECV,
      .mem = {cc_malloc, cc_realloc, cc_free},
  };
  int rc = tls_setup(c, opts);
  if (rc) {
    client_release(c);
    return rc;
  }
  cfg.tls_ops = &grpc_tls_ops;
  cfg.tls_ctx = c->tls;
  cfg.tls_default = tls_wanted(opts);
  rc = grpc_client_new(&cfg, &c->gc);
  if (rc) {
    client_release(c);
    return cc_error(rc, 0, rc == CETCD_EINVAL ? "invalid endpoint" : NULL);
  }
  pthread_mutex_init(&c->ka_mu, NULL);
  pthread_mutex_init(&c->auth_mu, NULL);
  if (!opts->lazy_connect) {
    rc = grpc_client_wait_ready(c->gc, cfg.dial_timeout_ms);
    if (rc) {
      cetcd_client_free(c);
      return cc_error(rc, 0, "no endpoint reachable within the dial timeout");
    }
    if (c->user && (rc = cc_auth_refresh(c, UINT64_MAX)) != 0) {
      cetcd_error_info_t e = *cetcd_client_last_error(NULL);
      cetcd_client_free(c);
      return cc_error(e.code, e.grpc_status, e.message);
    }
  }
  *out = c;
  return 0;
}

void cetcd_client_free(cetcd_client_t *c) {
  if (!c) return;
  cc_ka_shutdown(c);
  grpc_client_free(c->gc);
  pthread_mutex_destroy(&c->ka_mu);
  pthread_mutex_destroy(&c->auth_mu);
  client_release(c);
}

const char *cetcd_client_endpoint(const cetcd_client_t *c) {
  return grpc_client_endpoint(c->gc, grpc_client_current(c->gc));
}

int cc_channel_for(cetcd_client_t *c, const char *endpoint, int *channel) {
  if (!endpoint) {
    *channel = -1;
    return 0;
  }
  int k = grpc_client_find_endpoint(c->gc, endpoint);
  if (k < 0) return cc_error(CETCD_EINVAL, 0, "endpoint is not one of the client's endpoints");
  *channel = k;
  return 0;
}

/* ===================================================================================== */
/* Unary calls                                                                           */
/* ===================================================================================== */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(uint64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int cc_auth_first(cetcd_client_t *c) {
  pthread_mutex_lock(&c->auth_mu);
  bool authed = c->authed;
  pthread_mutex_unlock(&c->auth_mu);
  return authed ? 0 : cc_auth_refresh(c, 0);
}

static void do_failover(grpc_client_t *gc, void *arg) {
  (void)arg;
  grpc_client_failover(gc);
}

int cc_unary(cetcd_client_t *c, const char *path, int channel, const ProtobufCMessage *req,
             const ProtobufCMessageDescriptor *resp_desc, bool idempotent, uint64_t timeout_ms,
             ProtobufCMessage **resp) {
  *resp = NULL;
  size_t n = protobuf_c_message_get_packed_size(req);
  uint8_t stack_buf[2048]; /* small requests need no allocation (the transport copies) */
  uint8_t *buf = n <= sizeof stack_buf ? stack_buf : cc_malloc(n);
  if (!buf) return cc_error(CETCD_ENOMEM, 0, NULL);
  protobuf_c_message_pack(req, buf);
  uint64_t tmo = timeout_ms ? timeout_ms : c->request_timeout_ms;
  uint64_t deadline = tmo ? now_ms() + tmo : 0;
  grpc_unary_t u;
  int rc;
  bool auth_call = !strcmp(path, GRPC_AUTHENTICATE_PATH);
  bool reauthed = false;
  if (c->user && !auth_call && (rc = cc_auth_first(c)) != 0) {
    if (buf != stack_buf) cc_free(buf);
    return rc;
  }
  for (;;) {
    uint64_t gen = c->user && !auth_call ? cc_auth_gen(c) : 0;
    memset(&u, 0, sizeof u);
    u.path = path;
    u.channel = channel;
    u.req = buf;
    u.req_len = n;
    if (deadline) {
      uint64_t now = now_ms();
      u.timeout_ms = deadline > now ? deadline - now : 1;
    }
    rc = grpc_client_unary(c->gc, &u);
    if (rc == 0 && u.status == 0) break;
    if (rc == 0 && c->user && !auth_call && !reauthed && cc_auth_token_error(u.message)) {
      /* clientv3's retry interceptor: a new token, then the same call once more */
      reauthed = true;
      int arc = cc_auth_refresh(c, gen);
      if (arc == 0) continue;
      if (buf != stack_buf) cc_free(buf);
      return arc;
    }
    bool server_unavail = rc == 0 && u.status == 14;
    bool unavailable = rc == CETCD_EUNAVAILABLE || server_unavail;
    bool time_left = !deadline || now_ms() + 20 < deadline;
    if (!unavailable || channel != -1 || !time_left || !(idempotent || !u.sent)) break;
    if (server_unavail) {
      /* the member cannot serve (no leader, stopping): try another one after a pause */
      grpc_client_run_sync(c->gc, do_failover, NULL);
      uint64_t left = deadline ? deadline - now_ms() : 100;
      sleep_ms(left < 100 ? left : 100);
    }
  }
  if (buf != stack_buf) cc_free(buf);
  if (rc) return cc_error(rc, 0, u.message);
  if (u.status) return cc_error(cc_map_status(u.status, u.message), u.status, u.message);
  cc_pb_oom_take();
  ProtobufCMessage *m = protobuf_c_message_unpack(resp_desc, &cc_pb_alloc, u.resp_len, u.resp);
  cc_free(u.resp);
  if (!m) {
    if (cc_pb_oom_take()) return cc_error(CETCD_ENOMEM, 0, NULL);
    return cc_error(CETCD_EGRPC, 13, "malformed response message");
  }
  *resp = m;
  return 0;
}

/* ===================================================================================== */
/* Conversions                                                                           */
/* ===================================================================================== */

void cc_header(cetcd_header_t *dst, const Etcdserverpb__ResponseHeader *src) {
  memset(dst, 0, sizeof(*dst));
  if (!src) return;
  dst->cluster_id = src->cluster_id;
  dst->member_id = src->member_id;
  dst->revision = src->revision;
  dst->raft_term = src->raft_term;
}

int cc_kv_copy(cetcd_kv_t *dst, const Mvccpb__KeyValue *src) {
  memset(dst, 0, sizeof(*dst));
  dst->key = cc_memdup(src->key.data, src->key.len);
  dst->value = cc_memdup(src->value.data, src->value.len);
  if (!dst->key || !dst->value) {
    cc_kv_clear(dst);
    return CETCD_ENOMEM;
  }
  dst->key_len = src->key.len;
  dst->value_len = src->value.len;
  dst->create_revision = src->create_revision;
  dst->mod_revision = src->mod_revision;
  dst->version = src->version;
  dst->lease = src->lease;
  return 0;
}

void cc_kv_clear(cetcd_kv_t *kv) {
  cc_free(kv->key);
  cc_free(kv->value);
  memset(kv, 0, sizeof(*kv));
}

int cc_kv_dup(cetcd_kv_t **out, const Mvccpb__KeyValue *src) {
  *out = NULL;
  if (!src) return 0;
  cetcd_kv_t *kv = cc_malloc(sizeof(*kv));
  if (!kv) return CETCD_ENOMEM;
  if (cc_kv_copy(kv, src)) {
    cc_free(kv);
    return CETCD_ENOMEM;
  }
  *out = kv;
  return 0;
}

void cc_kvs_free(cetcd_kv_t *kvs, size_t n) {
  for (size_t i = 0; kvs && i < n; i++) cc_kv_clear(&kvs[i]);
  cc_free(kvs);
}

int cc_kvs_copy(cetcd_kv_t **out, size_t *n_out, Mvccpb__KeyValue **src, size_t n) {
  *out = NULL;
  *n_out = 0;
  if (!n) return 0;
  cetcd_kv_t *kvs = cc_calloc(n, sizeof(*kvs));
  if (!kvs) return CETCD_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    if (cc_kv_copy(&kvs[i], src[i])) {
      cc_kvs_free(kvs, i);
      return CETCD_ENOMEM;
    }
  }
  *out = kvs;
  *n_out = n;
  return 0;
}

int cc_range(const void *key, size_t klen, const void *range_end, size_t range_end_len, bool prefix,
             bool from_key, ProtobufCBinaryData *k, ProtobufCBinaryData *end, uint8_t **end_buf) {
  static uint8_t zero = 0;
  *end_buf = NULL;
  end->data = NULL;
  end->len = 0;
  if (klen && !key) return CETCD_EINVAL;
  if ((range_end_len && !range_end) || (prefix + from_key + (range_end_len > 0)) > 1) return CETCD_EINVAL;
  k->data = (uint8_t *)key;
  k->len = klen;
  if (from_key || (prefix && klen == 0)) {
    /* all keys >= key; an empty key means every key */
    if (!klen) {
      k->data = &zero;
      k->len = 1;
    }
    end->data = &zero;
    end->len = 1;
    return 0;
  }
  if (prefix) {
    const uint8_t *kb = key;
    size_t n = klen;
    while (n && kb[n - 1] == 0xff) n--;
    if (!n) {
      end->data = &zero;
      end->len = 1;
      return 0;
    }
    uint8_t *b = cc_malloc(n);
    if (!b) return CETCD_ENOMEM;
    memcpy(b, kb, n);
    b[n - 1]++;
    *end_buf = b;
    end->data = b;
    end->len = n;
    return 0;
  }
  if (range_end_len) {
    end->data = (uint8_t *)range_end;
    end->len = range_end_len;
  }
  return 0;
}
