#include "kapsl/version.h"

#define KAPSL_STR2(x) #x
#define KAPSL_STR(x) KAPSL_STR2(x)

namespace kapsl {

const char* version_string() noexcept {
  return KAPSL_STR(KAPSL_VERSION_MAJOR) "." KAPSL_STR(KAPSL_VERSION_MINOR) "." KAPSL_STR(KAPSL_VERSION_PATCH);
}

}  // namespace kapsl
