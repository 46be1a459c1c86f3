// BackendRegistry: the backends a factory can load with, by name and by file extension.
#include <algorithm>

#include "core/strings.h"
#include "kapsl/backend.h"
#include "kapsl/error.h"

namespace kapsl {
namespace {

bool is_valid_backend_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

}  // namespace

void Backend::smoke_test(const std::string&, int) const {}

void BackendRegistry::add(std::shared_ptr<const Backend> backend) {
  if (!backend) throw Error::invalid_input("BackendRegistry::add: the backend is null");
  const std::string name = backend->name();
  if (!is_valid_backend_name(name)) {
    throw Error::invalid_input("BackendRegistry::add: backend name \"" + name + "\"", "expected [a-z0-9_-]+");
  }
  if (find(name)) throw Error::invalid_input("BackendRegistry::add: a backend named \"" + name + "\" is already registered");
  for (const std::string& ext : backend->file_extensions()) {
    if (auto owner = for_extension(ext)) {
      throw Error::invalid_input("BackendRegistry::add: backend \"" + name + "\" takes " + ext + " files",
                                 "already taken by backend \"" + owner->name() + "\"");
    }
  }
  backends_.push_back(std::move(backend));
}

std::shared_ptr<const Backend> BackendRegistry::find(std::string_view name) const {
  const std::string wanted = internal::lower_trimmed(name);
  for (const auto& b : backends_) {
    if (b->name() == wanted) return b;
  }
  return nullptr;
}

std::shared_ptr<const Backend> BackendRegistry::for_extension(std::string_view extension) const {
  const std::string wanted = internal::lower_trimmed(extension);
  if (wanted.empty()) return nullptr;
  for (const auto& b : backends_) {
    for (const std::string& ext : b->file_extensions()) {
      if (internal::to_lower(ext) == wanted) return b;
    }
  }
  return nullptr;
}

std::string BackendRegistry::names() const {
  std::string out;
  for (const auto& b : backends_) out += (out.empty() ? "" : ", ") + b->name();
  return out.empty() ? "none" : out;
}

}  // namespace kapsl
