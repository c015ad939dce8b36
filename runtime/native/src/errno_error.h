#pragma once
#include <napi.h>
#include <string>

namespace cradle {

// A JS Error shaped like Node's own system errors (code, errno, syscall,
// path), so TypeScript callers handle addon and fs failures the same way.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& path);

// Reads a required string argument; on a wrong type throws a TypeError and
// returns false.
bool StringArg(const Napi::CallbackInfo& info, size_t index, const char* name, std::string* out);
bool NumberArg(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t* out);

}  // namespace cradle
