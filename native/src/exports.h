#pragma once
#include <napi.h>

namespace cradle {

void InitLock(Napi::Env env, Napi::Object exports);
void InitMount(Napi::Env env, Napi::Object exports);
void InitNamespaces(Napi::Env env, Napi::Object exports);
void InitPodInit(Napi::Env env, Napi::Object exports);
void InitFiles(Napi::Env env, Napi::Object exports);
void InitSockets(Napi::Env env, Napi::Object exports);

}  // namespace cradle
