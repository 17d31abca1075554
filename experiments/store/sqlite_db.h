// Thin RAII wrappers over the SQLite C API for the run store: one connection (Db) and one prepared
// statement (Statement). Every failure throws ctx::Error "run store FILE: what failed: sqlite message";
// a locked database throws the subclass Busy, which Db::retry / Db::write turn into a bounded retry.
// Not thread-safe (like RunStore): one Db per thread or process.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "core/base/error.h"

struct sqlite3;
struct sqlite3_stmt;

namespace ctx::store::sqlite {

// Another connection holds the lock (SQLITE_BUSY / SQLITE_LOCKED) even after the busy timeout.
class Busy : public Error {
 public:
  using Error::Error;
};

// Throws Busy or Error: "run store FILE: WHAT failed: sqlite3_errmsg".
[[noreturn]] void throw_sqlite(sqlite3* db, const std::string& file, int rc, std::string_view what);

class Db;

// A prepared statement of a Db (which must outlive it).
class Statement {
 public:
  Statement(const Db& db, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binds args to ?1, ?2, ... in order: integers, floating point, text (anything convertible to
  // std::string_view), std::optional of those, or std::nullopt for NULL.
  template <class... Args>
  Statement& bind(const Args&... args) {
    int index = 0;
    (bind_one(++index, args), ...);
    return *this;
  }
  // Clears the result state (bindings stay until rebound) so the statement can run again.
  Statement& reset();

  bool step();  // true while a row is ready
  void run();   // steps to the end, for statements without result rows

  int64_t int64(int column) const;
  double real(int column) const;  // NULL (how SQLite stores NaN) reads as NaN
  std::string text(int column) const;
  std::optional<int64_t> optional_int64(int column) const;

 private:
  template <class T>
  struct is_optional : std::false_type {};
  template <class T>
  struct is_optional<std::optional<T>> : std::true_type {};

  template <class T>
  void bind_one(int index, const T& value) {
    if constexpr (std::is_same_v<T, std::nullopt_t>) {
      bind_null(index);
    } else if constexpr (is_optional<T>::value) {
      if (value) bind_one(index, *value);
      else bind_null(index);
    } else if constexpr (std::is_floating_point_v<T>) {
      bind_real(index, value);
    } else if constexpr (std::is_integral_v<T>) {
      bind_int64(index, static_cast<int64_t>(value));
    } else {
      bind_text(index, std::string_view(value));
    }
  }
  void bind_null(int index);
  void bind_int64(int index, int64_t value);
  void bind_real(int index, double value);
  void bind_text(int index, std::string_view value);
  [[noreturn]] void fail(int rc) const;

  const Db& db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::string sql_;  // for error messages
};

// One open connection to `file`.
class Db {
 public:
  // Opens (creating if absent). Statements wait up to busy_timeout_ms on another connection's lock;
  // retry() and the transactions run their body up to `attempts` times while it stays busy.
  Db(std::string file, int busy_timeout_ms, int attempts);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  const std::string& file() const { return file_; }
  sqlite3* handle() const { return db_; }

  Statement prepare(std::string_view sql) const { return Statement(*this, sql); }
  // Runs SQL without parameters (DDL, pragmas, BEGIN/COMMIT); may hold several statements.
  void exec(std::string_view sql) const;
  int64_t last_insert_rowid() const;
  int64_t changes() const;  // rows changed by the last statement
  bool in_transaction() const;

  // Throws Error "run store FILE: message".
  [[noreturn]] void fail(std::string_view message) const;

  // Runs body(), again after a rollback and a short randomised backoff while it throws Busy, at most
  // `attempts` times; then throws Error naming the file.
  template <class F>
  auto retry(F&& body) const -> std::invoke_result_t<F&> {
    for (int attempt = 1;; ++attempt) {
      try {
        return body();
      } catch (const Busy& e) {
        rollback();
        if (attempt >= attempts_) throw Error(str_cat(e.what(), " (gave up after ", attempt, " attempts)"));
        backoff(attempt);
      } catch (...) {
        rollback();
        throw;
      }
    }
  }

  // body() inside one transaction (retried as a whole). Inside an enclosing transaction body() just
  // runs: the outer transaction owns commit and retry.
  template <class F>
  auto read(F&& body) const -> std::invoke_result_t<F&> {
    return transaction("BEGIN", body);
  }
  // BEGIN IMMEDIATE takes the write lock up front, so a writer never has to upgrade a read snapshot
  // that another writer has since invalidated (which SQLite reports as busy without waiting).
  template <class F>
  auto write(F&& body) const -> std::invoke_result_t<F&> {
    return transaction("BEGIN IMMEDIATE", body);
  }

 private:
  template <class F>
  auto transaction(std::string_view begin, F& body) const -> std::invoke_result_t<F&> {
    if (in_transaction()) return body();
    return retry([&] {
      exec(begin);
      if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
        body();
        exec("COMMIT");
      } else {
        auto result = body();
        exec("COMMIT");
        return result;
      }
    });
  }
  void rollback() const noexcept;  // if a transaction is open
  void backoff(int attempt) const;

  std::string file_;
  sqlite3* db_ = nullptr;
  int attempts_;
};

}  // namespace ctx::store::sqlite
