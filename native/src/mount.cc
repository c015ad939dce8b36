#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

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

// An idmapped mount: `source` cloned, its files' owners shifted through the
// user namespace at `userns` (an on-disk 0 shows as that namespace's root),
// attached at `target`. Util-linux 2.38 cannot make these; the new mount
// API can (open_tree, mount_setattr, move_mount; Linux 5.12 and later).
class IdmapWorker : public PromiseWorker {
 public:
  IdmapWorker(Napi::Env env, std::string source, std::string target, std::string userns, bool recursive)
      : PromiseWorker(env), source_(std::move(source)), target_(std::move(target)), userns_(std::move(userns)), recursive_(recursive) {}

  void Execute() override {
    int ns = open(userns_.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0) return Fail(errno, "open", userns_);
    unsigned int clone_flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive_ ? AT_RECURSIVE : 0);
    int tree = open_tree(AT_FDCWD, source_.c_str(), clone_flags);
    if (tree < 0) {
      int e = errno;
      close(ns);
      return Fail(e, "open_tree", source_);
    }
    struct mount_attr attr = {};
    attr.attr_set = MOUNT_ATTR_IDMAP;
    attr.userns_fd = static_cast<uint64_t>(ns);
    if (mount_setattr(tree, "", AT_EMPTY_PATH | (recursive_ ? AT_RECURSIVE : 0), &attr, sizeof(attr)) != 0) {
      Fail(errno, "mount_setattr", source_);
    } else if (move_mount(tree, "", AT_FDCWD, target_.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
      Fail(errno, "move_mount", target_);
    }
    close(tree);
    close(ns);
  }

 private:
  std::string source_, target_, userns_;
  bool recursive_;
};

// idmapMount(source, target, usernsPath, recursive) -> Promise<void>
static Napi::Value IdmapMount(const Napi::CallbackInfo& info) {
  std::string source, target, userns;
  if (!StringArg(info, 0, "source", &source) || !StringArg(info, 1, "target", &target) || !StringArg(info, 2, "userns", &userns)) {
    return info.Env().Undefined();
  }
  bool recursive = info.Length() > 3 && info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
  return QueuePromise(new IdmapWorker(info.Env(), source, target, userns, recursive));
}

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
  exports.Set("idmapMount", Napi::Function::New(env, IdmapMount, "idmapMount"));
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
