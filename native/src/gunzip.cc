#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "exports.h"

namespace cradle {

// A gzip decoder that runs synchronously on the calling thread and writes
// into the caller's buffer. Node's zlib streams inflate on the thread pool
// and allocate every output chunk; the layer unpack worker is a thread of
// its own, and a pull's cost here is mostly per-byte copies and fresh pages
// (docs/BENCHMARKS.md). zlib is the copy Node itself links and exports for
// addons, so there is no second zlib in the process.
class Gunzip : public Napi::ObjectWrap<Gunzip> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Gunzip", {InstanceMethod("inflate", &Gunzip::Inflate), InstanceMethod("close", &Gunzip::Close)});
  }

  explicit Gunzip(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Gunzip>(info) {
    // 16 + 15: gzip framing around a 32 KiB window, the largest deflate uses.
    if (inflateInit2(&stream_, 16 + 15) != Z_OK) {
      Napi::Error::New(info.Env(), "gzip: cannot initialise zlib").ThrowAsJavaScriptException();
      return;
    }
    open_ = true;
  }

  ~Gunzip() override {
    if (open_) inflateEnd(&stream_);
  }

 private:
  // inflate(input, output): decodes as much of `input` into `output` as fits.
  // Returns {read, written, end}: bytes taken from input, bytes put into
  // output, and whether the input so far ends exactly at the end of a gzip
  // member. A member that starts where the last ended is decoded on (gzip(1)
  // and Node's gunzip allow concatenated members); other bytes after the
  // end are ignored, as both of those do.
  Napi::Value Inflate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!open_) {
      Napi::Error::New(env, "gzip: decoder is closed").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (info.Length() < 2 || !info[0].IsBuffer() || !info[1].IsBuffer()) {
      Napi::TypeError::New(env, "inflate(input: Buffer, output: Buffer)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Buffer<uint8_t> in = info[0].As<Napi::Buffer<uint8_t>>();
    Napi::Buffer<uint8_t> out = info[1].As<Napi::Buffer<uint8_t>>();
    size_t read = 0;
    size_t written = 0;
    if (ended_ && in.Length() > 0) {
      if (in.Data()[0] == 0x1f) {
        inflateReset(&stream_);
        ended_ = false;
        trailing_ = false;
      } else {
        trailing_ = true;
      }
    }
    if (trailing_) {
      read = in.Length();
    } else if (!ended_) {
      // zlib counts in 32 bits: a larger buffer is taken in parts, the caller calling again for the rest.
      const uInt in_len = static_cast<uInt>(std::min<size_t>(in.Length(), UINT32_MAX));
      const uInt out_len = static_cast<uInt>(std::min<size_t>(out.Length(), UINT32_MAX));
      stream_.next_in = in.Data();
      stream_.avail_in = in_len;
      stream_.next_out = out.Data();
      stream_.avail_out = out_len;
      int rc = inflate(&stream_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        ended_ = true;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        std::string message = std::string("gzip: ") + (stream_.msg != nullptr ? stream_.msg : zError(rc));
        Napi::Error::New(env, message).ThrowAsJavaScriptException();
        return env.Undefined();
      }
      read = in_len - stream_.avail_in;
      written = out_len - stream_.avail_out;
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("read", static_cast<double>(read));
    result.Set("written", static_cast<double>(written));
    result.Set("end", ended_);
    return result;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (open_) inflateEnd(&stream_);
    open_ = false;
    return info.Env().Undefined();
  }

  z_stream stream_{};
  bool open_ = false;
  bool ended_ = false;
  bool trailing_ = false;
};

void InitGunzip(Napi::Env env, Napi::Object exports) { exports.Set("Gunzip", Gunzip::Define(env)); }

}  // namespace cradle
