/* Durable directory creation and directory fsync. */
#include "base/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int rc;
  do rc = fsync(fd);
  while (rc < 0 && errno == EINTR);
  rc = rc < 0 ? -errno : 0;
  close(fd);
  return rc;
}

/* Makes the creation of path (just made by mkdir) durable by syncing its parent. */
static int sync_parent(char *path) {
  char *slash = strrchr(path, '/');
  if (!slash) return fs_sync_dir(".");
  if (slash == path) return fs_sync_dir("/");
  *slash = 0;
  int rc = fs_sync_dir(path);
  *slash = '/';
  return rc;
}

int fs_mkdir_durable(const char *dir) {
  struct stat st;
  if (stat(dir, &st) == 0) return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
  char path[PATH_MAX];
  if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) return -ENAMETOOLONG;
  for (char *p = path + 1;; p++) {
    if (*p != '/' && *p) continue;
    char c = *p;
    *p = 0;
    if (mkdir(path, 0700) == 0) {
      int rc = sync_parent(path);
      if (rc) return rc;
    } else if (errno != EEXIST) {
      return -errno;
    }
    *p = c;
    if (!c) break;
  }
  return 0;
}
