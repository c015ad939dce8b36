#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <string>

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

  void Execute() override {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return Fail(errno, "pipe2", "");
    pid_t pid = fork();
    if (pid == 0) {
      int err = 0;
      if (chdir(cwd_.c_str()) != 0) {
        err = errno;
      } else if (mount(source_.c_str(), target_.c_str(), fstype_.c_str(), flags_, data_.c_str()) != 0) {
        err = errno;
      }
      (void)!write(fds[1], &err, sizeof(err));
      _exit(err == 0 ? 0 : 1);
    }
    int fork_errno = errno;
    close(fds[1]);
    if (pid < 0) {
      close(fds[0]);
      return Fail(fork_errno, "fork", "");
    }
    int err = ECHILD;
    ssize_t n;
    do {
      n = read(fds[0], &err, sizeof(err));
    } while (n < 0 && errno == EINTR);
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (n != sizeof(err)) err = ECHILD;
    if (err != 0) Fail(err, "mount", target_);
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
