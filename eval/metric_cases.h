// Reader for metric case files: JSON Lines, one object per line,
//   {"id": str, "prediction": str, "references": [str, ...], "options": {...} | null, "expected": {...}}
// ("options" and "expected" optional; "expected" maps score names to numbers, as in
// shared/golden/metrics/*.jsonl). Blank lines are skipped. Strings keep their code points exactly.
// A malformed line throws one ctx::Error "FILE:LINE: what is wrong". Thread-compatible.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/metric.h"

namespace ctx {

struct MetricCase {
  std::string id;
  std::string prediction;
  std::vector<std::string> references;
  nlohmann::json options;  // null when absent
  Scores expected;         // in file order; empty when absent
  size_t line = 0;         // 1-based line number in the file
};

// Parses one line; `where` (e.g. "cases.jsonl:12") prefixes error messages.
MetricCase parse_metric_case(const std::string& line, const std::string& where);
// Reads a whole file. Throws ctx::Error if it cannot be read or a line is malformed.
std::vector<MetricCase> read_metric_cases(const std::string& path);

// {"id": ..., "scores": {...}} as one JSON line (no trailing newline); doubles in shortest round-trip form.
std::string format_score_line(const std::string& id, const Scores& scores);

}  // namespace ctx
