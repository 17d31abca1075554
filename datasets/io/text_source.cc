#include "datasets/io/text_source.h"

#include <zlib.h>

#include "core/base/error.h"

namespace ctx::data {

namespace {
constexpr size_t kChunk = 1 << 16;
}

TextSource::TextSource(const std::string& path) : name_(path) {
  // gzopen reads a file without the gzip header as is ("transparent" mode), so one path serves both.
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) fail("cannot open '", path, "'");
  gzbuffer(f, kChunk);
  gz_ = f;
  buf_.resize(kChunk);
}

std::unique_ptr<TextSource> TextSource::from_string(std::string name, std::string data) {
  std::unique_ptr<TextSource> s(new TextSource);
  s->name_ = std::move(name);
  s->buf_ = std::move(data);
  s->end_ = s->buf_.size();
  return s;
}

TextSource::~TextSource() {
  if (gz_) gzclose(static_cast<gzFile>(gz_));
}

bool TextSource::refill() {
  if (!gz_) return false;
  auto f = static_cast<gzFile>(gz_);
  const int n = gzread(f, buf_.data(), unsigned(buf_.size()));
  int err = Z_OK;
  const char* msg = gzerror(f, &err);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END))
    fail(name_, ": cannot read (", msg ? msg : "zlib error", "; corrupt or truncated gzip?)");
  pos_ = 0;
  end_ = size_t(n);
  return n > 0;
}

bool TextSource::next_line(std::string& line) {
  line.clear();
  int c = get();
  if (c < 0) return false;
  ++line_;
  while (c >= 0 && c != '\n') {
    line.push_back(char(c));
    c = get();
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

void TextSource::read_rest(std::string& out) {
  do out.append(buf_, pos_, end_ - pos_);
  while ((pos_ = end_, refill()));
}

std::string read_text_file(const std::string& path) {
  TextSource src(path);
  std::string out;
  src.read_rest(out);
  return out;
}

}  // namespace ctx::data
