// kapsl version numbers.
//
// KAPSL_VERSION_MAJOR/MINOR/PATCH are the version of the headers a program was compiled
// against; kapsl::version_string() is the version of the library it runs with.
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_VERSION_H_
#define KAPSL_VERSION_H_

#define KAPSL_VERSION_MAJOR 0
#define KAPSL_VERSION_MINOR 1
#define KAPSL_VERSION_PATCH 0

namespace kapsl {

// Returns "MAJOR.MINOR.PATCH" of the linked library. The string is static.
const char* version_string() noexcept;

}  // namespace kapsl

#endif  // KAPSL_VERSION_H_
