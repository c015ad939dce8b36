#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "errno_error.h"
#include "exports.h"

extern char** environ;

namespace cradle {

namespace {

// A spawned child watched through its pidfd on the event loop. The pidfd is
// held until the child is reaped, so signals sent through it can never reach
// a process that reused the pid.
struct Child;

// What the JS handle's functions reach: the Child until it is reaped, then null.
struct ChildRef {
  Child* child = nullptr;
};

struct Child {
  uv_poll_t poll;
  pid_t pid;
  int pidfd;
  Napi::FunctionReference on_exit;
  std::shared_ptr<ChildRef> ref;
};

void OnChildPollClosed(uv_handle_t* handle) {
  auto* c = static_cast<Child*>(handle->data);
  close(c->pidfd);
  delete c;
}

void OnChildReadable(uv_poll_t* handle, int /*status*/, int /*events*/) {
  auto* c = static_cast<Child*>(handle->data);
  int status = 0;
  pid_t r = waitpid(c->pid, &status, WNOHANG);
  // Readable means it exited; 0 would be a spurious wake-up, so keep waiting.
  if (r == 0 || (r < 0 && errno == EINTR)) return;
  c->ref->child = nullptr;
  uv_poll_stop(&c->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->poll), OnChildPollClosed);
  Napi::Env env = c->on_exit.Env();
  Napi::HandleScope scope(env);
  Napi::FunctionReference cb = std::move(c->on_exit);
  // Nobody else reaps these children; -1 (ECHILD) is reported as neither code nor signal.
  Napi::Value code = env.Null();
  Napi::Value sig = env.Null();
  if (r > 0 && WIFEXITED(status)) code = Napi::Number::New(env, WEXITSTATUS(status));
  if (r > 0 && WIFSIGNALED(status)) sig = Napi::Number::New(env, WTERMSIG(status));
  cb.MakeCallback(env.Global(), {code, sig});
}

struct SpawnArgs {
  std::string file;
  std::vector<std::string> argv;
  std::vector<std::string> env;
  bool has_env = false;
  std::string cwd;
  std::vector<int> fds;
  bool setsid = false;
};

bool StringArray(Napi::Env env, Napi::Value v, const char* name, std::vector<std::string>* out) {
  if (!v.IsArray()) {
    Napi::TypeError::New(env, std::string(name) + " must be an array of strings").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsString()) {
      Napi::TypeError::New(env, std::string(name) + " must be an array of strings").ThrowAsJavaScriptException();
      return false;
    }
    out->push_back(e.As<Napi::String>().Utf8Value());
  }
  return true;
}

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// The kernel's struct sigaction for rt_sigaction(2): glibc's sigaction()
// refuses the two signals it reserves (32, 33), which must be reset too.
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  uint64_t mask;
};

struct ChildPlan {
  const char* path;
  char* const* argv;
  char* const* envp;
  const char* cwd;
  const int* fds;
  int nfds;
  bool setsid;
  volatile int err;
};

[[noreturn]] void ChildFail(ChildPlan* p, int err) {
  p->err = err;
  _exit(127);
}

// Runs in the child, on its own stack in the daemon's memory while the
// calling thread waits (CLONE_VFORK): syscalls only, nothing that locks or
// allocates.
int ChildMain(void* arg) {
  auto* p = static_cast<ChildPlan*>(arg);
  // The daemon's handlers must not run here, and what Node ignores (SIGPIPE)
  // or glibc reserves must not stay ignored in the programs it starts:
  // posix_spawn leaves 32 and 33 ignored, fork would keep SIGPIPE ignored.
  KernelSigaction dfl{};
  for (int sig = 1; sig <= 64; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof(uint64_t));
  }
  if (p->setsid && setsid() < 0) ChildFail(p, errno);
  for (int slot = 0; slot < p->nfds; slot++) {
    int fd = p->fds[slot];
    if (fd >= 0) {
      if (dup2(fd, slot) < 0) ChildFail(p, errno);
      continue;
    }
    // Slots below this one are taken, so the lowest free fd is at least this one.
    int null = open("/dev/null", O_RDWR);
    if (null < 0) ChildFail(p, errno);
    if (null != slot) {
      if (dup2(null, slot) < 0) ChildFail(p, errno);
      close(null);
    }
  }
  if (p->cwd != nullptr && chdir(p->cwd) < 0) ChildFail(p, errno);
  uint64_t none = 0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, sizeof none);
  execve(p->path, p->argv, p->envp);
  ChildFail(p, errno);
}

// The program `file` names: itself when it has a slash, else the first
// executable file of that name in PATH (the child's, as execvp would).
int Resolve(const std::string& file, const char* path_var, std::string* out) {
  if (file.find('/') != std::string::npos) {
    *out = file;
    return 0;
  }
  std::string dirs = path_var != nullptr ? path_var : "/usr/local/bin:/usr/bin:/bin";
  int err = ENOENT;
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + file;
    struct stat st;
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (access(candidate.c_str(), X_OK) == 0) {
        *out = candidate;
        return 0;
      }
      err = EACCES;
    }
    start = end + 1;
  }
  return err;
}

