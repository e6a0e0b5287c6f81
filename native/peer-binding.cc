// Binding a Unix-socket connection to the one process that made it (DESIGN §6.1): the peer end's
// socket inode (NETLINK_SOCK_DIAG), where the connecting process holds it, one cheap check of the
// process before every answer, and a relay that reads the connection with SCM_CREDENTIALS so that
// bytes from any other process are refused. Linux only; errors throw JS Errors (code = errno name).
#include <napi.h>
#include <uv.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "peer-relay.h"

namespace peerbinding {

Napi::Value Throw(Napi::Env env, const char* what, int err) {
  Napi::Error error = Napi::Error::New(env, std::string(what) + " failed: " + strerror(err));
  error.Value().Set("errno", Napi::Number::New(env, err));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

bool IntArg(const Napi::CallbackInfo& info, size_t i, int64_t* out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a number")
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = info[i].As<Napi::Number>().Int64Value();
  return true;
}

namespace {

// The inode of the socket at the other end of connected Unix socket `fd`, by an exact
// NETLINK_SOCK_DIAG lookup of our end's inode with UDIAG_SHOW_PEER; 0 when the kernel has none.
int PeerInode(int fd, uint32_t* peer) {
  struct stat st;
  if (fstat(fd, &st) != 0) return errno;
  int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return errno;
  struct {
    struct nlmsghdr nlh;
    struct unix_diag_req req;
  } msg = {};
  msg.nlh.nlmsg_len = sizeof(msg);
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST;
  msg.req.sdiag_family = AF_UNIX;
  msg.req.udiag_states = ~0u;
  msg.req.udiag_ino = static_cast<uint32_t>(st.st_ino);
  msg.req.udiag_show = UDIAG_SHOW_PEER;
  msg.req.udiag_cookie[0] = msg.req.udiag_cookie[1] = ~0u;
  struct sockaddr_nl kernel = {};
  kernel.nl_family = AF_NETLINK;
  if (sendto(nl, &msg, sizeof(msg), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) {
    int err = errno;
    close(nl);
    return err;
  }
  alignas(struct nlmsghdr) char buf[8192];
  ssize_t n = recv(nl, buf, sizeof(buf), 0);
  int err = n < 0 ? errno : 0;
  close(nl);
  if (n < 0) return err;
  *peer = 0;
  for (auto* h = reinterpret_cast<struct nlmsghdr*>(buf); NLMSG_OK(h, static_cast<size_t>(n));
       h = NLMSG_NEXT(h, n)) {
    if (h->nlmsg_type == NLMSG_ERROR) {
      auto* e = static_cast<struct nlmsgerr*>(NLMSG_DATA(h));
      return e->error ? -e->error : ENOENT;
    }
    if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
    auto* m = static_cast<struct unix_diag_msg*>(NLMSG_DATA(h));
    int len = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
    for (auto* a = reinterpret_cast<struct rtattr*>(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      if (a->rta_type == UNIX_DIAG_PEER) *peer = *static_cast<uint32_t*>(RTA_DATA(a));
    }
    return 0;
  }
  return ENOENT;
}

// Whether /proc/<pid>/fd/<fd> is the socket with inode `ino`.
bool FdIsSocket(int pid, int fd, uint32_t ino) {
  char path[64], target[64], want[40];
  snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
  ssize_t n = readlink(path, target, sizeof(target) - 1);
  if (n <= 0) return false;
  target[n] = '\0';
  snprintf(want, sizeof(want), "socket:[%u]", ino);
  return strcmp(target, want) == 0;
}

// Whether /proc/<pid>/fdinfo/<fd> says the descriptor is close-on-exec (O_CLOEXEC, octal 02000000).
bool FdIsCloexec(int pid, int fd) {
  char path[64], buf[512];
  snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
  int f = open(path, O_RDONLY | O_CLOEXEC);
  if (f < 0) return false;
  ssize_t n = read(f, buf, sizeof(buf) - 1);
  close(f);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* flags = strstr(buf, "flags:");
  if (!flags) return false;
  return (strtoul(flags + 6, nullptr, 8) & 02000000) != 0;
}

// Reads TracerPid from an open /proc/<pid>/status (pread from 0 makes procfs generate it afresh;
// the fd stays bound to the process it was opened for); -1 when unreadable (e.g. it exited).
long TracerPid(int statusFd) {
  char buf[4096];
  ssize_t n = pread(statusFd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char* line = strstr(buf, "\nTracerPid:");
  return line ? strtol(line + 11, nullptr, 10) : -1;
}

// peerSocketInode(fd) -> inode of the peer end of the connected Unix socket fd (0: none).
Napi::Value PeerSocketInode(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!IntArg(info, 0, &fd)) return info.Env().Undefined();
  uint32_t peer = 0;
  int err = PeerInode(static_cast<int>(fd), &peer);
  if (err) return Throw(info.Env(), "sock_diag(UDIAG_SHOW_PEER)", err);
  return Napi::Number::New(info.Env(), peer);
}

// A process may hold up to RLIMIT_NOFILE descriptors: the scan (on the event loop) stops after this
// many, so that one caller with a huge fd table cannot stall the agent; beyond it, not found.
constexpr int kMaxFdsScanned = 16384;

// findSocketFd(pid, ino, hintFd) -> { fd, cloexec } | null: where process `pid` holds socket `ino`;
// `hintFd` is tried first (one readlink); otherwise /proc/<pid>/fd is scanned (at most
// kMaxFdsScanned entries), preferring a close-on-exec descriptor (one that cannot have been
// inherited across an exec).
Napi::Value FindSocketFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t pid, ino, hint;
  if (!IntArg(info, 0, &pid) || !IntArg(info, 1, &ino) || !IntArg(info, 2, &hint)) return env.Undefined();
  int p = static_cast<int>(pid);
  uint32_t i = static_cast<uint32_t>(ino);
  int found = -1;
  bool cloexec = false;
  if (hint >= 0 && FdIsSocket(p, static_cast<int>(hint), i)) {
    found = static_cast<int>(hint);
    cloexec = FdIsCloexec(p, found);
  }
  if (!cloexec) {
    char dirPath[48];
    snprintf(dirPath, sizeof(dirPath), "/proc/%d/fd", p);
    DIR* dir = opendir(dirPath);
    if (!dir) return Throw(env, "opendir(/proc/<pid>/fd)", errno);
    int scanned = 0;
    while (struct dirent* d = readdir(dir)) {
      if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
      if (++scanned > kMaxFdsScanned) break;
      int fd = atoi(d->d_name);
      if (fd == found || !FdIsSocket(p, fd, i)) continue;
      bool ce = FdIsCloexec(p, fd);
      if (found < 0 || ce) {
        found = fd;
        cloexec = ce;
      }
      if (ce) break;
    }
    closedir(dir);
  }
  if (found < 0) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, found));
  out.Set("cloexec", Napi::Boolean::New(env, cloexec));
  return out;
}

// checkPeer(statusFd, pid, exeDev, exeIno, fd, sockIno, environFd) -> 0 fine, 2 executed (another
// file, or any exec at all when `environFd` >= 0), 3 traced (or its status unreadable), 4 no longer
// holds the socket at `fd` (the caller may rescan). `statusFd` and `environFd` are the process's
// /proc/<pid>/status and /proc/<pid>/environ, opened at accept: an environ fd reads from the memory
// of the image it was opened on, and reads nothing once that image was replaced by an exec (pass -1
// when it read nothing at accept either, i.e. an empty environment). The caller checks the pidfd
// after: only a process still alive then proves these reads were its own.
Napi::Value CheckPeer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t a[7];
  for (size_t i = 0; i < 7; i++)
    if (!IntArg(info, i, &a[i])) return env.Undefined();
  int pid = static_cast<int>(a[1]);
  char byte;
  if (a[6] >= 0 && pread(static_cast<int>(a[6]), &byte, 1, 0) != 1) return Napi::Number::New(env, 2);
  char path[48];
  snprintf(path, sizeof(path), "/proc/%d/exe", pid);
  struct stat st;
  if (stat(path, &st) != 0) return Napi::Number::New(env, 2);
  if (static_cast<int64_t>(st.st_dev) != a[2] || static_cast<int64_t>(st.st_ino) != a[3])
    return Napi::Number::New(env, 2);
  if (TracerPid(static_cast<int>(a[0])) != 0) return Napi::Number::New(env, 3);
  if (!FdIsSocket(pid, static_cast<int>(a[4]), static_cast<uint32_t>(a[5]))) return Napi::Number::New(env, 4);
  return Napi::Number::New(env, 0);
}

// setPassCred(fd): SO_PASSCRED on a socket (a listening one passes it to the sockets it accepts).
Napi::Value SetPassCred(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!IntArg(info, 0, &fd)) return info.Env().Undefined();
  int on = 1;
  if (setsockopt(static_cast<int>(fd), SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) != 0)
    return Throw(info.Env(), "setsockopt(SO_PASSCRED)", errno);
  return info.Env().Undefined();
}

}  // namespace

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("peerSocketInode", Napi::Function::New(env, PeerSocketInode, "peerSocketInode"));
  exports.Set("findSocketFd", Napi::Function::New(env, FindSocketFd, "findSocketFd"));
  exports.Set("checkPeer", Napi::Function::New(env, CheckPeer, "checkPeer"));
  exports.Set("setPassCred", Napi::Function::New(env, SetPassCred, "setPassCred"));
  exports.Set("startRelay", Napi::Function::New(env, StartRelay, "startRelay"));
}

}  // namespace peerbinding
