#include "plots/gnuplot.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "core/base/error.h"

extern char** environ;

namespace ctx::plots {

std::string gnuplot_string(std::string_view text) {
  std::string s = "'";
  for (char c : text) s += c == '\'' ? std::string("''") : std::string(1, c == '\n' || c == '\r' ? ' ' : c);
  return s + "'";
}

std::string data_text(std::string_view text) {
  std::string s = "\"";
  for (char c : text) s += c == '"' ? '\'' : (c == '\n' || c == '\r') ? ' ' : c;
  return s + "\"";
}

std::string data_number(double value, int digits) {
  char buf[64];
  auto [end, ec] = digits > 0 ? std::to_chars(buf, buf + sizeof buf, value, std::chars_format::general, digits)
                              : std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, end);
}

std::string render_to_png_and_svg(const std::string& stem, const std::string& plot_command) {
  return str_cat("set terminal pngcairo size 1200,800 enhanced font ',11'\n",
                 "set output ", gnuplot_string(stem + ".png"), "\n",
                 plot_command, "\n",
                 "set terminal svg size 1200,800 dynamic enhanced\n",
                 "set output ", gnuplot_string(stem + ".svg"), "\n",
                 "replot\n",
                 "unset output\n");
}

namespace {

// The executable `name` in a PATH folder, or "" if none. Searched here rather than by posix_spawnp
// so that "not installed" is told apart from other spawn failures.
std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = (std::filesystem::path(dir) / name).string();
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// gnuplot's stderr on one line: its non-blank lines, trimmed, joined with " | ".
std::string one_line(const std::string& text) {
  std::stringstream in(text);
  std::string line, out;
  while (std::getline(in, line)) {
    size_t b = line.find_first_not_of(" \t\r"), e = line.find_last_not_of(" \t\r");
    if (b == std::string::npos) continue;
    if (!out.empty()) out += " | ";
    out += line.substr(b, e - b + 1);
  }
  return out;
}

}  // namespace

void run_gnuplot(const std::string& dir, const std::string& script) {
  const std::string exe = find_on_path("gnuplot");
  if (exe.empty()) fail("gnuplot not found: install the Debian package gnuplot-nox");

  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) fail("cannot create a pipe for gnuplot: ", std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);  // the copy loses O_CLOEXEC
  std::string arg0 = "gnuplot", arg1 = script;
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  pid_t pid = 0;
  const int spawn_rc = ::posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(err_pipe[1]);
  if (spawn_rc != 0) {
    ::close(err_pipe[0]);
    fail("cannot run ", exe, " in ", dir, ": ", std::strerror(spawn_rc));
  }

  std::string err;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(err_pipe[0], buf, sizeof buf);
    if (n > 0) err.append(buf, static_cast<size_t>(n));
    else if (n == 0 || errno != EINTR) break;
  }
  ::close(err_pipe[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string how = WIFEXITED(status) ? str_cat("exit ", WEXITSTATUS(status))
                                        : str_cat("signal ", WTERMSIG(status));
    fail("gnuplot failed on ", (std::filesystem::path(dir) / script).string(), " (", how, "): ", one_line(err));
  }
}

}  // namespace ctx::plots
