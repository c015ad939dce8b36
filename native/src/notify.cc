#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "errno_error.h"
#include "exports.h"

namespace cradle {

// sdNotify(socketPath, message): one datagram to systemd's NOTIFY_SOCKET.
// Node has no unix datagram sockets, and an external systemd-notify would
// be reported from its own pid, which systemd ignores under NotifyAccess=main.
// A path starting with "@" is in the abstract namespace, as systemd writes it.
static Napi::Value SdNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  std::string message;
  if (!StringArg(info, 0, "socketPath", &path) || !StringArg(info, 1, "message", &message)) return env.Undefined();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path) || (path[0] != '/' && path[0] != '@')) {
    Napi::Error::New(env, "NOTIFY_SOCKET must be an absolute path or start with @").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ErrnoError(env, errno, "socket", path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  ssize_t sent;
  do {
    sent = sendto(fd, message.data(), message.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len);
  } while (sent < 0 && errno == EINTR);
  int err = errno;
  close(fd);
  if (sent < 0) ErrnoError(env, err, "sendto", path).ThrowAsJavaScriptException();
  return env.Undefined();
}

void InitNotify(Napi::Env env, Napi::Object exports) { exports.Set("sdNotify", Napi::Function::New(env, SdNotify, "sdNotify")); }

}  // namespace cradle
