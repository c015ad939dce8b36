#pragma once
#include <napi.h>

#include <initializer_list>

namespace cradle {

struct Constant {
  const char* name;
  double value;
};

// Adds kernel constants to the addon's `constants` object, for TypeScript to pass back as flags.
inline void SetConstants(Napi::Object exports, std::initializer_list<Constant> constants) {
  Napi::Object c = exports.Get("constants").As<Napi::Object>();
  for (const Constant& k : constants) c.Set(k.name, k.value);
}

void InitLock(Napi::Env env, Napi::Object exports);
void InitMount(Napi::Env env, Napi::Object exports);
void InitNamespaces(Napi::Env env, Napi::Object exports);
void InitPodInit(Napi::Env env, Napi::Object exports);
void InitFiles(Napi::Env env, Napi::Object exports);
void InitSockets(Napi::Env env, Napi::Object exports);
void InitNotify(Napi::Env env, Napi::Object exports);
void InitSpawn(Napi::Env env, Napi::Object exports);
void InitReads(Napi::Env env, Napi::Object exports);
void InitMemory(Napi::Env env, Napi::Object exports);
void InitGunzip(Napi::Env env, Napi::Object exports);

}  // namespace cradle