// clone(CLONE_VM | CLONE_VFORK), as posix_spawn does: the cost does not grow
// with the daemon's memory the way libuv's fork() does (6-9 ms of every
// runtime, conmon or CNI call on a small node), but unlike posix_spawn the
// child starts with every signal at its default.
int Spawn(SpawnArgs& a, pid_t* pid) {
  const char* path_var = a.has_env ? nullptr : getenv("PATH");
  for (const auto& e : a.env) {
    if (e.rfind("PATH=", 0) == 0) path_var = e.c_str() + 5;
  }
  std::string path;
  int err = Resolve(a.file, path_var, &path);
  if (err != 0) return err;
  // The fds are first moved above the child's slots, so giving slot i the fd
  // that another slot j < i already received can never clobber it.
  std::vector<int> high;
  for (int fd : a.fds) {
    int h = fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, static_cast<int>(a.fds.size()) + 3);
    if (fd >= 0 && h < 0 && err == 0) err = errno;
    high.push_back(h);
  }
  const size_t stack_size = 256 * 1024;
  void* stack = err == 0 ? mmap(nullptr, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0) : MAP_FAILED;
  if (err == 0 && stack == MAP_FAILED) err = errno;
  if (err == 0) {
    std::vector<char*> argv = CStrings(a.argv);
    std::vector<char*> envp = CStrings(a.env);
    ChildPlan plan{path.c_str(), argv.data(), a.has_env ? envp.data() : environ, a.cwd.empty() ? nullptr : a.cwd.c_str(), high.data(), static_cast<int>(high.size()), a.setsid, 0};
    // Every signal blocked until the child has reset its handlers: one
    // delivered before would run the daemon's handler in the child.
    uint64_t all = ~0ULL, old = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof all);
    pid_t child = clone(ChildMain, static_cast<char*>(stack) + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
    int clone_err = errno;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, nullptr, sizeof old);
    munmap(stack, stack_size);
    if (child < 0) {
      err = clone_err;
    } else if (plan.err != 0) {
      err = plan.err;
      waitpid(child, nullptr, 0);
    } else {
      *pid = child;
    }
  }
  for (int h : high) {
    if (h >= 0) close(h);
  }
  return err;
}

// spawnChild(file, argv, env|null, cwd|null, fds, setsid, onExit(code, signal))
//   -> { pid, kill(signal): boolean, ref(), unref() }
// fds[i] becomes the child's fd i (-1: /dev/null); every other fd the daemon
// holds is close-on-exec. Throws an errno error when the program cannot be
// started (ENOENT, EACCES, a missing cwd).
Napi::Value SpawnChild(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SpawnArgs a;
  if (!StringArg(info, 0, "file", &a.file)) return env.Undefined();
  if (info.Length() < 7 || !StringArray(env, info[1], "argv", &a.argv)) return env.Undefined();
  if (!info[2].IsNull()) {
    if (!StringArray(env, info[2], "env", &a.env)) return env.Undefined();
    a.has_env = true;
  }
  if (!info[3].IsNull() && !StringArg(info, 3, "cwd", &a.cwd)) return env.Undefined();
  if (!info[4].IsArray() || !info[6].IsFunction()) {
    Napi::TypeError::New(env, "fds must be an array and onExit a function").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array fds = info[4].As<Napi::Array>();
  for (uint32_t i = 0; i < fds.Length(); i++) a.fds.push_back(fds.Get(i).As<Napi::Number>().Int32Value());
  a.setsid = info[5].ToBoolean().Value();
  pid_t pid = 0;
  int err = Spawn(a, &pid);
  if (err != 0) {
    ErrnoError(env, err, "spawn", a.file).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // The child is ours until reaped, so its pid cannot be reused before this.
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    int e = errno;
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    ErrnoError(env, e, "pidfd_open", a.file).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  auto* c = new Child();
  c->pid = pid;
  c->pidfd = pidfd;
  c->on_exit = Napi::Persistent(info[6].As<Napi::Function>());
  uv_poll_init(loop, &c->poll, pidfd);
  c->poll.data = c;
  uv_poll_start(&c->poll, UV_READABLE, OnChildReadable);
  Napi::Object handle = Napi::Object::New(env);
  handle.Set("pid", Napi::Number::New(env, pid));
  // The handle's functions and the reaping all run on the JS thread: once
  // reaped, ref->child is null and the freed Child is never reached.
  c->ref = std::make_shared<ChildRef>();
  c->ref->child = c;
  std::shared_ptr<ChildRef> ref = c->ref;
  handle.Set("kill", Napi::Function::New(env, [ref](const Napi::CallbackInfo& ci) -> Napi::Value {
    Napi::Env e = ci.Env();
    if (ref->child == nullptr) return Napi::Boolean::New(e, false);
    int sig = ci.Length() > 0 && ci[0].IsNumber() ? ci[0].As<Napi::Number>().Int32Value() : SIGTERM;
    int rc = static_cast<int>(syscall(SYS_pidfd_send_signal, ref->child->pidfd, sig, nullptr, 0));
    return Napi::Boolean::New(e, rc == 0);
  }));
  handle.Set("unref", Napi::Function::New(env, [ref](const Napi::CallbackInfo& ci) -> Napi::Value {
    if (ref->child != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(&ref->child->poll));
    return ci.Env().Undefined();
  }));
  return handle;
}

// pipe() -> [readFd, writeFd], both close-on-exec.
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    ErrnoError(env, errno, "pipe2", "").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, p[0]));
  out.Set(1u, Napi::Number::New(env, p[1]));
  return out;
}

}  // namespace

void InitSpawn(Napi::Env env, Napi::Object exports) {
  exports.Set("spawnChild", Napi::Function::New(env, SpawnChild, "spawnChild"));
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
}

}  // namespace cradle
