/* cetcd: an etcd v3-compatible server. Parses etcd's flags, starts the server on a libuv
 * loop and runs until SIGTERM/SIGINT. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/log.h"
#include "server/config.h"
#include "server/server.h"

int main(int argc, char **argv) {
  extern char **environ;
  cetcd_config_t cfg;
  config_defaults(&cfg);
  char err[1024] = "";
  int rc = config_parse(&cfg, argc, argv, environ, err, sizeof(err));
  if (rc < 0) {
    fprintf(stderr, "%s\n", err);
    return 2;
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
  uv_loop_t *loop = uv_default_loop();
  server_t srv;
  if (server_start(&srv, loop, &cfg)) {
    LOGE("msg=\"cetcd failed to start\"");
    return 1;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  config_free(&cfg);
  return 0;
}
