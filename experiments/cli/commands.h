// The ctxlab subcommands. Each takes the arguments after its name and returns the exit code;
// ctx::Error and option errors propagate to main(), which prints them as one line.
#pragma once

#include <string>
#include <vector>

namespace ctx::cli {

using Args = std::vector<std::string>;

int cmd_generate(const Args& args);
int cmd_logits(const Args& args);
int cmd_doctor(const Args& args);
int cmd_bench(const Args& args);
int cmd_plugins(const Args& args);
int cmd_fidelity(const Args& args);
int cmd_score(const Args& args);
int cmd_data(const Args& args);
int cmd_run(const Args& args);
int cmd_rerun(const Args& args);
int cmd_ls(const Args& args);
int cmd_show(const Args& args);
int cmd_compare(const Args& args);
int cmd_export(const Args& args);
int cmd_merge(const Args& args);
int cmd_slurm(const Args& args);
int cmd_plot(const Args& args);

}  // namespace ctx::cli
