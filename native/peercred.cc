// Peer credentials of a Unix-domain socket and pidfd helpers, for race-free peer attestation.
// Linux only. Built by node-gyp from the root binding.gyp; C++ exceptions are off, so every
// failure throws a JS Error (code = errno name, errno = positive errno, syscall) and returns.
#include <napi.h>

#include "sock-diag.h"

#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "peer-relay.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace {

const char* ErrnoName(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ERANGE: return "ERANGE";
    case ENOSYS: return "ENOSYS";
    case ENODATA: return "ENODATA";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOTCONN: return "ENOTCONN";
    default: return "EUNKNOWN";
  }
}

// Throws a JS Error shaped like Node's system errors and returns undefined for the caller to return.
Napi::Value ThrowErrno(Napi::Env env, const char* syscall, int err) {
  std::string message = std::string(syscall) + " failed: " + ErrnoName(err) + " (errno " +
                        std::to_string(err) + ")";
  Napi::Error error = Napi::Error::New(env, message);
  error.Value().Set("code", Napi::String::New(env, ErrnoName(err)));
  error.Value().Set("errno", Napi::Number::New(env, err));
  error.Value().Set("syscall", Napi::String::New(env, syscall));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

// Reads argument 0 as a non-negative int32 (an fd or a pid); throws a TypeError otherwise.
bool ReadIntArg(const Napi::CallbackInfo& info, const char* what, int32_t* out) {
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(info.Env(), std::string(what) + " must be a number")
        .ThrowAsJavaScriptException();
    return false;
  }
  double value = info[0].As<Napi::Number>().DoubleValue();
  if (!(value >= 0 && value <= INT32_MAX) || value != static_cast<double>(static_cast<int32_t>(value))) {
    Napi::TypeError::New(info.Env(), std::string(what) + " must be a non-negative int32")
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<int32_t>(value);
  return true;
}

// getPeerCred(fd) -> { pid, uid, gid } as of the peer's connect() (SO_PEERCRED).
Napi::Value GetPeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ReadIntArg(info, "fd", &fd)) return env.Undefined();
  struct ucred cred = {};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return ThrowErrno(env, "getsockopt(SO_PEERCRED)", errno);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("pid", Napi::Number::New(env, cred.pid));
  result.Set("uid", Napi::Number::New(env, cred.uid));
  result.Set("gid", Napi::Number::New(env, cred.gid));
  return result;
}

// getPeerGroups(fd) -> number[]: the peer's supplementary groups at connect() (SO_PEERGROUPS).
// On ERANGE the kernel reports the size it needs in len; grow the buffer and retry.
Napi::Value GetPeerGroups(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ReadIntArg(info, "fd", &fd)) return env.Undefined();
  std::vector<gid_t> groups(32);
  for (int attempt = 0; attempt < 8; attempt++) {
    socklen_t len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
      size_t count = len / sizeof(gid_t);
      Napi::Array result = Napi::Array::New(env, count);
      for (size_t i = 0; i < count; i++) {
        result.Set(static_cast<uint32_t>(i), Napi::Number::New(env, groups[i]));
      }
      return result;
    }
    if (errno != ERANGE) return ThrowErrno(env, "getsockopt(SO_PEERGROUPS)", errno);
    size_t needed = len / sizeof(gid_t);
    groups.resize(needed > groups.size() ? needed : groups.size() * 2);
  }
  return ThrowErrno(env, "getsockopt(SO_PEERGROUPS)", ERANGE);
}

// getPeerPidfd(fd) -> pidfd of the peer that connect()ed (SO_PEERPIDFD, Linux >= 6.5, O_CLOEXEC).
// Older kernels fail with ENOPROTOOPT so the caller can fall back to pidfdOpen.
Napi::Value GetPeerPidfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ReadIntArg(info, "fd", &fd)) return env.Undefined();
  int pidfd = -1;
  socklen_t len = sizeof(pidfd);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) != 0) {
    return ThrowErrno(env, "getsockopt(SO_PEERPIDFD)", errno);
  }
  return Napi::Number::New(env, pidfd);
}

// pidfdOpen(pid) -> pidfd (always O_CLOEXEC). Whoever holds the pid *now*: racy by nature.
Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t pid;
  if (!ReadIntArg(info, "pid", &pid)) return env.Undefined();
  long pidfd = syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0u);
  if (pidfd < 0) return ThrowErrno(env, "pidfd_open", errno);
  return Napi::Number::New(env, static_cast<double>(pidfd));
}

// pidfdIsAlive(pidfd) -> boolean: signal 0 through the pidfd. ESRCH: the process has exited (and,
// since node reaps its children, its pid may be reused). EPERM: it exists but is not ours to signal.
// A zombie counts as alive: its pid cannot be reused until it is reaped.
Napi::Value PidfdIsAlive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t pidfd;
  if (!ReadIntArg(info, "pidfd", &pidfd)) return env.Undefined();
  if (syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0u) == 0) return Napi::Boolean::New(env, true);
  if (errno == ESRCH) return Napi::Boolean::New(env, false);
  if (errno == EPERM) return Napi::Boolean::New(env, true);
  return ThrowErrno(env, "pidfd_send_signal", errno);
}

// closeFd(fd): close(2). EINTR still releases the fd on Linux, so it is not an error.
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ReadIntArg(info, "fd", &fd)) return env.Undefined();
  if (close(fd) != 0 && errno != EINTR) return ThrowErrno(env, "close", errno);
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("getPeerCred", Napi::Function::New(env, GetPeerCred, "getPeerCred"));
  exports.Set("getPeerGroups", Napi::Function::New(env, GetPeerGroups, "getPeerGroups"));
  exports.Set("getPeerPidfd", Napi::Function::New(env, GetPeerPidfd, "getPeerPidfd"));
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
  exports.Set("pidfdIsAlive", Napi::Function::New(env, PidfdIsAlive, "pidfdIsAlive"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  RegisterSockDiag(env, exports);
  peerbinding::Init(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(peercred, Init)
