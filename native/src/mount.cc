#include <sys/mount.h>
#include <cerrno>
#include <string>

#include "errno_error.h"
#include "exports.h"

namespace cradle {

// mount(2) and umount2(2) run on the libuv thread pool: an overlay or bind
// mount can take milliseconds, and the gRPC server must keep answering.
class MountWorker : public PromiseWorker {
 public:
  MountWorker(Napi::Env env, std::string source, std::string target, std::string fstype, unsigned long flags,
              std::string data, bool has_data)
      : PromiseWorker(env),
        source_(std::move(source)),
        target_(std::move(target)),
        fstype_(std::move(fstype)),
        flags_(flags),
        data_(std::move(data)),
        has_data_(has_data) {}

  void Execute() override {
    const char* src = source_.empty() ? nullptr : source_.c_str();
    const char* type = fstype_.empty() ? nullptr : fstype_.c_str();
    if (mount(src, target_.c_str(), type, flags_, has_data_ ? data_.c_str() : nullptr) != 0) Fail(errno, "mount", target_);
  }

 private:
  std::string source_, target_, fstype_;
  unsigned long flags_;
  std::string data_;
  bool has_data_;
};

class UmountWorker : public PromiseWorker {
 public:
  UmountWorker(Napi::Env env, std::string target, int flags) : PromiseWorker(env), target_(std::move(target)), flags_(flags) {}

  void Execute() override {
    if (umount2(target_.c_str(), flags_) != 0) Fail(errno, "umount2", target_);
  }

 private:
  std::string target_;
  int flags_;
};

// mount(source, target, fstype, flags, data?) -> Promise<void>
static Napi::Value Mount(const Napi::CallbackInfo& info) {
  std::string source, target, fstype, data;
  int64_t flags = 0;
  if (!StringArg(info, 0, "source", &source) || !StringArg(info, 1, "target", &target) ||
      !StringArg(info, 2, "fstype", &fstype) || !NumberArg(info, 3, "flags", &flags)) {
    return info.Env().Undefined();
  }
  bool has_data = info.Length() > 4 && info[4].IsString();
  if (has_data) data = info[4].As<Napi::String>().Utf8Value();
  return QueuePromise(new MountWorker(info.Env(), source, target, fstype, static_cast<unsigned long>(flags), data, has_data));
}

// umount2(target, flags) -> Promise<void>
static Napi::Value Umount2(const Napi::CallbackInfo& info) {
  std::string target;
  int64_t flags = 0;
  if (!StringArg(info, 0, "target", &target) || !NumberArg(info, 1, "flags", &flags)) return info.Env().Undefined();
  return QueuePromise(new UmountWorker(info.Env(), target, static_cast<int>(flags)));
}

void InitMount(Napi::Env env, Napi::Object exports) {
  exports.Set("mount", Napi::Function::New(env, Mount, "mount"));
  exports.Set("umount2", Napi::Function::New(env, Umount2, "umount2"));
  SetConstants(exports, {
      {"MS_RDONLY", static_cast<double>(MS_RDONLY)},
      {"MS_NOSUID", static_cast<double>(MS_NOSUID)},
      {"MS_NODEV", static_cast<double>(MS_NODEV)},
      {"MS_NOEXEC", static_cast<double>(MS_NOEXEC)},
      {"MS_REMOUNT", static_cast<double>(MS_REMOUNT)},
      {"MS_BIND", static_cast<double>(MS_BIND)},
      {"MS_REC", static_cast<double>(MS_REC)},
      {"MS_PRIVATE", static_cast<double>(MS_PRIVATE)},
      {"MS_SLAVE", static_cast<double>(MS_SLAVE)},
      {"MS_SHARED", static_cast<double>(MS_SHARED)},
      {"MS_UNBINDABLE", static_cast<double>(MS_UNBINDABLE)},
      {"MNT_DETACH", static_cast<double>(MNT_DETACH)},
      {"MNT_FORCE", static_cast<double>(MNT_FORCE)},
      {"UMOUNT_NOFOLLOW", static_cast<double>(UMOUNT_NOFOLLOW)},
  });
}

}  // namespace cradle
