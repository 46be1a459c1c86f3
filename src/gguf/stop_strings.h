// StopStringFilter: finds stop strings in generated text and holds back text that may be
// the start of one, so that a stop string is never returned or streamed, not even in part.
//
// push() takes the next piece of valid UTF-8 text and returns the text that can safely be
// released. Once a stop string is found, stopped() is true, the text before it has been
// released and everything from it on is dropped. finish() releases what was held back when
// generation ends for another reason. Text is released only at character boundaries.
//
// Thread-safety: not thread-safe: one thread at a time.
#ifndef KAPSL_SRC_GGUF_STOP_STRINGS_H_
#define KAPSL_SRC_GGUF_STOP_STRINGS_H_

#include <string>
#include <string_view>
#include <vector>

namespace kapsl::gguf {

class StopStringFilter {
 public:
  // Empty strings in `stops` are ignored.
  explicit StopStringFilter(std::vector<std::string> stops);

  std::string push(std::string_view text);
  std::string finish();
  bool stopped() const { return stopped_; }

 private:
  // Length of the longest suffix of held_ that is a proper prefix of a stop string.
  size_t partial_match_length() const;

  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace kapsl::gguf

#endif  // KAPSL_SRC_GGUF_STOP_STRINGS_H_
