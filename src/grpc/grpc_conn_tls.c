/* TLS on a server connection: between the socket and the connection's plaintext path
 * (grpc_conn_feed in, c->out out). Bytes read are decrypted into grpc_conn_feed; at flush,
 * c->out is sealed into c->cipher, which is what goes on the socket. A handshake must end
 * within HANDSHAKE_TIMEOUT_MS, so a slow or silent client holds nothing for long. */
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "grpc/grpc_int.h"

enum { HANDSHAKE_TIMEOUT_MS = 10000, PLAIN_CHUNK = 16384 };

/* libuv: the handshake timer's handle is closed; release its reference. */
static void on_timer_closed(uv_handle_t *h) {
  grpc_conn_t *c = h->data;
  free(h);
  grpc_conn_unref(c);
}

/* Stops and releases the handshake timer, if any. */
static void stop_timer(grpc_conn_t *c) {
  if (!c->hs_timer) return;
  uv_close((uv_handle_t *)c->hs_timer, on_timer_closed);
  c->hs_timer = NULL;
}

/* libuv: the handshake did not end in time. */
static void on_handshake_timeout(uv_timer_t *t) {
  grpc_conn_t *c = t->data;
  LOGW("msg=\"rejected connection\" remote-addr=%s error=\"TLS handshake timed out after %d ms\"", c->peer,
       HANDSHAKE_TIMEOUT_MS);
  stop_timer(c);
  grpc_conn_close(c);
}

int grpc_conn_start_tls(grpc_conn_t *c, tls_ctx_t *ctx) {
  char err[256];
  if (tls_ctx_reload_if_changed(ctx, err, sizeof(err)))
    LOGW("msg=\"cannot reload TLS certificates; keeping the previous ones\" error=\"%s\"", err);
  c->tls = tls_conn_new(ctx);
  if (!c->tls) return -1;
  c->hs_timer = xmalloc(sizeof(*c->hs_timer));
  uv_timer_init(c->srv->loop, c->hs_timer);
  c->hs_timer->data = c;
  c->refs++; /* the timer's */
  uv_timer_start(c->hs_timer, on_handshake_timeout, HANDSHAKE_TIMEOUT_MS, 0);
  return 0;
}

/* A failed handshake or record: log it, send the alert OpenSSL queued, then close. */
static void tls_failed(grpc_conn_t *c) {
  if (tls_conn_closed(c->tls)) { /* the client's close_notify: like EOF */
    grpc_conn_close(c);
    return;
  }
  LOGW("msg=\"rejected connection\" remote-addr=%s error=\"%s\"", c->peer, tls_conn_error(c->tls));
  stop_timer(c);
  c->tls_failed = c->close_after_write = true;
  grpc_conn_mark_dirty(c);
}

void grpc_conn_tls_read(grpc_conn_t *c, const uint8_t *p, size_t n) {
  if (c->tls_failed) return; /* only the alert is left to send */
  if (tls_conn_feed(c->tls, p, n)) {
    tls_failed(c);
    return;
  }
  uint8_t plain[PLAIN_CHUNK];
  c->refs++;
  while (!c->closing) {
    ssize_t r = tls_conn_read(c->tls, plain, sizeof(plain));
    if (r < 0) {
      tls_failed(c);
      break;
    }
    if (r == 0) break;
    if (grpc_conn_feed(c, plain, (size_t)r)) break;
  }
  if (c->hs_timer && tls_conn_handshake_done(c->tls)) stop_timer(c);
  if (!c->closing && tls_conn_pending(c->tls)) grpc_conn_mark_dirty(c);
  grpc_conn_unref(c);
}

int grpc_conn_tls_seal(grpc_conn_t *c) {
  if (c->tls_failed) {
    c->out.len = 0; /* nothing but the alert goes out */
  } else if (c->out.len) {
    ssize_t w = tls_conn_write(c->tls, c->out.data, c->out.len);
    if (w < 0) {
      LOGD("grpc: tls write failed peer=%s: %s", c->peer, tls_conn_error(c->tls));
      grpc_conn_close(c);
      return -1;
    }
    buf_consume(&c->out, (size_t)w);
  }
  size_t n;
  while ((n = tls_conn_pending(c->tls)) > 0) {
    buf_reserve(&c->cipher, n);
    c->cipher.len += tls_conn_take(c->tls, c->cipher.data + c->cipher.len, n);
  }
  return 0;
}

void grpc_conn_tls_closing(grpc_conn_t *c) { stop_timer(c); }

void grpc_conn_tls_free(grpc_conn_t *c) {
  tls_conn_free(c->tls);
  c->tls = NULL;
  buf_free(&c->cipher);
}

bool grpc_conn_peer_cn(const grpc_conn_t *c, char *out, size_t cap) {
  return c->tls && tls_conn_peer_cn(c->tls, out, cap);
}
