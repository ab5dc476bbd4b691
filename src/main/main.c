/* cetcd: an etcd v3-compatible server. The composition root: parses etcd's flags, starts
 * the server (server/) on a libuv loop with the api layer (api/) plugged into it, and runs
 * until SIGTERM/SIGINT. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "api/api_layer.h"
#include "base/log.h"
#include "server/config.h"
#include "server/server.h"

/* SIGBUS: the backend's data file is written through a shared map; a page with no disk
 * block behind it (a full file system that outran the space reserved ahead, or a data file
 * truncated under us) cannot be written. Say so and stop: every acknowledged write is in
 * the WAL and is applied again at the next start. Only async-signal-safe calls here. */
static void on_sigbus(int sig) {
  (void)sig;
  static const char msg[] =
      "FATAL msg=\"bus error writing the backend's memory map\" cause=\"the data dir's file system is full, "
      "or member/snap/data.mdb was truncated\" fix=\"free disk space and start cetcd again; acknowledged "
      "writes are in the WAL and are replayed\"\n";
  ssize_t n = write(2, msg, sizeof(msg) - 1);
  (void)n;
  _exit(1);
}

int main(int argc, char **argv) {
  extern char **environ;
  cetcd_config_t cfg;
  config_defaults(&cfg);
  char err[1024] = "";
  int rc = config_parse(&cfg, argc, argv, environ, err, sizeof(err));
  if (rc < 0) {
    fprintf(stderr, "%s\n", err);
    int status = cfg.error_exit;
    config_free(&cfg);
    return status;
  }
  if (rc > 0) { /* --help or --version printed */
    config_free(&cfg);
    return 0;
  }
  int lvl = log_parse_level(cfg.log_level ? cfg.log_level : "info");
  if (lvl >= 0) log_min_level = lvl;
  for (size_t i = 0; i < cfg.n_warnings; i++) LOGW("msg=\"%s\"", cfg.warnings[i]);
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_sigbus;
  sigaction(SIGBUS, &sa, NULL);
  uv_loop_t *loop = uv_default_loop();
  api_ctx_t api; /* the api layer's state, plugged into the server below */
  server_layer_t layer;
  api_server_layer(&api, &layer);
  server_t srv;
  if (server_start(&srv, loop, &cfg, &layer)) {
    LOGE("msg=\"cetcd failed to start\"");
    config_free(&cfg);
    return 1;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  config_free(&cfg);
  return 0;
}
