/* cetcdctl password input: the terminal prompt (speakeasy's, echo off) and the stdin word
 * that `--interactive=false` reads. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "ctl/ctl.h"

/* Reads one line from fd into a malloc'd string (newline dropped, at most 4 KiB). */
static char *read_line(int fd) {
  char buf[4096];
  size_t n = 0;
  for (;;) {
    char ch;
    ssize_t r = read(fd, &ch, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || ch == '\n' || n + 1 >= sizeof buf) break;
    if (ch != '\r') buf[n++] = ch;
  }
  buf[n] = 0;
  return strdup(buf);
}

char *ctl_ask_password(const char *prompt, char *err, size_t errlen) {
  int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "%s", strerror(errno));
    return NULL;
  }
  struct termios old, quiet;
  bool tty = tcgetattr(fd, &old) == 0;
  if (tty) {
    quiet = old;
    quiet.c_lflag &= (tcflag_t)~ECHO;
    tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  fputs(prompt, stdout);
  fflush(stdout);
  char *pw = read_line(fd);
  if (tty) tcsetattr(fd, TCSAFLUSH, &old);
  fputs("\n", stdout);
  close(fd);
  if (!pw) snprintf(err, errlen, "out of memory");
  return pw;
}

char *ctl_scan_word(void) {
  char buf[4096];
  size_t n = 0;
  int ch;
  while ((ch = getchar()) != EOF && isspace(ch)) {
  }
  while (ch != EOF && !isspace(ch) && n + 1 < sizeof buf) {
    buf[n++] = (char)ch;
    ch = getchar();
  }
  buf[n] = 0;
  char *s = strdup(buf);
  if (!s) abort();
  return s;
}
