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

namespace cradle {

// An AsyncWorker that settles a Promise: Execute() runs on the thread pool and
// records a failure with Fail(); the Promise is rejected with an errno error,
// or resolved with Result().
class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void OnOK() override {
    if (err_ != 0) {
      deferred_.Reject(ErrnoError(Env(), err_, syscall_.c_str(), path_).Value());
    } else {
      deferred_.Resolve(Result(Env()));
    }
  }

 protected:
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }

  void Fail(int err, const char* syscall, const std::string& path) {
    err_ = err;
    syscall_ = syscall;
    path_ = path;
  }

  bool Failed() const { return err_ != 0; }

 private:
  Napi::Promise::Deferred deferred_;
  int err_ = 0;
  std::string syscall_;
  std::string path_;
};

// Queues the worker and hands its Promise back to JavaScript.
inline Napi::Value QueuePromise(PromiseWorker* worker) {
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace cradle
