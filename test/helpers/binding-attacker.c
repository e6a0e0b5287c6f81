// Attacker for the connection-binding tests (test/integration/connection-binding.test.ts): tries to
// get an SVID pinned to /usr/bin/sleep through a connection it made itself. Speaks gRPC as raw
// bytes: the request (HTTP/2 frames, made by the test) is read from a file; whatever comes back is
// written to the output file, so the test can look for the SVID in it.
//
//   fork-exec  <agent.sock> <request> <out> <inherit:0|1>  connect; fork a child that, once this
//              process runs sleep, sends the request and reads the answer; exec /usr/bin/sleep
//   write-exec <agent.sock> <request> <out> <inherit:0|1>  connect; send the request; fork a child
//              that reads the answer; exec /usr/bin/sleep at once
//   receive    <listen.sock> <request|-> <out>  accept one connection, take a socket passed over it
//              (SCM_RIGHTS), send the request on it unless '-', read the answer
//   direct     <agent.sock> <request> <out>     connect, send, read (the control: a legit caller)
//   reexec     <agent.sock> <request> <out> <preload.so>  connect (close-on-exec), then keep the
//              socket across exec and execute this same binary again, with LD_PRELOAD set, which
//              sends the request and reads the answer (mode `continue <fd> <request> <out>`)
//
// inherit=1 keeps the socket across exec (no close-on-exec), so sleep holds it as the connector.
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void die(const char* what) {
  perror(what);
  exit(2);
}

static int connect_to(const char* path, int inherit) {
  int s = socket(AF_UNIX, SOCK_STREAM | (inherit ? 0 : SOCK_CLOEXEC), 0);
  if (s < 0) die("socket");
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strncpy(addr.sun_path, path, sizeof(addr.sun_path) - 1);
  if (connect(s, (struct sockaddr*)&addr, sizeof(addr)) != 0) die("connect");
  return s;
}

static void send_file(int s, const char* path) {
  char buf[4096];
  int f = open(path, O_RDONLY);
  if (f < 0) die("open request");
  ssize_t n = read(f, buf, sizeof(buf));
  close(f);
  if (n <= 0) die("read request");
  // The agent may already have closed the connection (that is the point): the answer, empty,
  // is still written by read_answer, so the test reads a refusal rather than waiting for nothing.
  if (write(s, buf, (size_t)n) != n) perror("send request");
}

// Whether the frames in buf[*at..total) end the call on stream 1: its trailers or last DATA
// (END_STREAM), a RST_STREAM of it, or a GOAWAY. Advances *at past every whole frame.
static int call_ended(const unsigned char* buf, size_t total, size_t* at) {
  while (*at + 9 <= total) {
    const unsigned char* h = buf + *at;
    size_t len = ((size_t)h[0] << 16) | ((size_t)h[1] << 8) | h[2];
    unsigned type = h[3], flags = h[4];
    unsigned long stream = ((unsigned long)(h[5] & 0x7f) << 24) | ((unsigned long)h[6] << 16) |
                           ((unsigned long)h[7] << 8) | h[8];
    if (*at + 9 + len > total) return 0;
    *at += 9 + len;
    if (type == 0x7) return 1;
    if (stream == 1 && (type == 0x3 || ((type == 0x0 || type == 0x1) && (flags & 0x1)))) return 1;
  }
  return 0;
}

// Reads the answer until the call ends, EOF or 6 s of silence and writes it to `out` (also on
// error). The agent keeps an HTTP/2 connection open after answering, so waiting for EOF alone
// would cost the silence every time.
static void read_answer(int s, const char* out) {
  static unsigned char buf[1 << 20];
  size_t total = 0, at = 0;
  struct pollfd p = {.fd = s, .events = POLLIN};
  while (total < sizeof(buf) && poll(&p, 1, 6000) > 0) {
    ssize_t n = read(s, buf + total, sizeof(buf) - total);
    if (n <= 0) break;
    total += (size_t)n;
    if (call_ended(buf, total, &at)) break;
  }
  char tmp[4096];
  snprintf(tmp, sizeof(tmp), "%s.tmp", out);
  FILE* f = fopen(tmp, "w");
  if (!f) die("open out");
  fwrite(buf, 1, total, f);
  fclose(f);
  rename(tmp, out);
}

static void exec_sleep(void) {
  execl("/usr/bin/sleep", "sleep", "20", (char*)NULL);
  die("exec sleep");
}

// Waits (up to 5 s) until process `pid` runs /usr/bin/sleep.
static void await_sleep(pid_t pid) {
  char path[64], target[256];
  snprintf(path, sizeof(path), "/proc/%d/exe", pid);
  for (int i = 0; i < 500; i++) {
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n > 0) {
      target[n] = '\0';
      if (strcmp(target, "/usr/bin/sleep") == 0) return;
    }
    usleep(10000);
  }
}

static int receive_fd(const char* listen_path) {
  int l = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strncpy(addr.sun_path, listen_path, sizeof(addr.sun_path) - 1);
  unlink(listen_path);
  if (l < 0 || bind(l, (struct sockaddr*)&addr, sizeof(addr)) != 0 || listen(l, 1) != 0) die("listen");
  printf("listening\n");
  fflush(stdout);
  int c = accept(l, NULL, NULL);
  if (c < 0) die("accept");
  char byte;
  char control[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control)};
  if (recvmsg(c, &msg, 0) <= 0) die("recvmsg");
  struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  if (!cm || cm->cmsg_type != SCM_RIGHTS) die("no fd passed");
  int fd;
  memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
  return fd;
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: see the source\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);  // a write to a connection the agent closed fails with EPIPE instead
  const char* mode = argv[1];
  if (strcmp(mode, "receive") == 0) {
    int fd = receive_fd(argv[2]);
    if (strcmp(argv[3], "-") != 0) send_file(fd, argv[3]);
    read_answer(fd, argv[4]);
    return 0;
  }
  if (strcmp(mode, "continue") == 0) {
    int fd = atoi(argv[2]);
    send_file(fd, argv[3]);
    read_answer(fd, argv[4]);
    return 0;
  }
  if (strcmp(mode, "reexec") == 0 && argc > 5) {
    int s = connect_to(argv[2], 0);
    usleep(300000);  // let the agent attest this clean image first
    fcntl(s, F_SETFD, 0);
    char fd[16];
    snprintf(fd, sizeof(fd), "%d", s);
    setenv("LD_PRELOAD", argv[5], 1);
    execl("/proc/self/exe", argv[0], "continue", fd, argv[3], argv[4], (char*)NULL);
    die("re-exec");
  }
  if (strcmp(mode, "direct") == 0) {
    int s = connect_to(argv[2], 0);
    send_file(s, argv[3]);
    read_answer(s, argv[4]);
    return 0;
  }
  int inherit = argc > 5 && strcmp(argv[5], "1") == 0;
  int s = connect_to(argv[2], inherit);
  if (strcmp(mode, "write-exec") == 0) send_file(s, argv[3]);
  pid_t parent = getpid();
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    if (strcmp(mode, "fork-exec") == 0) {
      await_sleep(parent);
      send_file(s, argv[3]);
    }
    read_answer(s, argv[4]);
    return 0;
  }
  printf("%d\n", parent);
  fflush(stdout);
  exec_sleep();
  return 2;
}
