// Socket diagnostics (NETLINK_SOCK_DIAG) for the peercred addon: which uid owns a local TCP socket.
#ifndef TESSERA_SOCK_DIAG_H_
#define TESSERA_SOCK_DIAG_H_

#include <napi.h>

// Adds tcpSocketUid to the addon's exports; called once from the addon's Init.
void RegisterSockDiag(Napi::Env env, Napi::Object exports);

#endif  // TESSERA_SOCK_DIAG_H_
