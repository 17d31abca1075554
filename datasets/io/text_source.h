// Streaming reader of a data file, gzip or plain: a file that starts with the gzip magic bytes is
// inflated on the fly through zlib (whatever its name; `.gz` by convention), never written to disk.
// Also reads from a string (TextSource::from_string) so that parsers can be tested and fuzzed
// without files. Not thread-safe: one reader per thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace ctx::data {

class TextSource {
 public:
  // Opens `path`. Throws ctx::Error naming the path if it cannot be opened.
  explicit TextSource(const std::string& path);
  // A source over `data`; `name` stands for the file name in error messages.
  static std::unique_ptr<TextSource> from_string(std::string name, std::string data);
  ~TextSource();
  TextSource(const TextSource&) = delete;
  TextSource& operator=(const TextSource&) = delete;

  // The next byte, or -1 at the end. Throws ctx::Error "NAME: ..." on a read error (a corrupt or
  // truncated gzip stream).
  int get() {
    if (pos_ == end_ && !refill()) return -1;
    return static_cast<unsigned char>(buf_[pos_++]);
  }
  // The next line without its "\n" (and a "\r" before it); false at the end of the input.
  bool next_line(std::string& line);
  // 1-based number of the line that the last next_line() returned (0 before the first).
  size_t line() const { return line_; }
  // Appends everything not read yet to `out`.
  void read_rest(std::string& out);
  const std::string& name() const { return name_; }

 private:
  TextSource() = default;
  bool refill();

  std::string name_;
  void* gz_ = nullptr;  // gzFile; null for a string source
  std::string buf_;
  size_t pos_ = 0, end_ = 0;
  size_t line_ = 0;
};

// The whole (inflated) content of `path`. Throws ctx::Error naming the path.
std::string read_text_file(const std::string& path);

}  // namespace ctx::data
