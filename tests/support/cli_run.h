// Runs a shell command for end-to-end tests of the ctxlab binary: exit code and output.
#pragma once

#include <string>

namespace ctx::test {

struct CliRun {
  int exit_code = -1;  // -1 when the process did not exit normally
  std::string out;     // stdout and stderr together
};

// Runs `command` through /bin/sh with stderr merged into stdout.
CliRun run_command(const std::string& command);

}  // namespace ctx::test
