// A relay between an accepted Unix-socket connection and a socketpair whose other end Node reads
// as an ordinary net.Socket (so http2 keeps its native read path). Every read from the connection
// is a recvmsg with SO_PASSCRED set: the kernel stamps each message with its sender's pid, and never
// merges the bytes of two senders into one read. Bytes from any pid but the connector's are never
// forwarded: the relay closes both ends and reports 'foreign'. Runs on the main loop (uv_poll),
// non-blocking both ways, with backpressure: a side whose bytes cannot all be written stops being
// read until they are.
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <string>

#include "peer-relay.h"

namespace peerbinding {
namespace {

constexpr size_t kChunk = 64 * 1024;
constexpr int kReadsPerWakeup = 8;

class Relay;
struct Slot {
  Relay* relay;
};

class Relay {
 public:
  Relay(Napi::Env env, int real, int pair, pid_t pid, Napi::Function cb)
      : env_(env), real_(real), pair_(pair), pid_(pid), cb_(Napi::Persistent(cb)) {
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    uv_poll_init(loop, &realPoll_, real_);
    uv_poll_init(loop, &pairPoll_, pair_);
    realPoll_.data = this;
    pairPoll_.data = this;
  }

  Slot* slot = nullptr;

  void Start() { Update(); }

  // Stops both polls and closes both fds once libuv has let go of them; idempotent.
  void Close() {
    if (closed_) return;
    closed_ = true;
    if (slot) slot->relay = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&realPoll_), OnClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&pairPoll_), OnClosed);
  }

 private:
  static void OnClosed(uv_handle_t* h) {
    auto* self = static_cast<Relay*>(h->data);
    if (++self->handlesClosed_ < 2) return;
    close(self->real_);
    close(self->pair_);
    delete self;
  }

  static void OnReal(uv_poll_t* h, int status, int events) {
    auto* self = static_cast<Relay*>(h->data);
    if (status < 0) return self->Fail(-status);
    if (events & UV_WRITABLE) self->Flush(self->real_, &self->toReal_);
    if (!self->closed_ && (events & (UV_READABLE | UV_DISCONNECT))) self->ReadReal();
    if (!self->closed_) self->Update();
  }

  static void OnPair(uv_poll_t* h, int status, int events) {
    auto* self = static_cast<Relay*>(h->data);
    if (status < 0) return self->Fail(-status);
    if (events & UV_WRITABLE) self->Flush(self->pair_, &self->toPair_);
    if (!self->closed_ && (events & (UV_READABLE | UV_DISCONNECT))) self->ReadPair();
    if (!self->closed_) self->Update();
  }

  // Writes what it can of `pending` to `fd`, keeping the rest.
  void Flush(int fd, std::string* pending) {
    if (pending->empty() || closed_) return;
    ssize_t w = send(fd, pending->data(), pending->size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno != EAGAIN && errno != EINTR) Fail(errno);
      return;
    }
    pending->erase(0, static_cast<size_t>(w));
    if (pending->empty()) ShutdownIfDone();
  }

  // Writes `n` bytes to `fd`; what does not fit now goes to `pending`.
  void Forward(int fd, const char* data, size_t n, std::string* pending) {
    ssize_t w = send(fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno != EAGAIN && errno != EINTR) return Fail(errno);
      w = 0;
    }
    if (static_cast<size_t>(w) < n) pending->assign(data + w, n - static_cast<size_t>(w));
  }

  void ReadReal() {
    for (int i = 0; i < kReadsPerWakeup && toPair_.empty() && !realEof_ && !closed_; i++) {
      alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(16 * sizeof(int))];
      struct iovec iov = {buf_, kChunk};
      struct msghdr msg = {};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      ssize_t n = recvmsg(real_, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) Fail(errno);
        return;
      }
      // At the end of stream the kernel still attaches credentials, empty ones (pid 0).
      pid_t sender = SenderOf(&msg);
      if (n == 0) {
        realEof_ = true;
        ShutdownIfDone();
        return;
      }
      if (sender != pid_) return Foreign(sender < 0 ? 0 : sender);
      Forward(pair_, buf_, static_cast<size_t>(n), &toPair_);
      // Short of a full buffer: the queue was most likely drained, and polling is level-triggered,
      // so rather than a read that only says EAGAIN, wait for the next wakeup.
      if (static_cast<size_t>(n) < kChunk && !(msg.msg_flags & MSG_CTRUNC)) return;
    }
  }

  void ReadPair() {
    for (int i = 0; i < kReadsPerWakeup && toReal_.empty() && !pairEof_ && !closed_; i++) {
      ssize_t n = recv(pair_, buf_, kChunk, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) Fail(errno);
        return;
      }
      if (n == 0) {
        pairEof_ = true;
        ShutdownIfDone();
        return;
      }
      Forward(real_, buf_, static_cast<size_t>(n), &toReal_);
      if (static_cast<size_t>(n) < kChunk) return;  // most likely drained (see ReadReal)
    }
  }

  // The pid in the message's SCM_CREDENTIALS (-1 when absent); closes any fds passed along.
  static pid_t SenderOf(struct msghdr* msg) {
    pid_t sender = -1;
    for (struct cmsghdr* c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
      if (c->cmsg_level != SOL_SOCKET) continue;
      if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
        struct ucred cred;
        memcpy(&cred, CMSG_DATA(c), sizeof(cred));
        sender = cred.pid;
      } else if (c->cmsg_type == SCM_RIGHTS) {
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t k = 0; k < count; k++) {
          int fd;
          memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
          close(fd);
        }
      }
    }
    return sender;
  }

  // Passes the caller's end of stream on to Node once everything before it was delivered. Node's
  // end of stream means it is done with the connection (it closed or destroyed its socket): once
  // what it wrote before has reached the caller, the relay ends.
  void ShutdownIfDone() {
    if (realEof_ && toPair_.empty() && !pairShut_) {
      pairShut_ = true;
      shutdown(pair_, SHUT_WR);
    }
    if (pairEof_ && toReal_.empty()) {
      shutdown(real_, SHUT_WR);
      End("end", 0);
    }
  }

  void Update() {
    int realEvents = (!realEof_ && toPair_.empty() ? UV_READABLE : 0) | (toReal_.empty() ? 0 : UV_WRITABLE);
    int pairEvents = (!pairEof_ && toReal_.empty() ? UV_READABLE : 0) | (toPair_.empty() ? 0 : UV_WRITABLE);
    Poll(&realPoll_, &realEvents_, realEvents, OnReal);
    Poll(&pairPoll_, &pairEvents_, pairEvents, OnPair);
  }

  // uv_poll_start re-registers the fd with epoll on every call: only call it on a change.
  static void Poll(uv_poll_t* h, int* current, int events, uv_poll_cb cb) {
    if (events == *current) return;
    *current = events;
    if (events == 0) {
      uv_poll_stop(h);
    } else {
      uv_poll_start(h, events, cb);
    }
  }

  void Fail(int err) { End("error", err); }
  void Foreign(pid_t sender) { End("foreign", sender); }

  // Closes, then tells JS why (which may call close() again: harmless).
  void End(const char* kind, double value) {
    if (closed_) return;
    Close();
    Napi::HandleScope scope(env_);
    Napi::Function cb = cb_.Value();
    cb.MakeCallback(env_.Global(), {Napi::String::New(env_, kind), Napi::Number::New(env_, value)});
    if (env_.IsExceptionPending()) {
      Napi::Error e = env_.GetAndClearPendingException();
      napi_fatal_exception(env_, e.Value());
    }
  }

  Napi::Env env_;
  int real_;
  int pair_;
  pid_t pid_;
  Napi::FunctionReference cb_;
  uv_poll_t realPoll_;
  uv_poll_t pairPoll_;
  std::string toPair_;
  std::string toReal_;
  bool realEof_ = false;
  bool pairEof_ = false;
  bool pairShut_ = false;
  bool closed_ = false;
  int handlesClosed_ = 0;
  int realEvents_ = 0;
  int pairEvents_ = 0;
  char buf_[kChunk];
};

