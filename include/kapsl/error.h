// kapsl::Error: the one error type of the kapsl API.
//
// Every fallible kapsl call reports failure by throwing kapsl::Error, which carries an
// ErrorCode saying what kind of failure it is and a message saying what was wrong, naming
// the offending input, field or path and giving the expected and the actual value. No
// exception of a backend library (ONNX Runtime, llama.cpp) crosses the public API: each
// backend translates them into an Error at one boundary.
//
// An expected miss is not an error: lookups return std::optional or nullptr.
//
// Thread-safety: Error is an immutable value; const methods may run concurrently.
#ifndef KAPSL_ERROR_H_
#define KAPSL_ERROR_H_

#include <exception>
#include <string>
#include <string_view>

namespace kapsl {

enum class ErrorCode {
  kInvalidInput,       // the caller's input is malformed or does not match the model
  kModelLoad,          // a model file or package could not be loaded
  kNotFound,           // a named model, input, output or file does not exist
  kBackend,            // the backend library failed in a way the caller cannot fix
  kInference,          // the backend failed while running a valid request
  kOverloaded,         // too many requests in flight or queued; retry later
  kTimeout,            // the request's deadline passed
  kResourceExhausted,  // a memory, context or budget limit was reached
  kCancelled,          // the request was cancelled by its caller
  kUnavailable,        // the engine or provider is not usable (not compiled in, not ready)
};

// Returns the code's name in PascalCase without the k ("InvalidInput"). Never null.
const char* error_code_name(ErrorCode code) noexcept;

class Error : public std::exception {
 public:
  Error(ErrorCode code, std::string message);

  // Named constructors, one per code. The message is `msg`, followed by ": detail" when
  // `detail` is not empty (as leveldb::Status joins its two message parts).
  static Error invalid_input(std::string_view msg, std::string_view detail = {});
  static Error model_load(std::string_view msg, std::string_view detail = {});
  static Error not_found(std::string_view msg, std::string_view detail = {});
  static Error backend(std::string_view msg, std::string_view detail = {});
  static Error inference(std::string_view msg, std::string_view detail = {});
  static Error overloaded(std::string_view msg, std::string_view detail = {});
  static Error timeout(std::string_view msg, std::string_view detail = {});
  static Error resource_exhausted(std::string_view msg, std::string_view detail = {});
  static Error cancelled(std::string_view msg, std::string_view detail = {});
  static Error unavailable(std::string_view msg, std::string_view detail = {});

  ErrorCode code() const noexcept { return code_; }
  // The message alone, without the code.
  const std::string& message() const noexcept { return message_; }
  // The message alone (same as message()).
  const char* what() const noexcept override { return message_.c_str(); }
  // "<CodeName>: <message>", for logs.
  std::string to_string() const;

 private:
  ErrorCode code_;
  std::string message_;
};

}  // namespace kapsl

#endif  // KAPSL_ERROR_H_
