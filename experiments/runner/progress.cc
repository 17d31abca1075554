#include "experiments/runner/progress.h"

#include <cmath>

namespace ctx::runner {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long long s = std::llround(seconds);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  }
  return buf;
}

void Progress::trial_started(int64_t index, int64_t total, const std::string& label) {
  index_ = index, total_ = total, label_ = label, last_decile_ = -1;
  if (!interactive_) std::fprintf(out_, "[trial %lld/%lld] %s: started\n", (long long)index + 1, (long long)total, label.c_str());
  std::fflush(out_);
}

void Progress::examples(const TrialProgress& p) {
  const double rate = p.elapsed_s > 0 ? double(p.examples_done) / p.elapsed_s : 0;
  const double eta = rate > 0 ? double(p.examples_total - p.examples_done) / rate : NAN;
  if (interactive_) {
    std::fprintf(out_, "\r\033[K[trial %lld/%lld] %s | examples %lld/%lld | %.1f tok/s | ETA %s", (long long)index_ + 1,
                 (long long)total_, label_.c_str(), (long long)p.examples_done, (long long)p.examples_total,
                 p.new_tokens_per_s, format_duration(eta).c_str());
  } else {
    const int decile = p.examples_total ? int(10 * p.examples_done / p.examples_total) : 10;
    if (decile == last_decile_ || decile == 10) return;
    last_decile_ = decile;
    std::fprintf(out_, "[trial %lld/%lld] %s: examples %lld/%lld, %.1f tok/s, ETA %s\n", (long long)index_ + 1,
                 (long long)total_, label_.c_str(), (long long)p.examples_done, (long long)p.examples_total,
                 p.new_tokens_per_s, format_duration(eta).c_str());
  }
  std::fflush(out_);
}

void Progress::trial_finished(const std::string& status, const std::string& summary) {
  if (interactive_) std::fputs("\r\033[K", out_);
  std::fprintf(out_, "[trial %lld/%lld] %s: %s%s%s\n", (long long)index_ + 1, (long long)total_, label_.c_str(),
               status.c_str(), summary.empty() ? "" : " | ", summary.c_str());
  std::fflush(out_);
}

}  // namespace ctx::runner
