#include <sys/file.h>
#include <cerrno>

#include "errno_error.h"
#include "exports.h"

namespace cradle {

// flock(fd, operation): Node has no advisory file locks, and the daemon needs
// one to refuse a second instance on the same state directories.
static Napi::Value Flock(const Napi::CallbackInfo& info) {
  int64_t fd = 0;
  int64_t op = 0;
  if (!NumberArg(info, 0, "fd", &fd) || !NumberArg(info, 1, "operation", &op)) return info.Env().Undefined();
  int rc;
  do {
    rc = flock(static_cast<int>(fd), static_cast<int>(op));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    ErrnoError(info.Env(), errno, "flock", "").ThrowAsJavaScriptException();
  }
  return info.Env().Undefined();
}

void InitLock(Napi::Env env, Napi::Object exports) {
  exports.Set("flock", Napi::Function::New(env, Flock, "flock"));
  SetConstants(exports, {
      {"LOCK_SH", static_cast<double>(LOCK_SH)},
      {"LOCK_EX", static_cast<double>(LOCK_EX)},
      {"LOCK_NB", static_cast<double>(LOCK_NB)},
      {"LOCK_UN", static_cast<double>(LOCK_UN)},
  });
}

}  // namespace cradle
