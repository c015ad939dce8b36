#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "errno_error.h"
#include "exports.h"

namespace cradle {

// Connects to 127.0.0.1:port inside the network namespace at ns_path (a
// pod's pin). Only this thread-pool thread enters the namespace, and only
// for socket() and connect(): a socket stays in the namespace it was made
// in, so the daemon then uses it like any other.
class ConnectInNetnsWorker : public PromiseWorker {
 public:
  ConnectInNetnsWorker(Napi::Env env, std::string ns_path, int port) : PromiseWorker(env), ns_path_(std::move(ns_path)), port_(port) {}

  void Execute() override {
    int own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (own < 0) return Fail(errno, "open", "/proc/thread-self/ns/net");
    int target = open(ns_path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (target < 0) {
      Fail(errno, "open", ns_path_);
      close(own);
      return;
    }
    if (setns(target, CLONE_NEWNET) != 0) {
      Fail(errno, "setns", ns_path_);
    } else {
      fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd_ < 0) {
        Fail(errno, "socket", ns_path_);
      } else {
        struct sockaddr_in addr = {};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(port_));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd_, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0) {
          Fail(errno, "connect", "127.0.0.1:" + std::to_string(port_));
          close(fd_);
          fd_ = -1;
        }
      }
      // A thread-pool thread left in a pod's namespace would poison every
      // later job it runs: not being able to return is fatal.
      if (setns(own, CLONE_NEWNET) != 0) {
        fprintf(stderr, "cradle native: cannot return to the daemon's network namespace: %s\n", strerror(errno));
        abort();
      }
    }
    close(target);
    close(own);
  }

 protected:
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, fd_); }

 private:
  std::string ns_path_;
  int port_;
  int fd_ = -1;
};

// connectInNetns(nsPath, port) -> Promise<fd>
static Napi::Value ConnectInNetns(const Napi::CallbackInfo& info) {
  std::string ns;
  int64_t port = 0;
  if (!StringArg(info, 0, "nsPath", &ns) || !NumberArg(info, 1, "port", &port)) return info.Env().Undefined();
  return QueuePromise(new ConnectInNetnsWorker(info.Env(), ns, static_cast<int>(port)));
}

// A unix socket address for `path`; paths longer than sun_path go through
// an O_PATH descriptor of their directory (/proc/self/fd/N/name). *dirfd is
// set when one was opened, for the caller to close.
static bool UnixAddress(const std::string& path, struct sockaddr_un* addr, int* dirfd) {
  *dirfd = -1;
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  std::string name = path;
  if (path.size() >= sizeof addr->sun_path) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) {
      errno = ENAMETOOLONG;
      return false;
    }
    *dirfd = open(path.substr(0, slash).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (*dirfd < 0) return false;
    name = "/proc/self/fd/" + std::to_string(*dirfd) + path.substr(slash);
    if (name.size() >= sizeof addr->sun_path) {
      errno = ENAMETOOLONG;
      return false;
    }
  }
  memcpy(addr->sun_path, name.c_str(), name.size());
  return true;
}

// An attach connection to conmon: its socket is SOCK_SEQPACKET, which
// libuv (and so Node) cannot wrap, so the addon polls it on the event loop
// and hands each packet to JavaScript as it arrives.
struct AttachConn {
  uv_poll_t poll;
  int fd = -1;
  Napi::FunctionReference on_packet;
  Napi::FunctionReference on_close;
  bool closed = false;
};

// conmon's packets are at most its buffer size plus the stream byte.
constexpr size_t kAttachPacketMax = 65536;

static void OnAttachPollClosed(uv_handle_t* handle) {
  auto* c = static_cast<AttachConn*>(handle->data);
  close(c->fd);
  delete c;
}

static void CloseAttach(AttachConn* c) {
  if (c->closed) return;
  c->closed = true;
  uv_poll_stop(&c->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->poll), OnAttachPollClosed);
}

static void OnAttachReadable(uv_poll_t* handle, int status, int /*events*/) {
  auto* c = static_cast<AttachConn*>(handle->data);
  Napi::Env env = c->on_packet.Env();
  Napi::HandleScope scope(env);
  bool ended = status < 0;
  static char buf[kAttachPacketMax];
  while (!ended) {
    ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ended = true;
      break;
    }
    c->on_packet.Call({Napi::Buffer<char>::Copy(env, buf, static_cast<size_t>(n))});
    if (c->closed) return;
  }
  if (ended) {
    Napi::FunctionReference cb = std::move(c->on_close);
    c->on_packet.Reset();
    CloseAttach(c);
    if (!cb.IsEmpty()) cb.Call({});
  }
}

