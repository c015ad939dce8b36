#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "errno_error.h"
#include "exports.h"

namespace cradle {

namespace {

// Runs in a forked child: async-signal-safe calls only.
[[noreturn]] void ExecInit(const char* path, char* const argv[], int err_fd, int devnull) {
  // Node ignores SIGPIPE and blocks signals on some threads; the pod's init
  // must start with default dispositions and an empty mask.
  struct sigaction dfl;
  dfl.sa_handler = SIG_DFL;
  dfl.sa_flags = 0;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  setsid();
  dup2(devnull, 0);
  dup2(devnull, 1);
  dup2(devnull, 2);
  execv(path, argv);
  int e = errno;
  (void)!write(err_fd, &e, sizeof(e));
  _exit(127);
}

class SpawnInitWorker : public PromiseWorker {
 public:
  SpawnInitWorker(Napi::Env env, std::vector<std::string> join, std::string init, std::vector<std::string> args, std::string pin)
      : PromiseWorker(env),
        join_(std::move(join)),
        init_(std::move(init)),
        args_(std::move(args)),
        pin_(std::move(pin)) {}

  void Execute() override {
    std::vector<int> fds;
    for (const auto& path : join_) {
      int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        Fail(errno, "open", path);
        return CloseAll(fds);
      }
      fds.push_back(fd);
    }
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(init_.c_str()));
    for (auto& a : args_) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    int pid_pipe[2], err_pipe[2];
    if (devnull < 0 || pipe2(pid_pipe, O_CLOEXEC) != 0) {
      Fail(errno, "pipe2", "");
      if (devnull >= 0) close(devnull);
      return CloseAll(fds);
    }
    if (pipe2(err_pipe, O_CLOEXEC) != 0) {
      Fail(errno, "pipe2", "");
      close(pid_pipe[0]);
      close(pid_pipe[1]);
      close(devnull);
      return CloseAll(fds);
    }
    pid_t helper = fork();
    if (helper == 0) {
      // Helper: enter the pod's namespaces, make a PID namespace, fork its init.
      for (int fd : fds) {
        if (setns(fd, 0) != 0) {
          int e = -errno;
          (void)!write(pid_pipe[1], &e, sizeof(e));
          _exit(1);
        }
      }
      if (unshare(CLONE_NEWPID) != 0) {
        int e = -errno;
        (void)!write(pid_pipe[1], &e, sizeof(e));
        _exit(1);
      }
      pid_t init = fork();
      if (init == 0) ExecInit(argv[0], argv.data(), err_pipe[1], devnull);
      int report = init > 0 ? init : -errno;
      (void)!write(pid_pipe[1], &report, sizeof(report));
      _exit(0);
    }
    int fork_errno = errno;
    close(pid_pipe[1]);
    close(err_pipe[1]);
    close(devnull);
    CloseAll(fds);
    if (helper < 0) {
      close(pid_pipe[0]);
      close(err_pipe[0]);
      return Fail(fork_errno, "fork", "");
    }
    int report = 0;
    ssize_t n;
    do {
      n = read(pid_pipe[0], &report, sizeof(report));
    } while (n < 0 && errno == EINTR);
    close(pid_pipe[0]);
    int status;
    while (waitpid(helper, &status, 0) < 0 && errno == EINTR) {
    }
    if (n != sizeof(report) || report <= 0) {
      close(err_pipe[0]);
      return Fail(n == sizeof(report) ? -report : ECHILD, "spawn pod init", "");
    }
    pid_ = report;
    // exec succeeded when the close-on-exec pipe reaches EOF without an errno.
    int exec_errno = 0;
    do {
      n = read(err_pipe[0], &exec_errno, sizeof(exec_errno));
    } while (n < 0 && errno == EINTR);
    close(err_pipe[0]);
    if (n == sizeof(exec_errno)) {
      Fail(exec_errno, "execv", init_);
      return;
    }
    std::string source = "/proc/" + std::to_string(pid_) + "/ns/pid";
    int fd = open(pin_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0) {
      Fail(errno, "open", pin_);
      kill(pid_, SIGKILL);
      return;
    }
    close(fd);
    if (mount(source.c_str(), pin_.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      Fail(errno, "mount", pin_);
      unlink(pin_.c_str());
      kill(pid_, SIGKILL);
    }
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("pid", Napi::Number::New(env, pid_));
    out.Set("pin", Napi::String::New(env, pin_));
    return out;
  }

 private:
  static void CloseAll(std::vector<int>& fds) {
    for (int fd : fds) close(fd);
    fds.clear();
  }

