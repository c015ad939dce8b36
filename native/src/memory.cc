#include <malloc.h>

#include "exports.h"

namespace cradle {

// mallocTrim(): hands glibc's free heap pages back to the kernel. glibc
// returns only the free top of a heap by itself; pages freed between pages
// still in use (what worker threads and start-up leave behind) stay in the
// daemon's RSS for good otherwise. True when memory was released.
static Napi::Value MallocTrim(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), malloc_trim(0) == 1);
}

void InitMemory(Napi::Env env, Napi::Object exports) { exports.Set("mallocTrim", Napi::Function::New(env, MallocTrim, "mallocTrim")); }

}  // namespace cradle
