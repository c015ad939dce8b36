#include <napi.h>

#include "exports.h"

namespace cradle {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("constants", Napi::Object::New(env));
  // Lets the TypeScript loader refuse an addon built from other sources.
  exports.Set("abiVersion", Napi::Number::New(env, 10));
  InitLock(env, exports);
  InitMount(env, exports);
  InitNamespaces(env, exports);
  InitPodInit(env, exports);
  InitFiles(env, exports);
  InitSockets(env, exports);
  InitNotify(env, exports);
  InitSpawn(env, exports);
  InitReads(env, exports);
  InitMemory(env, exports);
  InitGunzip(env, exports);
  return exports;
}

}  // namespace cradle

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return cradle::Init(env, exports); }

NODE_API_MODULE(cradle_native, InitModule)
