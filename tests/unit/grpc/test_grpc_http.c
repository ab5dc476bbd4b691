/* Asynchronous plain HTTP/1.1 answers: a grpc_server on 127.0.0.1 in its own thread (one
 * per test), an HTTP handler answering now, later from a timer, or streaming chunks, and
 * raw-socket clients that parse the responses (Content-Length and chunked bodies). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
// cmocka must come after the headers above
#include <cmocka.h>

#include "grpc/grpc_server.h"

/* ============================== server side ============================== */

static atomic_int g_port;
static atomic_int g_closes;    /* on_close hooks run */
static atomic_int g_late_done; /* answers given after the client left */
static atomic_int g_shutdown_done;
static uv_loop_t g_loop;
static uv_async_t g_stop;
static grpc_server_t *g_srv;
static pthread_t g_thread;

/* A request answered from a timer: `later` once, or `chunks` streamed chunks then the end. */
typedef struct pending {
  uv_timer_t t;
  grpc_http_req_t *req;
  int chunks, sent;
  bool gone;
  char text[64];
} pending_t;

static void pending_closed(uv_handle_t *h) { free(h->data); }

/* Timer: one step of a delayed answer. */
static void pending_fire(uv_timer_t *t) {
  pending_t *p = t->data;
  if (p->gone) { /* the client left: answer anyway (dropped), which frees the request */
    if (p->chunks)
      grpc_http_respond_end(p->req);
    else
      grpc_http_respond(p->req, 200, NULL, (const uint8_t *)"late", 4);
    atomic_fetch_add(&g_late_done, 1);
  } else if (p->chunks == 0) {
    grpc_http_respond(p->req, 200, "text/plain", (const uint8_t *)p->text, strlen(p->text));
  } else if (p->sent < p->chunks) {
    char c[16];
    memset(c, 'a' + p->sent, sizeof(c));
    p->sent++;
    grpc_http_respond_chunk(p->req, (const uint8_t *)c, (size_t)p->sent); /* "a", "bb", "ccc"... */
    return;                                                               /* repeating timer */
  } else {
    grpc_http_respond_end(p->req);
  }
  uv_timer_stop(t);
  uv_close((uv_handle_t *)t, pending_closed);
}

/* on_close hook: note it and answer (late) on the next timer tick. */
static void pending_gone(void *arg) {
  pending_t *p = arg;
  atomic_fetch_add(&g_closes, 1);
  p->gone = true;
  uv_timer_start(&p->t, pending_fire, 5, 0);
}

/* Starts a delayed answer: after ms, or every ms for streams. */
static pending_t *pending_new(grpc_http_req_t *req, unsigned ms, int chunks) {
  pending_t *p = calloc(1, sizeof(*p));
  p->req = req;
  p->chunks = chunks;
  uv_timer_init(&g_loop, &p->t);
  p->t.data = p;
  uv_timer_start(&p->t, pending_fire, ms, chunks ? ms : 0);
  grpc_http_req_on_close(req, pending_gone, p);
  return p;
}

/* Routes: /now, /later (reply after 30 ms with the X-Test header), /stream (3 chunks),
 * /hang (never, until the client leaves), /slow (after 200 ms), POST /echo. */
static void http1(void *ctx, grpc_http_req_t *req, const char *method, const char *path, const uint8_t *b,
                  size_t n) {
  (void)ctx;
  if (!strcmp(path, "/now")) {
    grpc_http_respond(req, 200, "text/plain", (const uint8_t *)"now", 3);
  } else if (!strcmp(path, "/later")) {
    pending_t *p = pending_new(req, 30, 0);
    const char *h = grpc_http_req_header(req, "x-test");
    snprintf(p->text, sizeof(p->text), "later:%s", h ? h : "-");
  } else if (!strcmp(path, "/stream")) {
    pending_new(req, 20, 3);
  } else if (!strcmp(path, "/hang")) {
    pending_t *p = pending_new(req, 0, 0);
    uv_timer_stop(&p->t);
  } else if (!strcmp(path, "/slow")) {
    snprintf(pending_new(req, 200, 0)->text, 64, "slow");
  } else if (!strcmp(path, "/echo") && !strcmp(method, "POST")) {
    grpc_http_respond(req, 201, "application/json", b, n);
  } else {
    grpc_http_respond(req, 404, NULL, (const uint8_t *)"404 page not found\n", 19);
  }
}

