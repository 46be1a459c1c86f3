#include "kapsl/error.h"

#include <gtest/gtest.h>

namespace kapsl {
namespace {

TEST(ErrorTest, NamedConstructorsSetCodeAndJoinDetail) {
  const Error e = Error::invalid_input("input 'x' has the wrong dtype", "expected float32, got int64");
  EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
  EXPECT_EQ(e.message(), "input 'x' has the wrong dtype: expected float32, got int64");
  EXPECT_STREQ(e.what(), e.message().c_str());
  EXPECT_EQ(e.to_string(), "InvalidInput: input 'x' has the wrong dtype: expected float32, got int64");
  EXPECT_EQ(Error::model_load("m").message(), "m");
}

TEST(ErrorTest, EveryCodeHasItsConstructorAndName) {
  const std::pair<Error, const char*> cases[] = {
      {Error::invalid_input("x"), "InvalidInput"}, {Error::model_load("x"), "ModelLoad"},
      {Error::not_found("x"), "NotFound"},         {Error::backend("x"), "Backend"},
      {Error::inference("x"), "Inference"},        {Error::overloaded("x"), "Overloaded"},
      {Error::timeout("x"), "Timeout"},            {Error::resource_exhausted("x"), "ResourceExhausted"},
      {Error::cancelled("x"), "Cancelled"},        {Error::unavailable("x"), "Unavailable"},
  };
  for (const auto& [e, name] : cases) EXPECT_STREQ(error_code_name(e.code()), name);
}

TEST(ErrorTest, IsAStdException) {
  try {
    throw Error::timeout("deadline passed");
  } catch (const std::exception& e) {
    EXPECT_STREQ(e.what(), "deadline passed");
  }
}

}  // namespace
}  // namespace kapsl
