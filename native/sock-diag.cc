// The owner uid of a local TCP socket, from the kernel's socket diagnostics (NETLINK_SOCK_DIAG,
// inet_diag): how the gateway tells which local user is on the other end of a loopback connection
// without trusting its address. Linux only; C++ exceptions are off, so failures throw a JS Error
// (code = errno name) and return.
#include "sock-diag.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace {

Napi::Value Fail(Napi::Env env, const char* what, int err) {
  std::string message = std::string(what) + " failed: " + strerror(err);
  Napi::Error error = Napi::Error::New(env, message);
  error.Value().Set("code", Napi::String::New(env, err == ENOENT ? "ENOENT" : "ESOCKDIAG"));
  error.Value().Set("errno", Napi::Number::New(env, err));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

// One end of a TCP connection, as the caller names it.
struct Endpoint {
  unsigned char addr[16];
  uint16_t port;
};

bool ReadEndpoint(const Napi::CallbackInfo& info, size_t at, int family, Endpoint* out) {
  if (!info[at].IsString() || !info[at + 1].IsNumber()) return false;
  std::string text = info[at].As<Napi::String>().Utf8Value();
  double port = info[at + 1].As<Napi::Number>().DoubleValue();
  if (!(port >= 1 && port <= 65535) || port != static_cast<double>(static_cast<uint16_t>(port))) return false;
  std::memset(out->addr, 0, sizeof(out->addr));
  out->port = static_cast<uint16_t>(port);
  return inet_pton(family, text.c_str(), out->addr) == 1;
}

// Sends one exact-match SOCK_DIAG_BY_FAMILY request; returns the owner uid, -ENOENT when no such
// socket exists, or another -errno.
int64_t QueryUid(int family, const Endpoint& src, const Endpoint& dst) {
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return -errno;
  struct {
    struct nlmsghdr header;
    struct inet_diag_req_v2 request;
  } message;
  std::memset(&message, 0, sizeof(message));
  message.header.nlmsg_len = sizeof(message);
  message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  message.header.nlmsg_flags = NLM_F_REQUEST;
  message.header.nlmsg_seq = 1;
  message.request.sdiag_family = static_cast<uint8_t>(family);
  message.request.sdiag_protocol = IPPROTO_TCP;
  message.request.idiag_states = ~0U;
  message.request.id.idiag_sport = htons(src.port);
  message.request.id.idiag_dport = htons(dst.port);
  std::memcpy(message.request.id.idiag_src, src.addr, family == AF_INET ? 4 : 16);
  std::memcpy(message.request.id.idiag_dst, dst.addr, family == AF_INET ? 4 : 16);
  message.request.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  message.request.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  struct sockaddr_nl kernel;
  std::memset(&kernel, 0, sizeof(kernel));
  kernel.nl_family = AF_NETLINK;
  int64_t result = -EPROTO;
  if (sendto(fd, &message, sizeof(message), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) {
    result = -errno;
  } else {
    alignas(struct nlmsghdr) char buffer[8192];
    ssize_t length = recv(fd, buffer, sizeof(buffer), 0);
    if (length < 0) result = -errno;
    auto* header = reinterpret_cast<struct nlmsghdr*>(buffer);
    for (int len = static_cast<int>(length); length > 0 && NLMSG_OK(header, len); header = NLMSG_NEXT(header, len)) {
      if (header->nlmsg_type == NLMSG_ERROR) {
        auto* error = static_cast<struct nlmsgerr*>(NLMSG_DATA(header));
        result = error->error < 0 ? error->error : -EPROTO;
        break;
      }
      if (header->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
          header->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
        result = static_cast<const struct inet_diag_msg*>(NLMSG_DATA(header))->idiag_uid;
        break;
      }
    }
  }
  close(fd);
  return result;
}

// tcpSocketUid(family, localAddr, localPort, remoteAddr, remotePort) -> uid | null: the uid that
// owns the TCP socket whose own end is local* and whose other end is remote* (family 4 or 6).
// null when no such socket exists (it closed meanwhile, or it is in another network namespace).
Napi::Value TcpSocketUid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "tcpSocketUid(family, localAddr, localPort, remoteAddr, remotePort)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int version = info[0].As<Napi::Number>().Int32Value();
  int family = version == 4 ? AF_INET : version == 6 ? AF_INET6 : -1;
  Endpoint src, dst;
  if (family < 0 || !ReadEndpoint(info, 1, family, &src) || !ReadEndpoint(info, 3, family, &dst)) {
    Napi::TypeError::New(env, "tcpSocketUid: a family of 4 or 6, addresses of it and ports 1-65535")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int64_t uid = QueryUid(family, src, dst);
  if (uid == -ENOENT) return env.Null();
  if (uid < 0) return Fail(env, "SOCK_DIAG_BY_FAMILY", static_cast<int>(-uid));
  return Napi::Number::New(env, static_cast<double>(uid));
}

}  // namespace

void RegisterSockDiag(Napi::Env env, Napi::Object exports) {
  exports.Set("tcpSocketUid", Napi::Function::New(env, TcpSocketUid, "tcpSocketUid"));
}
