// Writing gnuplot data files and scripts, and running gnuplot (Debian package gnuplot-nox).
#pragma once

#include <string>
#include <string_view>

namespace ctx::plots {

// A gnuplot script string literal: single-quoted, where nothing is special but '' for a quote
// (line breaks, which would end the command, become spaces).
std::string gnuplot_string(std::string_view text);

// A data-file column holding text: double-quoted. Gnuplot data files cannot escape a double quote
// or a line break, so those become ' and a space.
std::string data_text(std::string_view text);

// A number for a data file or script: with digits = 0 the shortest text that reads back to the same
// double (measured values, kept exact for audits), else rounded to `digits` significant digits
// (layout positions and ranges).
std::string data_number(double value, int digits = 0);

// The script lines that render the plot `plot_command` (one gnuplot command, may continue over
// lines with '\') as `<stem>.png` (pngcairo) and `<stem>.svg`, both 1200x800.
std::string render_to_png_and_svg(const std::string& stem, const std::string& plot_command);

// Runs `gnuplot <script>` with `dir` as working directory (the script names its files relative to
// it, so a user can re-run it there). Throws ctx::Error "gnuplot not found: ..." when gnuplot is not
// on PATH, and one carrying gnuplot's stderr when it exits non-zero.
void run_gnuplot(const std::string& dir, const std::string& script);

}  // namespace ctx::plots
