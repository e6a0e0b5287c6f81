// LD_PRELOAD object for the connection-binding tests: loaded into the real /usr/bin/sleep, its
// constructor optionally wipes LD_PRELOAD from its initial environment first (PRELOAD_SCRUB), then
// connects to the Workload API (so the kernel records sleep as the connector), optionally
// sends the request bytes itself (PRELOAD_REQUEST), hands the socket to another process over
// SCM_RIGHTS (PRELOAD_DROP), and lets sleep run on, holding the socket.
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

extern char** environ;

static int connect_to(const char* path) {
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strncpy(addr.sun_path, path, sizeof(addr.sun_path) - 1);
  if (s < 0 || connect(s, (struct sockaddr*)&addr, sizeof(addr)) != 0) return -1;
  return s;
}

__attribute__((constructor)) static void take_over(void) {
  const char* agent = getenv("PRELOAD_AGENT");
  const char* drop = getenv("PRELOAD_DROP");
  const char* request = getenv("PRELOAD_REQUEST");
  if (!agent || !drop) return;
  if (getenv("PRELOAD_SCRUB")) {
    for (char** e = environ; *e; e++) {
      if (strncmp(*e, "LD_PRELOAD=", 11) == 0) memset(*e, 0, strlen(*e));
    }
  }
  int s = connect_to(agent);
  if (s < 0) return;
  if (request) {
    char buf[4096];
    int f = open(request, O_RDONLY);
    ssize_t n = f < 0 ? -1 : read(f, buf, sizeof(buf));
    if (n > 0 && write(s, buf, (size_t)n) != n) return;
    if (f >= 0) close(f);
  }
  int d = connect_to(drop);
  if (d < 0) return;
  char byte = 'x';
  char control[CMSG_SPACE(sizeof(int))];
  memset(control, 0, sizeof(control));
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control)};
  struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &s, sizeof(s));
  sendmsg(d, &msg, 0);
  close(d);
}