Napi::Value CloseRelay(const Napi::CallbackInfo& info) {
  auto* slot = static_cast<Slot*>(info.Data());
  if (slot->relay) slot->relay->Close();
  return info.Env().Undefined();
}

}  // namespace

// startRelay(fd, pid, onEvent(kind, value)) -> { fd, close() }. Reads the connection `fd` (a dup
// is taken: the caller keeps its own) with SO_PASSCRED on; `fd` of the result is the end Node should
// read and write as the connection. onEvent once, when the relay stops: 'end' (Node closed its end
// and all it wrote was delivered), 'error' (errno), or 'foreign' (the pid that sent bytes; 0 when
// unknown). close() stops it at once, dropping what was not delivered yet.
Napi::Value StartRelay(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, pid;
  if (!IntArg(info, 0, &fd) || !IntArg(info, 1, &pid)) return env.Undefined();
  if (info.Length() < 3 || !info[2].IsFunction()) {
    Napi::TypeError::New(env, "onEvent must be a function").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int on = 1;
  if (setsockopt(static_cast<int>(fd), SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) != 0)
    return Throw(env, "setsockopt(SO_PASSCRED)", errno);
  int real = fcntl(static_cast<int>(fd), F_DUPFD_CLOEXEC, 3);
  if (real < 0) return Throw(env, "fcntl(F_DUPFD_CLOEXEC)", errno);
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) != 0) {
    int err = errno;
    close(real);
    return Throw(env, "socketpair", err);
  }
  fcntl(real, F_SETFL, fcntl(real, F_GETFL) | O_NONBLOCK);
  auto* relay = new Relay(env, real, pair[1], static_cast<pid_t>(pid), info[2].As<Napi::Function>());
  auto* slot = new Slot{relay};
  relay->slot = slot;
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, pair[0]));
  out.Set("close", Napi::Function::New(env, CloseRelay, "close", slot));
  // The slot lives as long as the result object; a relay still running outlives it.
  napi_add_finalizer(
      env, out, slot,
      [](napi_env, void* data, void*) {
        auto* s = static_cast<Slot*>(data);
        if (s->relay) s->relay->slot = nullptr;
        delete s;
      },
      nullptr, nullptr);
  relay->Start();
  return out;
}

}  // namespace peerbinding