  std::vector<std::string> join_;
  std::string init_;
  std::vector<std::string> args_;
  std::string pin_;
  pid_t pid_ = 0;
};

// spawnPodInit(joinNamespaceFiles[], initPath, args[], pidPinPath) -> Promise<{ pid, pin }>
Napi::Value SpawnPodInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsArray() || !info[2].IsArray()) {
    Napi::TypeError::New(env, "spawnPodInit(joinFiles[], initPath, args[], pidPin)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string init, pin;
  if (!StringArg(info, 1, "initPath", &init) || !StringArg(info, 3, "pidPin", &pin)) return env.Undefined();
  std::vector<std::string> join, args;
  Napi::Array ja = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < ja.Length(); i++) join.push_back(ja.Get(i).As<Napi::String>().Utf8Value());
  Napi::Array aa = info[2].As<Napi::Array>();
  for (uint32_t i = 0; i < aa.Length(); i++) args.push_back(aa.Get(i).As<Napi::String>().Utf8Value());
  return QueuePromise(new SpawnInitWorker(env, join, init, args, pin));
}

// A pidfd watched on the event loop: calls back once when the process exits.
struct ExitWatch {
  uv_poll_t poll;
  int pidfd;
  Napi::FunctionReference callback;
  bool closed = false;
};

void OnPollClosed(uv_handle_t* handle) {
  auto* w = static_cast<ExitWatch*>(handle->data);
  close(w->pidfd);
  delete w;
}

void CloseWatch(ExitWatch* w) {
  if (w->closed) return;
  w->closed = true;
  uv_poll_stop(&w->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnPollClosed);
}

void OnPidfdReadable(uv_poll_t* handle, int /*status*/, int /*events*/) {
  auto* w = static_cast<ExitWatch*>(handle->data);
  Napi::Env env = w->callback.Env();
  Napi::HandleScope scope(env);
  Napi::FunctionReference cb = std::move(w->callback);
  CloseWatch(w);
  cb.Call({});
}

// watchExit(pid, callback) -> { close(): void } | throws ESRCH when the process is already gone.
Napi::Value WatchExit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t pid = 0;
  if (!NumberArg(info, 0, "pid", &pid)) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "callback must be a function").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
  if (pidfd < 0) {
    ErrnoError(env, errno, "pidfd_open", "").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  auto* w = new ExitWatch();
  w->pidfd = pidfd;
  w->callback = Napi::Persistent(info[1].As<Napi::Function>());
  uv_poll_init(loop, &w->poll, pidfd);
  w->poll.data = w;
  // Does not keep the process alive on its own.
  uv_unref(reinterpret_cast<uv_handle_t*>(&w->poll));
  uv_poll_start(&w->poll, UV_READABLE, OnPidfdReadable);
  Napi::Object handle = Napi::Object::New(env);
  handle.Set("close", Napi::Function::New(env, [w](const Napi::CallbackInfo& ci) {
    if (!w->closed) {
      w->callback.Reset();
      CloseWatch(w);
    }
    return ci.Env().Undefined();
  }));
  return handle;
}

// signalInCgroup(pid, signal, marker) -> boolean. Signals `pid` through a pidfd
// only if its /proc/<pid>/cgroup names `marker`; read after the pidfd is open,
// so a pid reused in between cannot be signalled. False when the process is
// gone or is not in that cgroup.
Napi::Value SignalInCgroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t pid = 0;
  int64_t sig = 0;
  std::string marker;
  if (!NumberArg(info, 0, "pid", &pid) || !NumberArg(info, 1, "signal", &sig) || !StringArg(info, 2, "marker", &marker)) return env.Undefined();
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
  if (pidfd < 0) {
    if (errno == ESRCH) return Napi::Boolean::New(env, false);
    ErrnoError(env, errno, "pidfd_open", "").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = "/proc/" + std::to_string(pid) + "/cgroup";
  std::string cgroups;
  FILE* f = fopen(path.c_str(), "re");
  if (f != nullptr) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) cgroups.append(buf, n);
    fclose(f);
  }
  bool ours = !marker.empty() && cgroups.find(marker) != std::string::npos;
  int rc = ours ? static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, static_cast<int>(sig), nullptr, 0)) : 0;
  int err = errno;
  close(pidfd);
  if (ours && rc < 0) {
    if (err == ESRCH) return Napi::Boolean::New(env, false);
    ErrnoError(env, err, "pidfd_send_signal", "").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Boolean::New(env, ours);
}

}  // namespace

void InitPodInit(Napi::Env env, Napi::Object exports) {
  exports.Set("signalInCgroup", Napi::Function::New(env, SignalInCgroup, "signalInCgroup"));
  exports.Set("spawnPodInit", Napi::Function::New(env, SpawnPodInit, "spawnPodInit"));
  exports.Set("watchExit", Napi::Function::New(env, WatchExit, "watchExit"));
}

}  // namespace cradle
