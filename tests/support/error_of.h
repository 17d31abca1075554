// The message of the ctx::Error that a callable throws, for asserting one-line user errors.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "core/base/error.h"

namespace ctx::test {

// Returns e.what() of the ctx::Error thrown by f(); adds a test failure and returns "" if f() throws
// nothing. Any other exception propagates (and fails the test).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a ctx::Error";
  return "";
}

}  // namespace ctx::test
