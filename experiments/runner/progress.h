// Progress of a sweep for people: on a terminal one status line rewritten in place (trial i/N, its
// plugins, examples done, generated tok/s, ETA); otherwise (logs, CI) plain lines: one when a trial
// starts, at most one per 10% of its examples, and one when it ends. Writes to the stream given
// (stderr by default). Not thread-safe.
#pragma once

#include <cstdio>
#include <string>

#include "experiments/runner/trial_runner.h"

namespace ctx::runner {

class Progress {
 public:
  // interactive: rewrite one line (pass isatty(fileno(out))).
  Progress(std::FILE* out, bool interactive) : out_(out), interactive_(interactive) {}

  void trial_started(int64_t index, int64_t total, const std::string& label);
  void examples(const TrialProgress& p);
  void trial_finished(const std::string& status, const std::string& summary);

 private:
  std::FILE* out_;
  bool interactive_;
  int64_t index_ = 0, total_ = 0;
  std::string label_;
  int last_decile_ = -1;
};

std::string format_duration(double seconds);  // "1:05:03", "4:07", "0:09"

}  // namespace ctx::runner
