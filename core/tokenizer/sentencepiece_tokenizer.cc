#include "core/tokenizer/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <cstdlib>

#include "core/base/error.h"
#include "core/base/mapped_file.h"

namespace ctx {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581, sentencepiece's space marker

std::string replace_space_symbols(std::string_view piece) {
  std::string out;
  out.reserve(piece.size());
  for (size_t i = 0; i < piece.size();) {
    if (piece.substr(i, kSpaceSymbol.size()) == kSpaceSymbol) {
      out += ' ';
      i += kSpaceSymbol.size();
    } else {
      out += piece[i++];
    }
  }
  return out;
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer() : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::load(const std::string& path) {
  // Read the bytes ourselves so that a missing file gets our usual "path: cannot open" message.
  MappedFile file = MappedFile::open(path);
  if (file.size() == 0) fail(path, ": empty file, expected a sentencepiece model");
  std::unique_ptr<SentencePieceTokenizer> t(new SentencePieceTokenizer());
  t->path_ = path;
  auto status = t->sp_->LoadFromSerializedProto(
      std::string_view(reinterpret_cast<const char*>(file.data()), file.size()));
  if (!status.ok()) fail(path, ": not a valid sentencepiece model: ", status.ToString());
  if (t->sp_->GetPieceSize() <= 0) fail(path, ": sentencepiece model has an empty vocabulary");

  // The unk surface and whether decode strips the dummy-prefix space live in the model proto,
  // whose header Debian does not ship; ask the decoder instead.
  t->unk_surface_ = " \xE2\x81\x87 ";
  if (t->sp_->unk_id() >= 0) t->unk_surface_ = t->sp_->DecodeIds({t->sp_->unk_id()});
  for (int id = 0; id < t->sp_->GetPieceSize(); ++id) {
    const std::string& p = t->sp_->IdToPiece(id);
    if (t->sp_->IsControl(id) || t->sp_->IsUnknown(id) || t->sp_->IsByte(id)) continue;
    if (p.compare(0, kSpaceSymbol.size(), kSpaceSymbol) != 0) continue;
    t->strips_dummy_prefix_ = t->sp_->DecodeIds({id}) != replace_space_symbols(p);
    break;
  }
  return t;
}

void SentencePieceTokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_size()) fail(path_, ": token id ", id, " is outside the vocab [0, ", vocab_size(), ")");
}

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text, bool add_bos, bool add_eos) const {
  std::vector<int> ids;
  auto status = sp_->Encode(text, &ids);
  if (!status.ok()) fail(path_, ": sentencepiece encode failed: ", status.ToString());
  std::vector<int32_t> out;
  out.reserve(ids.size() + 2);
  if (add_bos) {
    if (bos_id() < 0) fail(path_, ": BOS requested but the sentencepiece model defines none");
    out.push_back(bos_id());
  }
  out.insert(out.end(), ids.begin(), ids.end());
  if (add_eos) {
    if (eos_id() < 0) fail(path_, ": EOS requested but the sentencepiece model defines none");
    out.push_back(eos_id());
  }
  return out;
}

std::string SentencePieceTokenizer::decode(std::span<const int32_t> ids) const {
  std::vector<int> v;
  v.reserve(ids.size());
  for (int32_t id : ids) {
    check_id(id);
    v.push_back(id);
  }
  std::string text;
  auto status = sp_->Decode(v, &text);
  if (!status.ok()) fail(path_, ": sentencepiece decode failed: ", status.ToString());
  return text;
}

std::string SentencePieceTokenizer::decode_next(int32_t prev, int32_t id) const {
  check_id(id);
  if (sp_->IsControl(id)) return "";
  if (sp_->IsUnknown(id)) return unk_surface_;
  std::string_view p = sp_->IdToPiece(id);
  if (sp_->IsByte(id)) {  // "<0xNN>"
    return std::string(1, static_cast<char>(std::strtol(std::string(p.substr(3, 2)).c_str(), nullptr, 16)));
  }
  if (strips_dummy_prefix_ && (prev < 0 || prev == bos_id()) && p.substr(0, kSpaceSymbol.size()) == kSpaceSymbol) {
    p.remove_prefix(kSpaceSymbol.size());
  }
  return replace_space_symbols(p);
}

std::string SentencePieceTokenizer::piece(int32_t id) const {
  check_id(id);
  return sp_->IdToPiece(id);
}

int32_t SentencePieceTokenizer::vocab_size() const { return sp_->GetPieceSize(); }
int32_t SentencePieceTokenizer::bos_id() const { return sp_->bos_id(); }
int32_t SentencePieceTokenizer::eos_id() const { return sp_->eos_id(); }

}  // namespace ctx
