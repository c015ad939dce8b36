#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <vector>

#include "errno_error.h"
#include "exports.h"

namespace cradle {

namespace {

// Small kernel files (cgroup counters, /proc) are read whole; none comes near this.
constexpr size_t kReadCap = 4 * 1024 * 1024;

// Reads every file in one trip to the thread pool: readFile costs four or
// five trips per file (open, fstat, reads, close), and stats for a node's
// containers read thousands of such files at once.
class ReadFilesWorker : public PromiseWorker {
 public:
  ReadFilesWorker(Napi::Env env, std::vector<std::string> paths) : PromiseWorker(env), paths_(std::move(paths)) {}

  void Execute() override {
    char buf[16384];
    for (const auto& path : paths_) {
      int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        texts_.emplace_back(std::nullopt);
        continue;
      }
      std::string text;
      bool ok = true;
      for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) ok = false;
        if (n <= 0) break;
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > kReadCap) break;
      }
      close(fd);
      texts_.emplace_back(ok ? std::optional<std::string>(std::move(text)) : std::nullopt);
    }
  }

 protected:
  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, texts_.size());
    for (size_t i = 0; i < texts_.size(); i++) {
      const auto& t = texts_[i];
      out.Set(static_cast<uint32_t>(i), t ? Napi::String::New(env, *t) : env.Undefined());
    }
    return out;
  }

 private:
  std::vector<std::string> paths_;
  std::vector<std::optional<std::string>> texts_;
};

// readFiles(paths) -> Promise<(string | undefined)[]>: undefined where a file cannot be read.
Napi::Value ReadFiles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) {
    Napi::TypeError::New(env, "paths must be an array of strings").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<std::string> paths;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a.Get(i);
    if (!v.IsString()) {
      Napi::TypeError::New(env, "paths must be an array of strings").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    paths.push_back(v.As<Napi::String>().Utf8Value());
  }
  return QueuePromise(new ReadFilesWorker(env, std::move(paths)));
}

// nftw has no user argument; each walk runs whole on one pool thread.
thread_local uint64_t walk_bytes = 0;
thread_local uint64_t walk_inodes = 0;

int CountEntry(const char* /*path*/, const struct stat* st, int type, struct FTW* ftw) {
  // The directory itself is not part of what it holds; an entry removed meanwhile has no stat.
  if (ftw->level > 0 && type != FTW_NS) {
    walk_inodes++;
    walk_bytes += static_cast<uint64_t>(st->st_blocks) * 512;
  }
  return 0;
}

// The space and inodes below a directory, walked on the thread pool in one
// trip (a walk in JavaScript costs a trip per entry); symlinks not followed.
class DiskUsageWorker : public PromiseWorker {
 public:
  DiskUsageWorker(Napi::Env env, std::string dir) : PromiseWorker(env), dir_(std::move(dir)) {}

  void Execute() override {
    walk_bytes = 0;
    walk_inodes = 0;
    // A directory that is gone, or goes during the walk, counts what was seen.
    nftw(dir_.c_str(), CountEntry, 32, FTW_PHYS);
    bytes_ = walk_bytes;
    inodes_ = walk_inodes;
  }

 protected:
  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("bytes", Napi::Number::New(env, static_cast<double>(bytes_)));
    out.Set("inodes", Napi::Number::New(env, static_cast<double>(inodes_)));
    return out;
  }

 private:
  std::string dir_;
  uint64_t bytes_ = 0;
  uint64_t inodes_ = 0;
};

Napi::Value DiskUsage(const Napi::CallbackInfo& info) {
  std::string dir;
  if (!StringArg(info, 0, "dir", &dir)) return info.Env().Undefined();
  return QueuePromise(new DiskUsageWorker(info.Env(), std::move(dir)));
}

}  // namespace

void InitReads(Napi::Env env, Napi::Object exports) {
  exports.Set("readFiles", Napi::Function::New(env, ReadFiles, "readFiles"));
  exports.Set("diskUsage", Napi::Function::New(env, DiskUsage, "diskUsage"));
}

}  // namespace cradle