static void shutdown_done(void *arg) {
  (void)arg;
  atomic_store(&g_shutdown_done, 1);
  uv_close((uv_handle_t *)&g_stop, NULL);
}
static void on_stop(uv_async_t *a) {
  unsigned grace = (unsigned)(uintptr_t)a->data;
  grpc_server_shutdown(g_srv, grace, shutdown_done, NULL);
}

static void *server_main(void *arg) {
  (void)arg;
  grpc_server_opts_t o = {.http1 = http1};
  g_srv = grpc_server_new(&g_loop, &o);
  assert_int_equal(grpc_server_listen(g_srv, "127.0.0.1", 0, NULL), 0);
  atomic_store(&g_port, grpc_server_port(g_srv));
  uv_run(&g_loop, UV_RUN_DEFAULT);
  grpc_server_free(g_srv);
  uv_run(&g_loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&g_loop), 0);
  return NULL;
}

/* Starts a fresh server thread. */
static int srv_start(void **state) {
  (void)state;
  atomic_store(&g_port, 0);
  atomic_store(&g_closes, 0);
  atomic_store(&g_late_done, 0);
  atomic_store(&g_shutdown_done, 0);
  uv_loop_init(&g_loop);
  uv_async_init(&g_loop, &g_stop, on_stop);
  pthread_create(&g_thread, NULL, server_main, NULL);
  for (int i = 0; i < 500 && !atomic_load(&g_port); i++) usleep(2000);
  return atomic_load(&g_port) > 0 ? 0 : -1;
}

/* Shuts the server down with grace_ms and joins its thread. */
static void srv_stop_grace(unsigned grace_ms) {
  g_stop.data = (void *)(uintptr_t)grace_ms;
  uv_async_send(&g_stop);
  pthread_join(g_thread, NULL);
  assert_int_equal(atomic_load(&g_shutdown_done), 1);
}

static int srv_stop(void **state) {
  (void)state;
  srv_stop_grace(1000);
  return 0;
}

/* ============================== client side ============================== */

typedef struct conn {
  int fd;
  char buf[65536];
  size_t len; /* bytes buffered, not yet parsed */
  bool eof;
} conn_t;

typedef struct resp {
  int status;
  char head[2048];
  char body[8192];
  size_t body_len;
  int n_chunks;
  size_t chunk_len[16];
  bool chunked;
} resp_t;

static conn_t *cconnect(void) {
  conn_t *c = calloc(1, sizeof(*c));
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atomic_load(&g_port))};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
  return c;
}

static void cclose(conn_t *c) {
  close(c->fd);
  free(c);
}

static void csend(conn_t *c, const char *s) {
  size_t n = strlen(s);
  assert_int_equal(write(c->fd, s, n), (ssize_t)n);
}

/* Reads more bytes (up to ms); false on timeout or EOF. */
static bool cfill(conn_t *c, int ms) {
  struct pollfd p = {.fd = c->fd, .events = POLLIN};
  if (poll(&p, 1, ms) <= 0) return false;
  ssize_t r = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
  if (r <= 0) {
    c->eof = true;
    return false;
  }
  c->len += (size_t)r;
  c->buf[c->len] = 0;
  return true;
}

/* Waits until n bytes are buffered. */
static bool cneed(conn_t *c, size_t n) {
  while (c->len < n)
    if (!cfill(c, 3000)) return false;
  return true;
}

/* Drops the first n buffered bytes. */
static void cdrop(conn_t *c, size_t n) {
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
  c->buf[c->len] = 0;
}

