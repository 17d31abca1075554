// ctxlab ls | show | compare | export | merge: reading and combining run stores.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/base/error.h"
#include "experiments/cli/cli_common.h"
#include "experiments/cli/commands.h"
#include "experiments/store/run_store.h"

namespace ctx::cli {

namespace {

void add_db_option(po::options_description& desc) {
  desc.add_options()("db", po::value<std::string>()->default_value("ctxlab.db"), "run store (SQLite file)");
}

// Opens an existing store (never creates one by accident).
std::unique_ptr<store::RunStore> open_store(const po::variables_map& vm) {
  const std::string path = vm["db"].as<std::string>();
  if (!std::ifstream(path)) fail(path, ": no such run store (run an experiment first: ctxlab run CONFIG --db ", path, ")");
  return std::make_unique<store::RunStore>(path);
}

std::string fmt(double v) {
  if (!std::isfinite(v)) return "-";
  char buf[32];
  const double a = std::fabs(v);
  if (a != 0 && (a >= 1e7 || a < 1e-3)) {
    std::snprintf(buf, sizeof buf, "%.4g", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.4f", v);
    std::string s = buf;  // trim trailing zeros
    while (s.size() > 1 && s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s;
  }
  return buf;
}

double metric_or_nan(const store::RunSummary& r, const std::string& name, const std::string& scope = "") {
  for (const auto& m : r.metrics)
    if (m.scope == scope && m.name == name) return m.value;
  return NAN;
}

std::string param(const store::RunRecord& r, const std::string& key) {
  auto it = r.params.find(key);
  return it == r.params.end() ? "" : it->second;
}

std::vector<int64_t> parse_run_ids(const std::vector<std::string>& ids) {
  std::vector<int64_t> out;
  for (const auto& s : ids) out.push_back(parse_size_list(s, "RUN id").at(0));
  return out;
}

std::vector<store::RunSummary> summaries_of(const store::RunStore& s, const std::vector<int64_t>& ids) {
  std::vector<store::RunSummary> out;
  const auto all = s.run_summaries();
  for (int64_t id : ids) {
    bool found = false;
    for (const auto& r : all)
      if (r.run.id == id) out.push_back(r), found = true;
    if (!found) fail("no run ", id, " in ", s.path(), " (see ctxlab ls)");
  }
  return out;
}

}  // namespace

int cmd_ls(const Args& args) {
  po::options_description desc("ls options");
  add_db_option(desc);
  desc.add_options()("experiment", po::value<std::string>()->default_value(""), "only runs of this experiment")(
      "status", po::value<std::string>()->default_value(""), "only runs with this status (ok, oom, unsupported, failed, running)")(
      "where", po::value<std::vector<std::string>>()->composing(), "only runs whose param KEY equals VALUE (KEY=VALUE), e.g. --where kv=l2norm");
  po::variables_map vm;
  if (!parse_options("ls", "[--db FILE] [--experiment NAME] [--status S] [--where KEY=VALUE]...", desc, args, vm)) return 0;
  auto s = open_store(vm);
  store::RunFilter filter;
  filter.experiment = vm["experiment"].as<std::string>();
  filter.status = vm["status"].as<std::string>();
  if (vm.count("where"))
    for (const auto& w : vm["where"].as<std::vector<std::string>>()) {
      const size_t eq = w.find('=');
      if (eq == std::string::npos || eq == 0) fail("--where ", w, ": expected KEY=VALUE");
      filter.params[w.substr(0, eq)] = w.substr(eq + 1);
    }
  std::printf("experiments in %s:\n", s->path().c_str());
  for (const auto& [id, name] : s->experiments()) std::printf("  %lld  %s\n", (long long)id, name.c_str());
  const auto runs = s->run_summaries(filter);
  std::printf("\n%-5s %-18s %-5s %-11s %-9s %-10s %-9s %-9s %7s %5s %8s %10s %9s\n", "run", "experiment", "trial", "status",
              "attention", "kv", "kv_quant", "quant", "context", "batch", "quality", "lat_p50ms", "mem_p95GB");
  for (const auto& r : runs) {
    std::printf("%-5lld %-18s %-5lld %-11s %-9s %-10s %-9s %-9s %7s %5s %8s %10s %9s\n", (long long)r.run.id,
                r.run.experiment.substr(0, 18).c_str(), (long long)r.run.trial_index, r.run.status.c_str(),
                param(r.run, "attention").c_str(), param(r.run, "kv").c_str(), param(r.run, "kv_quant").c_str(),
                param(r.run, "quant").c_str(), param(r.run, "context_length").c_str(), param(r.run, "batch_size").c_str(),
                fmt(metric_or_nan(r, "quality")).c_str(), fmt(metric_or_nan(r, "latency_ms_p50")).c_str(),
                fmt(metric_or_nan(r, "peak_mem_gb_p95")).c_str());
  }
  std::printf("%zu runs\n", runs.size());
  return 0;
}

int cmd_show(const Args& args) {
  po::options_description desc("show options");
  add_db_option(desc);
  desc.add_options()("run", po::value<int64_t>()->required(), "run id (see ctxlab ls)")("examples", "also list every example");
  po::positional_options_description pos;
  pos.add("run", 1);
  po::variables_map vm;
  if (!parse_options("show", "RUN [--db FILE] [--examples]", desc, args, vm, &pos)) return 0;
  auto s = open_store(vm);
  const auto run = s->get_run(vm["run"].as<int64_t>());
  std::printf("run %lld of experiment %s (trial %lld): %s%s%s\n", (long long)run.id, run.experiment.c_str(),
              (long long)run.trial_index, run.status.c_str(), run.message.empty() ? "" : ": ", run.message.c_str());
  std::printf("started %s, finished %s, seed %lld%s\n", run.started_at.c_str(),
              run.finished_at.empty() ? "-" : run.finished_at.c_str(), (long long)run.seed,
              run.rerun_of ? (", rerun of run " + std::to_string(*run.rerun_of)).c_str() : "");
  std::printf("\nenvironment:\n  git commit %s\n  compiler   %s\n  cpu        %s\n  gpu        %s\n  driver     %s\n  host       %s\n",
              run.env.git_commit.c_str(), run.env.compiler.c_str(), run.env.cpu.c_str(),
              run.env.gpu.empty() ? "-" : run.env.gpu.c_str(), run.env.driver.empty() ? "-" : run.env.driver.c_str(),
              run.env.host.c_str());
  std::printf("\nconfig (hash %s):\n%s\n", run.config_hash.c_str(), nlohmann::json::parse(run.config).dump(2).c_str());
  std::printf("\nmetrics:\n  %-20s %-26s %s\n", "scope", "metric", "value");
  for (const auto& m : s->metrics(run.id))
    std::printf("  %-20s %-26s %s\n", m.scope.empty() ? "(run)" : m.scope.c_str(), m.name.c_str(), fmt(m.value).c_str());
  const auto examples = s->examples(run.id);
  std::printf("\n%zu examples stored\n", examples.size());
  if (vm.count("examples"))
    for (const auto& e : examples) {
      const auto q = e.scores.find("quality");
      std::string pred = e.prediction.substr(0, 60);
      for (char& c : pred)
        if (c == '\n') c = ' ';
      std::printf("  %-12s %-24s quality %-7s latency %8.1f ms  %s\n", e.dataset.c_str(), e.example_id.substr(0, 24).c_str(),
                  q == e.scores.end() ? "-" : fmt(q->second).c_str(), e.latency_ms, pred.c_str());
    }
  return 0;
}

int cmd_compare(const Args& args) {
  po::options_description desc("compare options");
  add_db_option(desc);
  desc.add_options()("runs", po::value<std::vector<std::string>>()->multitoken()->required(), "run ids; the first is the baseline")(
      "scope", po::value<std::string>(), "only this scope (\"\" = whole run, or a dataset label)");
  po::positional_options_description pos;
  pos.add("runs", -1);
  po::variables_map vm;
  if (!parse_options("compare", "RUN RUN... [--db FILE] [--scope LABEL]", desc, args, vm, &pos)) return 0;
  auto s = open_store(vm);
  const auto runs = summaries_of(*s, parse_run_ids(vm["runs"].as<std::vector<std::string>>()));
  if (runs.size() < 2) fail("compare needs at least two runs");
  std::vector<std::pair<std::string, std::string>> rows;  // (scope, name) in first-seen order
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& r : runs)
    for (const auto& m : r.metrics)
      if ((!vm.count("scope") || m.scope == vm["scope"].as<std::string>()) && seen.insert({m.scope, m.name}).second)
        rows.emplace_back(m.scope, m.name);
  std::printf("%-14s %-24s", "scope", "metric");
  for (const auto& r : runs) std::printf(" %12s", ("run " + std::to_string(r.run.id)).c_str());
  for (size_t i = 1; i < runs.size(); ++i) std::printf(" %16s", ("delta " + std::to_string(runs[i].run.id)).c_str());
  std::printf("\n%-14s %-24s", "", "");
  for (const auto& r : runs) {
    std::string label = param(r.run, "attention");
    for (const char* k : {"kv", "kv_quant", "quant"})
      if (param(r.run, k) != "none" && !param(r.run, k).empty()) label.append("+").append(param(r.run, k));
    std::printf(" %12s", label.substr(0, 12).c_str());
  }
  std::printf("\n");
  for (const auto& [scope, name] : rows) {
    std::printf("%-14s %-24s", scope.empty() ? "(run)" : scope.substr(0, 14).c_str(), name.c_str());
    const double base = metric_or_nan(runs[0], name, scope);
    for (const auto& r : runs) std::printf(" %12s", fmt(metric_or_nan(r, name, scope)).c_str());
    for (size_t i = 1; i < runs.size(); ++i) {
      const double v = metric_or_nan(runs[i], name, scope);
      char buf[48] = "-";
      if (std::isfinite(v) && std::isfinite(base)) {
        if (base != 0) {
          std::snprintf(buf, sizeof buf, "%+.4g (%+.1f%%)", v - base, 100 * (v - base) / std::fabs(base));
        } else {
          std::snprintf(buf, sizeof buf, "%+.4g", v - base);
        }
      }
      std::printf(" %16s", buf);
    }
    std::printf("\n");
  }
  return 0;
}

int cmd_export(const Args& args) {
  po::options_description desc("export options");
  add_db_option(desc);
  desc.add_options()("runs", po::value<std::vector<std::string>>()->multitoken(), "run ids (default: every run of --experiment)")(
      "experiment", po::value<std::string>()->default_value(""), "export the runs of this experiment")(
      "format", po::value<std::string>()->default_value("jsonl"), "jsonl or csv")(
      "out,o", po::value<std::string>()->default_value("-"), "output file (- = stdout)");
  po::positional_options_description pos;
  pos.add("runs", -1);
  po::variables_map vm;
  if (!parse_options("export", "[RUN...] [--experiment NAME] [--format jsonl|csv] [-o FILE] [--db FILE]", desc, args, vm, &pos))
    return 0;
  const std::string format = vm["format"].as<std::string>();
  if (format != "jsonl" && format != "csv") fail("--format ", format, ": expected jsonl or csv");
  auto s = open_store(vm);
  std::vector<store::RunSummary> runs;
  if (vm.count("runs")) {
    runs = summaries_of(*s, parse_run_ids(vm["runs"].as<std::vector<std::string>>()));
  } else {
    store::RunFilter f;
    f.experiment = vm["experiment"].as<std::string>();
    if (f.experiment.empty()) fail("give run ids or --experiment NAME");
    runs = s->run_summaries(f);
    if (runs.empty()) fail("no runs of experiment '", f.experiment, "' in ", s->path());
  }
  // One row per run and scope: the seeds' JSONL fields first, then every other metric.
  static const std::pair<const char*, const char*> kAliases[] = {{"rouge1", "rouge1_fmeasure"}, {"rouge2", "rouge2_fmeasure"},
                                                                 {"rougeL", "rougeL_fmeasure"}, {"rougeLsum", "rougeLsum_fmeasure"}};
  std::vector<nlohmann::ordered_json> rows;
  for (const auto& r : runs) {
    std::vector<std::string> scopes{""};
    for (const auto& m : r.metrics)
      if (std::find(scopes.begin(), scopes.end(), m.scope) == scopes.end()) scopes.push_back(m.scope);
    for (const auto& scope : scopes) {
      nlohmann::ordered_json row;
      row["run_id"] = r.run.id;
      row["experiment"] = r.run.experiment;
      row["status"] = r.run.status;
      row["dataset"] = scope.empty() ? "all" : scope;
      for (const char* k : {"attention_spec", "kv_spec", "kv_quant_spec", "quant_spec"})
        row[std::string(k).substr(0, std::string(k).size() - 5)] = param(r.run, k);
      row["context_length"] = std::stoll(param(r.run, "context_length").empty() ? "0" : param(r.run, "context_length"));
      row["batch_size"] = std::stoll(param(r.run, "batch_size").empty() ? "1" : param(r.run, "batch_size"));
      for (const char* k : {"context_tokens", "latency_ms_p50", "ttft_ms_p50", "tok_per_s_p50", "peak_mem_gb_p95", "meteor"}) {
        const double v = metric_or_nan(r, k, scope);
        row[k] = std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
      }
      for (const auto& [alias, key] : kAliases) {
        const double v = metric_or_nan(r, key, scope);
        row[alias] = std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
      }
      for (const auto& m : r.metrics)
        if (m.scope == scope && !row.contains(m.name)) row[m.name] = m.value;
      rows.push_back(std::move(row));
    }
  }
  std::ofstream file;
  const std::string out_path = vm["out"].as<std::string>();
  if (out_path != "-") {
    file.open(out_path);
    if (!file) fail(out_path, ": cannot write");
  }
  std::ostream& out = out_path == "-" ? std::cout : file;
  if (format == "jsonl") {
    for (const auto& row : rows) out << row.dump() << "\n";
  } else {
    std::vector<std::string> columns;  // union in first-seen order
    for (const auto& row : rows)
      for (const auto& [k, v] : row.items())
        if (std::find(columns.begin(), columns.end(), k) == columns.end()) columns.push_back(k);
    auto csv = [](const std::string& s) {
      if (s.find_first_of(",\"\n") == std::string::npos) return s;
      std::string q = "\"";
      for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
      return q + "\"";
    };
    for (size_t i = 0; i < columns.size(); ++i) out << (i ? "," : "") << csv(columns[i]);
    out << "\n";
    for (const auto& row : rows) {
      for (size_t i = 0; i < columns.size(); ++i) {
        if (i) out << ",";
        if (!row.contains(columns[i]) || row[columns[i]].is_null()) continue;
        const auto& v = row[columns[i]];
        out << csv(v.is_string() ? v.get<std::string>() : v.dump());
      }
      out << "\n";
    }
  }
  if (out_path != "-") std::fprintf(stderr, "wrote %zu rows to %s\n", rows.size(), out_path.c_str());
  return 0;
}

int cmd_merge(const Args& args) {
  po::options_description desc("merge options");
  desc.add_options()("inputs", po::value<std::vector<std::string>>()->multitoken()->required(), "shard stores to merge")(
      "out,o", po::value<std::string>()->required(), "the merged store (created or extended)");
  po::positional_options_description pos;
  pos.add("inputs", -1);
  po::variables_map vm;
  if (!parse_options("merge", "A.db B.db... -o ALL.db", desc, args, vm, &pos)) return 0;
  store::RunStore out(vm["out"].as<std::string>());
  for (const auto& in : vm["inputs"].as<std::vector<std::string>>()) {
    if (!std::ifstream(in)) fail(in, ": no such run store");
    const int64_t n = out.merge_from(in);
    std::printf("%s: %lld runs merged into %s\n", in.c_str(), (long long)n, out.path().c_str());
  }
  return 0;
}

}  // namespace ctx::cli