// attachPackets(path, onPacket, onClose) -> { send(buf): boolean, shutdownWrite(), close() }
static Napi::Value AttachPackets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!StringArg(info, 0, "path", &path)) return env.Undefined();
  if (info.Length() < 3 || !info[1].IsFunction() || !info[2].IsFunction()) {
    Napi::TypeError::New(env, "onPacket and onClose must be functions").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct sockaddr_un addr;
  int dirfd;
  if (!UnixAddress(path, &addr, &dirfd)) {
    ErrnoError(env, errno, "connect", path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int err = 0;
  if (fd < 0) {
    err = errno;
  } else if (connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0) {
    err = errno;
    close(fd);
  }
  if (dirfd >= 0) close(dirfd);
  if (err != 0) {
    ErrnoError(env, err, "connect", path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  auto* c = new AttachConn();
  c->fd = fd;
  c->on_packet = Napi::Persistent(info[1].As<Napi::Function>());
  c->on_close = Napi::Persistent(info[2].As<Napi::Function>());
  uv_poll_init(loop, &c->poll, fd);
  c->poll.data = c;
  uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT, OnAttachReadable);
  Napi::Object handle = Napi::Object::New(env);
  // One packet per call (conmon writes each to the container's stdin); false when the socket is full.
  handle.Set("send", Napi::Function::New(env, [c](const Napi::CallbackInfo& ci) -> Napi::Value {
    if (c->closed || ci.Length() < 1 || !ci[0].IsBuffer()) return Napi::Boolean::New(ci.Env(), false);
    Napi::Buffer<char> b = ci[0].As<Napi::Buffer<char>>();
    ssize_t n = send(c->fd, b.Data(), b.Length(), MSG_DONTWAIT | MSG_NOSIGNAL);
    return Napi::Boolean::New(ci.Env(), n >= 0);
  }));
  // Tells conmon the client is done sending: it closes the container's stdin (stdin_once).
  handle.Set("shutdownWrite", Napi::Function::New(env, [c](const Napi::CallbackInfo& ci) {
    if (!c->closed) shutdown(c->fd, SHUT_WR);
    return ci.Env().Undefined();
  }));
  handle.Set("close", Napi::Function::New(env, [c](const Napi::CallbackInfo& ci) {
    if (!c->closed) {
      c->on_packet.Reset();
      c->on_close.Reset();
      CloseAttach(c);
    }
    return ci.Env().Undefined();
  }));
  return handle;
}

// setWinsize(fd, rows, cols): TIOCSWINSZ on a terminal master.
static Napi::Value SetWinsize(const Napi::CallbackInfo& info) {
  int64_t fd = 0, rows = 0, cols = 0;
  if (!NumberArg(info, 0, "fd", &fd) || !NumberArg(info, 1, "rows", &rows) || !NumberArg(info, 2, "cols", &cols)) return info.Env().Undefined();
  struct winsize ws = {};
  ws.ws_row = static_cast<unsigned short>(rows);
  ws.ws_col = static_cast<unsigned short>(cols);
  if (ioctl(static_cast<int>(fd), TIOCSWINSZ, &ws) != 0) ErrnoError(info.Env(), errno, "ioctl", "TIOCSWINSZ").ThrowAsJavaScriptException();
  return info.Env().Undefined();
}

// unreadBytes(fd) -> n: FIONREAD, what a pipe or FIFO holds that its reader
// has not read yet.
static Napi::Value UnreadBytes(const Napi::CallbackInfo& info) {
  int64_t fd = 0;
  if (!NumberArg(info, 0, "fd", &fd)) return info.Env().Undefined();
  int n = 0;
  if (ioctl(static_cast<int>(fd), FIONREAD, &n) != 0) {
    ErrnoError(info.Env(), errno, "ioctl", "FIONREAD").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), n);
}

// openpty(rows, cols) -> {master, slave}: a raw terminal pair for a tty exec.
// The runtime runs with the slave as its stdio and relays it to the
// terminal it makes inside the container.
static Napi::Value OpenPty(const Napi::CallbackInfo& info) {
  int64_t rows = 0, cols = 0;
  if (!NumberArg(info, 0, "rows", &rows) || !NumberArg(info, 1, "cols", &cols)) return info.Env().Undefined();
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) {
    ErrnoError(info.Env(), errno, "posix_openpt", "/dev/ptmx").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  char name[128];
  int slave = -1;
  if (grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, name, sizeof name) != 0 ||
      (slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
    int err = errno;
    close(master);
    ErrnoError(info.Env(), err, "openpty", "/dev/ptmx").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  struct winsize ws = {};
  ws.ws_row = static_cast<unsigned short>(rows);
  ws.ws_col = static_cast<unsigned short>(cols);
  ioctl(master, TIOCSWINSZ, &ws);
  // Raw from the start: this pair only carries bytes between the client and
  // the container's own terminal, which does the echo and line editing.
  struct termios t;
  if (tcgetattr(slave, &t) == 0) {
    cfmakeraw(&t);
    tcsetattr(slave, TCSANOW, &t);
  }
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("master", master);
  out.Set("slave", slave);
  return out;
}

void InitSockets(Napi::Env env, Napi::Object exports) {
  exports.Set("openpty", Napi::Function::New(env, OpenPty, "openpty"));
  exports.Set("connectInNetns", Napi::Function::New(env, ConnectInNetns, "connectInNetns"));
  exports.Set("attachPackets", Napi::Function::New(env, AttachPackets, "attachPackets"));
  exports.Set("setWinsize", Napi::Function::New(env, SetWinsize, "setWinsize"));
  exports.Set("unreadBytes", Napi::Function::New(env, UnreadBytes, "unreadBytes"));
}

}  // namespace cradle