/* Returns the offset just past the next CRLF (waiting for it), or 0. */
static size_t cline(conn_t *c) {
  for (;;) {
    char *e = strstr(c->buf, "\r\n");
    if (e) return (size_t)(e - c->buf) + 2;
    if (!cfill(c, 3000)) return 0;
  }
}

/* Reads one complete response (Content-Length or chunked). */
static bool cread(conn_t *c, resp_t *r) {
  memset(r, 0, sizeof(*r));
  char *e;
  while (!(e = strstr(c->buf, "\r\n\r\n")))
    if (!cfill(c, 3000)) return false;
  size_t hl = (size_t)(e - c->buf) + 4;
  assert_true(hl < sizeof(r->head));
  memcpy(r->head, c->buf, hl);
  cdrop(c, hl);
  assert_int_equal(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);
  const char *cl = strstr(r->head, "Content-Length: ");
  if (cl) {
    size_t n = strtoul(cl + 16, NULL, 10);
    if (!cneed(c, n)) return false;
    memcpy(r->body, c->buf, n);
    r->body_len = n;
    cdrop(c, n);
    return true;
  }
  assert_non_null(strstr(r->head, "Transfer-Encoding: chunked\r\n"));
  r->chunked = true;
  for (;;) {
    size_t l = cline(c);
    if (!l) return false;
    size_t n = strtoul(c->buf, NULL, 16);
    cdrop(c, l);
    if (!cneed(c, n + 2)) return false;
    assert_true(c->buf[n] == '\r' && c->buf[n + 1] == '\n');
    if (n == 0) {
      cdrop(c, 2);
      return true;
    }
    memcpy(r->body + r->body_len, c->buf, n);
    r->body_len += n;
    if (r->n_chunks < 16) r->chunk_len[r->n_chunks] = n;
    r->n_chunks++;
    cdrop(c, n + 2);
  }
}

/* True if the server closes the connection within ms. */
static bool ceof(conn_t *c, int ms) {
  while (!c->eof)
    if (!cfill(c, ms)) break;
  return c->eof;
}

/* Waits for an atomic counter to reach want. */
static bool wait_for(atomic_int *v, int want) {
  for (int i = 0; i < 300 && atomic_load(v) < want; i++) usleep(10000);
  return atomic_load(v) >= want;
}

/* ============================== tests ============================== */

static void test_async_answer(void **state) {
  (void)state;
  conn_t *c = cconnect();
  csend(c, "GET /later HTTP/1.1\r\nHost: x\r\nX-Test: hi there\r\n\r\n");
  resp_t r;
  assert_true(cread(c, &r));
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, 14);
  assert_memory_equal(r.body, "later:hi there", 14);
  assert_null(strstr(r.head, "Connection: close"));
  /* keep-alive: pipelined requests are answered in order, the late one first */
  csend(c,
        "GET /later HTTP/1.1\r\n\r\nPOST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
        "GET /now HTTP/1.1\r\nConnection: close\r\n\r\n");
  assert_true(cread(c, &r));
  assert_memory_equal(r.body, "later:-", 7);
  assert_true(cread(c, &r));
  assert_int_equal(r.status, 201);
  assert_memory_equal(r.body, "hello", 5);
  assert_true(cread(c, &r));
  assert_memory_equal(r.body, "now", 3);
  assert_non_null(strstr(r.head, "Connection: close\r\n"));
  assert_true(ceof(c, 2000));
  cclose(c);
  /* HTTP/1.0 closes after the answer; unknown paths get the handler's 404 */
  c = cconnect();
  csend(c, "GET /nope HTTP/1.0\r\n\r\n");
  assert_true(cread(c, &r));
  assert_int_equal(r.status, 404);
  assert_true(ceof(c, 2000));
  cclose(c);
}

