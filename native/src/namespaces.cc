#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "errno_error.h"
#include "exports.h"

namespace cradle {

namespace {

struct NsKind {
  const char* name;
  int flag;
};

const NsKind kKinds[] = {{"net", CLONE_NEWNET}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"user", CLONE_NEWUSER}};

// The child's first message when it made a user namespace: the parent writes
// its id maps, then lets the child go on to make the other namespaces, which
// that user namespace then owns.
const int kUsernsReady = -1;

// What the child reports through the status pipe: which step failed, errno.
struct ChildStatus {
  int step;  // 0 ok, 1 unshare, 2 sethostname, 3 sysctl open, 4 sysctl write, 5 loopback
  int err;
  int index;  // sysctl index for steps 3 and 4
};

bool WriteAll(int fd, const void* buf, size_t len) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

bool ReadAll(int fd, void* buf, size_t len) {
  char* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

void WaitForByte(int fd) {
  char byte;
  while (read(fd, &byte, 1) < 0 && errno == EINTR) {
  }
}

ChildStatus MakeNamespaces(int flags, const char* hostname, size_t hostname_len, const std::vector<std::pair<std::string, std::string>>& sysctls);

// Runs in the forked child of a multi-threaded process: async-signal-safe
// calls only, no allocation. Everything it needs was prepared before fork.
[[noreturn]] void ChildMain(int flags, const char* hostname, size_t hostname_len,
                            const std::vector<std::pair<std::string, std::string>>& sysctls, int status_fd, int wait_fd) {
  ChildStatus st{0, 0, 0};
  if (flags & CLONE_NEWUSER) {
    if (unshare(CLONE_NEWUSER) != 0) {
      st = {1, errno, 0};
      WriteAll(status_fd, &st, sizeof(st));
      WaitForByte(wait_fd);
      _exit(1);
    }
    ChildStatus ready{kUsernsReady, 0, 0};
    WriteAll(status_fd, &ready, sizeof(ready));
    WaitForByte(wait_fd);
    flags &= ~CLONE_NEWUSER;
  }
  st = MakeNamespaces(flags, hostname, hostname_len, sysctls);
  WriteAll(status_fd, &st, sizeof(st));
  // Stay alive until the parent has bind-mounted our namespaces. The parent
  // sends a byte rather than closing the pipe: children forked by other
  // threads at the same moment inherit copies of its write end, so EOF could
  // be held off indefinitely.
  WaitForByte(wait_fd);
  _exit(st.step == 0 ? 0 : 1);
}

// Unshares `flags` for the calling thread (or forked child), then sets the
// hostname, the sysctls and loopback up inside. Async-signal-safe calls only
// and no allocation, for the forked child's sake.
ChildStatus MakeNamespaces(int flags, const char* hostname, size_t hostname_len, const std::vector<std::pair<std::string, std::string>>& sysctls) {
  ChildStatus st{0, 0, 0};
  if (flags != 0 && unshare(flags) != 0) {
    st = {1, errno, 0};
  } else if ((flags & CLONE_NEWUTS) && hostname_len > 0 && sethostname(hostname, hostname_len) != 0) {
    st = {2, errno, 0};
  } else {
    for (size_t i = 0; i < sysctls.size() && st.step == 0; i++) {
      int fd = open(sysctls[i].first.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) {
        st = {3, errno, static_cast<int>(i)};
        break;
      }
      const std::string& v = sysctls[i].second;
      if (write(fd, v.data(), v.size()) < 0) st = {4, errno, static_cast<int>(i)};
      close(fd);
    }
    // A new network namespace starts with lo down; pods expect it up
    // whatever the CNI config says.
    if (st.step == 0 && (flags & CLONE_NEWNET)) {
      int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      struct ifreq ifr;
      memset(&ifr, 0, sizeof(ifr));
      memcpy(ifr.ifr_name, "lo", 3);
      if (sock < 0 || ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) {
        st = {5, errno, 0};
      } else {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) st = {5, errno, 0};
      }
      if (sock >= 0) close(sock);
    }
  }
  return st;
}

const char* StepName(int step) {
  switch (step) {
    case 1:
      return "unshare";
    case 2:
      return "sethostname";
    case 3:
      return "open sysctl";
    case 4:
      return "write sysctl";
    case 5:
      return "bring up loopback";
    case 7:
      return "write id map";
    default:
      return "pin namespaces";
  }
}

class PinWorker : public PromiseWorker {
 public:
  PinWorker(Napi::Env env, std::string dir, std::vector<std::string> kinds, std::string hostname,
            std::vector<std::pair<std::string, std::string>> sysctls, std::string uid_map, std::string gid_map)
      : PromiseWorker(env),
        dir_(std::move(dir)),
        kinds_(std::move(kinds)),
        hostname_(std::move(hostname)),
        sysctls_(std::move(sysctls)),
        uid_map_(std::move(uid_map)),
        gid_map_(std::move(gid_map)) {}

