#include <malloc.h>

#include "exports.h"

namespace cradle {

// mallocTrim(): hands glibc's free heap pages back to the kernel. A pull's
// unpack workers free tens of MiB in the daemon's malloc arenas when they
// end; glibc keeps such pages (they sit between pages in use, where its
// automatic trimming of the heap's top cannot reach them), and they would
// count in the daemon's RSS for good. True when memory was released.
static Napi::Value MallocTrim(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), malloc_trim(0) == 1);
}

void InitMemory(Napi::Env env, Napi::Object exports) { exports.Set("mallocTrim", Napi::Function::New(env, MallocTrim, "mallocTrim")); }

}  // namespace cradle