static void test_chunked_stream(void **state) {
  (void)state;
  conn_t *c = cconnect();
  csend(c, "GET /stream HTTP/1.1\r\n\r\n");
  resp_t r;
  assert_true(cread(c, &r));
  assert_int_equal(r.status, 200);
  assert_true(r.chunked);
  assert_non_null(strstr(r.head, "Content-Type: application/json\r\n"));
  assert_int_equal(r.n_chunks, 3);
  assert_int_equal(r.chunk_len[0], 1);
  assert_int_equal(r.chunk_len[2], 3);
  assert_int_equal(r.body_len, 6);
  assert_memory_equal(r.body, "abbccc", 6);
  /* the connection is still usable after a streamed answer */
  csend(c, "GET /now HTTP/1.1\r\n\r\n");
  assert_true(cread(c, &r));
  assert_memory_equal(r.body, "now", 3);
  cclose(c);
}

static void test_client_leaves(void **state) {
  (void)state;
  /* before any answer: on_close runs, the late answer is a harmless no-op */
  conn_t *c = cconnect();
  csend(c, "GET /hang HTTP/1.1\r\n\r\n");
  usleep(50000);
  assert_int_equal(atomic_load(&g_closes), 0);
  cclose(c);
  assert_true(wait_for(&g_closes, 1));
  assert_true(wait_for(&g_late_done, 1));
  /* in the middle of a stream: the first chunk arrived, then the client goes */
  c = cconnect();
  csend(c, "GET /stream HTTP/1.1\r\n\r\n");
  while (!strstr(c->buf, "\r\n\r\n1\r\na\r\n")) assert_true(cfill(c, 3000));
  cclose(c);
  assert_true(wait_for(&g_closes, 2));
  assert_true(wait_for(&g_late_done, 2));
  /* the server is fine */
  c = cconnect();
  csend(c, "GET /now HTTP/1.1\r\n\r\n");
  resp_t r;
  assert_true(cread(c, &r));
  assert_int_equal(r.status, 200);
  cclose(c);
}

static void test_shutdown_waits(void **state) {
  (void)state;
  conn_t *c = cconnect();
  conn_t *idle = cconnect();
  csend(idle, "GET /now HTTP/1.1\r\n\r\n");
  resp_t r;
  assert_true(cread(idle, &r)); /* an idle keep-alive connection */
  csend(c, "GET /slow HTTP/1.1\r\n\r\n");
  usleep(20000);
  g_stop.data = (void *)(uintptr_t)3000;
  uv_async_send(&g_stop);
  assert_true(ceof(idle, 2000)); /* idle connections close at once */
  assert_true(cread(c, &r));     /* the request in flight is answered... */
  assert_int_equal(r.status, 200);
  assert_memory_equal(r.body, "slow", 4);
  assert_non_null(strstr(r.head, "Connection: close\r\n"));
  assert_true(ceof(c, 2000)); /* ...then the connection closes */
  pthread_join(g_thread, NULL);
  assert_int_equal(atomic_load(&g_shutdown_done), 1);
  assert_int_equal(atomic_load(&g_closes), 0);
  cclose(c);
  cclose(idle);
}

static void test_shutdown_grace_expires(void **state) {
  (void)state;
  conn_t *c = cconnect();
  csend(c, "GET /hang HTTP/1.1\r\n\r\n");
  usleep(20000);
  srv_stop_grace(100); /* the hanging request is cancelled when the grace period ends */
  assert_int_equal(atomic_load(&g_closes), 1);
  assert_int_equal(atomic_load(&g_late_done), 1);
  assert_true(ceof(c, 2000));
  cclose(c);
}

/* No teardown: the test shut the server down itself. */
static int no_stop(void **state) {
  (void)state;
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_async_answer, srv_start, srv_stop),
      cmocka_unit_test_setup_teardown(test_chunked_stream, srv_start, srv_stop),
      cmocka_unit_test_setup_teardown(test_client_leaves, srv_start, srv_stop),
      cmocka_unit_test_setup_teardown(test_shutdown_waits, srv_start, no_stop),
      cmocka_unit_test_setup_teardown(test_shutdown_grace_expires, srv_start, no_stop),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