  void Execute() override {
    int flags = 0;
    for (const auto& k : kinds_) {
      for (const auto& kind : kKinds)
        if (k == kind.name) flags |= kind.flag;
    }
    // Paths below /proc/sys (net/ipv4/ip_forward), validated in TypeScript.
    std::vector<std::pair<std::string, std::string>> files;
    for (const auto& kv : sysctls_) files.emplace_back("/proc/sys/" + kv.first, kv.second);
    if (!(flags & CLONE_NEWUSER)) {
      // Network, IPC and UTS namespaces can be made by a thread for itself
      // and pinned from it: no fork of the daemon (~8 ms here in page-table
      // copies and the faults after it). A user namespace needs a
      // single-threaded process: that case forks below.
      ChildStatus st{0, 0, 0};
      std::thread maker([&] {
        st = MakeNamespaces(flags, hostname_.c_str(), hostname_.size(), files);
        if (st.step == 0) PinAll("/proc/thread-self");
      });
      maker.join();
      if (st.step != 0) Fail(st.err, StepName(st.step), (st.step == 3 || st.step == 4) ? sysctls_[static_cast<size_t>(st.index)].first : "");
      return;
    }
    int status_pipe[2], wait_pipe[2];
    if (pipe2(status_pipe, O_CLOEXEC) != 0) return Fail(errno, "pipe2", "");
    if (pipe2(wait_pipe, O_CLOEXEC) != 0) {
      int e = errno;
      close(status_pipe[0]);
      close(status_pipe[1]);
      return Fail(e, "pipe2", "");
    }
    pid_t pid = fork();
    if (pid < 0) {
      int e = errno;
      close(status_pipe[0]);
      close(status_pipe[1]);
      close(wait_pipe[0]);
      close(wait_pipe[1]);
      return Fail(e, "fork", "");
    }
    if (pid == 0) {
      close(status_pipe[0]);
      close(wait_pipe[1]);
      ChildMain(flags, hostname_.c_str(), hostname_.size(), files, status_pipe[1], wait_pipe[0]);
    }
    close(status_pipe[1]);
    close(wait_pipe[0]);
    ChildStatus st{0, 0, 0};
    bool got = ReadAll(status_pipe[0], &st, sizeof(st));
    if (got && st.step == kUsernsReady) {
      int map_errno = WriteMap(pid, "uid_map", uid_map_);
      if (map_errno == 0) map_errno = WriteMap(pid, "gid_map", gid_map_);
      const char go = 1;
      WriteAll(wait_pipe[1], &go, 1);
      got = ReadAll(status_pipe[0], &st, sizeof(st));
      if (got && st.step == 0 && map_errno != 0) st = {7, map_errno, 0};
    }
    close(status_pipe[0]);
    if (!got) st = {6, ECHILD, 0};
    if (st.step == 0) PinAll("/proc/" + std::to_string(pid));
    const char go = 1;
    WriteAll(wait_pipe[1], &go, 1);  // lets the child exit
    close(wait_pipe[1]);
    int wstatus;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    if (st.step != 0) {
      std::string what = (st.step == 3 || st.step == 4) ? sysctls_[static_cast<size_t>(st.index)].first : "";
      Fail(st.err, StepName(st.step), what);
    }
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    for (const auto& p : pinned_) out.Set(p.first, Napi::String::New(env, p.second));
    return out;
  }

