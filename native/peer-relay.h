// The credential-checking relay of peer-binding.cc (see peer-relay.cc).
#pragma once
#include <napi.h>

#include <cstdint>

namespace peerbinding {

// Shared helpers of peer-binding.cc: a JS Error with errno, and an integer argument reader.
Napi::Value Throw(Napi::Env env, const char* what, int err);
bool IntArg(const Napi::CallbackInfo& info, size_t i, int64_t* out);

// startRelay(fd, pid, onEvent) -> { fd, close() }: see peer-relay.cc.
Napi::Value StartRelay(const Napi::CallbackInfo& info);

// Registers this file's functions on the addon's exports (called from peercred.cc's Init).
void Init(Napi::Env env, Napi::Object exports);

}  // namespace peerbinding
