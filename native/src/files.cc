#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <thread>

#include "errno_error.h"
#include "exports.h"

namespace cradle {

namespace {

// mknod(path, mode, major, minor): device nodes and overlay whiteouts (0:0
// character devices) in unpacked layers. Synchronous: it is called from the
// unpack worker thread, never from the main thread.
Napi::Value Mknod(const Napi::CallbackInfo& info) {
  std::string path;
  int64_t mode = 0, major = 0, minor = 0;
  if (!StringArg(info, 0, "path", &path) || !NumberArg(info, 1, "mode", &mode) || !NumberArg(info, 2, "major", &major) ||
      !NumberArg(info, 3, "minor", &minor)) {
    return info.Env().Undefined();
  }
  if (mknod(path.c_str(), static_cast<mode_t>(mode), makedev(static_cast<unsigned>(major), static_cast<unsigned>(minor))) != 0) {
    ErrnoError(info.Env(), errno, "mknod", path).ThrowAsJavaScriptException();
  }
  return info.Env().Undefined();
}

// lsetxattr(path, name, value: Buffer): file capabilities and overlay opaque markers.
Napi::Value Lsetxattr(const Napi::CallbackInfo& info) {
  std::string path, name;
  if (!StringArg(info, 0, "path", &path) || !StringArg(info, 1, "name", &name)) return info.Env().Undefined();
  if (info.Length() < 3 || !info[2].IsBuffer()) {
    Napi::TypeError::New(info.Env(), "value must be a Buffer").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  Napi::Buffer<uint8_t> value = info[2].As<Napi::Buffer<uint8_t>>();
  if (lsetxattr(path.c_str(), name.c_str(), value.Data(), value.Length(), 0) != 0) {
    ErrnoError(info.Env(), errno, "lsetxattr", path).ThrowAsJavaScriptException();
  }
  return info.Env().Undefined();
}

// mount(2) from a child whose working directory is `cwd`, so that relative
// overlay lowerdir paths keep the mount data under the page-size limit for
// images with many layers. The child shares the daemon's mount namespace.
class MountAtWorker : public PromiseWorker {
 public:
  MountAtWorker(Napi::Env env, std::string cwd, std::string source, std::string target, std::string fstype, unsigned long flags,
                std::string data)
      : PromiseWorker(env),
        cwd_(std::move(cwd)),
        source_(std::move(source)),
        target_(std::move(target)),
        fstype_(std::move(fstype)),
        flags_(flags),
        data_(std::move(data)) {}

  // The mount runs relative to `cwd` on a thread of its own that unshared
  // its filesystem context (CLONE_FS: cwd and root become per-thread), so
  // no other thread's cwd moves and no process is forked: a fork of the
  // daemon costs ~10 ms here in page-table copies and faults after it.
  void Execute() override {
    int err = 0;
    const char* op = "mount";
    std::thread worker([&] {
      if (unshare(CLONE_FS) != 0) {
        err = errno;
        op = "unshare";
      } else if (chdir(cwd_.c_str()) != 0) {
        err = errno;
        op = "chdir";
      } else if (mount(source_.c_str(), target_.c_str(), fstype_.c_str(), flags_, data_.c_str()) != 0) {
        err = errno;
      }
    });
    worker.join();
    if (err != 0) Fail(err, op, std::string(op) == "chdir" ? cwd_ : target_);
  }

 private:
  std::string cwd_, source_, target_, fstype_;
  unsigned long flags_;
  std::string data_;
};

Napi::Value MountAt(const Napi::CallbackInfo& info) {
  std::string cwd, source, target, fstype, data;
  int64_t flags = 0;
  if (!StringArg(info, 0, "cwd", &cwd) || !StringArg(info, 1, "source", &source) || !StringArg(info, 2, "target", &target) ||
      !StringArg(info, 3, "fstype", &fstype) || !NumberArg(info, 4, "flags", &flags) || !StringArg(info, 5, "data", &data)) {
    return info.Env().Undefined();
  }
  return QueuePromise(new MountAtWorker(info.Env(), cwd, source, target, fstype, static_cast<unsigned long>(flags), data));
}

}  // namespace

void InitFiles(Napi::Env env, Napi::Object exports) {
  exports.Set("mknod", Napi::Function::New(env, Mknod, "mknod"));
  exports.Set("lsetxattr", Napi::Function::New(env, Lsetxattr, "lsetxattr"));
  exports.Set("mountAt", Napi::Function::New(env, MountAt, "mountAt"));
  SetConstants(exports, {
      {"S_IFCHR", static_cast<double>(S_IFCHR)},
      {"S_IFBLK", static_cast<double>(S_IFBLK)},
      {"S_IFIFO", static_cast<double>(S_IFIFO)},
  });
}

}  // namespace cradle