 private:
  // Writes a user namespace's id map ("<inside> <outside> <count>" lines); 0 or errno.
  static int WriteMap(pid_t pid, const char* which, const std::string& map) {
    std::string path = "/proc/" + std::to_string(pid) + "/" + which;
    int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    int err = write(fd, map.data(), map.size()) == static_cast<ssize_t>(map.size()) ? 0 : errno;
    close(fd);
    return err;
  }

  // Bind-mounts <proc>/ns/KIND (a process's or this thread's) onto DIR/KIND; on failure undoes the earlier ones.
  void PinAll(const std::string& proc) {
    for (const auto& k : kinds_) {
      std::string target = dir_ + "/" + k;
      std::string source = proc + "/ns/" + k;
      int fd = open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
      if (fd < 0) {
        Fail(errno, "open", target);
        break;
      }
      close(fd);
      if (mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
        Fail(errno, "mount", target);
        unlink(target.c_str());
        break;
      }
      pinned_.emplace_back(k, target);
    }
    if (Failed()) {
      for (const auto& p : pinned_) {
        umount2(p.second.c_str(), MNT_DETACH);
        unlink(p.second.c_str());
      }
      pinned_.clear();
    }
  }

  std::string dir_;
  std::vector<std::string> kinds_;
  std::string hostname_;
  std::vector<std::pair<std::string, std::string>> sysctls_;
  std::string uid_map_, gid_map_;
  std::vector<std::pair<std::string, std::string>> pinned_;
};

// pinNamespaces(dir, kinds: ('net'|'ipc'|'uts'|'user')[], hostname, sysctls: [path below /proc/sys, value][],
//               uidMap?, gidMap?) -> Promise<{ net?: path, ipc?: path, uts?: path, user?: path }>
// With 'user', the other namespaces are made inside the new user namespace and owned by it.
Napi::Value PinNamespaces(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string dir, hostname;
  if (!StringArg(info, 0, "dir", &dir)) return env.Undefined();
  if (info.Length() < 4 || !info[1].IsArray() || !info[3].IsArray()) {
    Napi::TypeError::New(env, "pinNamespaces(dir, kinds[], hostname, sysctls[])").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!StringArg(info, 2, "hostname", &hostname)) return env.Undefined();
  std::vector<std::string> kinds;
  Napi::Array ka = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < ka.Length(); i++) {
    std::string k = ka.Get(i).As<Napi::String>().Utf8Value();
    bool known = false;
    for (const auto& kind : kKinds) known = known || k == kind.name;
    if (!known) {
      Napi::TypeError::New(env, "unknown namespace kind: " + k).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    kinds.push_back(k);
  }
  std::vector<std::pair<std::string, std::string>> sysctls;
  Napi::Array sa = info[3].As<Napi::Array>();
  for (uint32_t i = 0; i < sa.Length(); i++) {
    Napi::Array pair = sa.Get(i).As<Napi::Array>();
    sysctls.emplace_back(pair.Get(0u).As<Napi::String>().Utf8Value(), pair.Get(1u).As<Napi::String>().Utf8Value());
  }
  std::string uid_map, gid_map;
  if (info.Length() > 5 && info[4].IsString() && info[5].IsString()) {
    uid_map = info[4].As<Napi::String>().Utf8Value();
    gid_map = info[5].As<Napi::String>().Utf8Value();
  }
  bool wants_user = false;
  for (const auto& k : kinds) wants_user = wants_user || k == "user";
  if (wants_user && (uid_map.empty() || gid_map.empty())) {
    Napi::TypeError::New(env, "a user namespace needs its uid and gid maps").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return QueuePromise(new PinWorker(env, dir, kinds, hostname, sysctls, uid_map, gid_map));
}

}  // namespace

void InitNamespaces(Napi::Env env, Napi::Object exports) {
  exports.Set("pinNamespaces", Napi::Function::New(env, PinNamespaces, "pinNamespaces"));
}

}  // namespace cradle
