// ModelRepository: the models of one repository folder, by name.
//
// A scan lists the root's entries: a folder with a metadata.json is a model named after the
// folder (its model_file, read from the manifest, must resolve inside the folder); a bare
// .onnx or .gguf file is a model named after its stem. Names must match
// [A-Za-z0-9][A-Za-z0-9._-]{0,127}; entries with other names, unreadable manifests or paths
// that resolve outside the root (symbolic links included) are skipped with a warning.
//
// Lookups only search the list the last scan built: a requested name is never joined to a
// path, so "../x", "/etc/passwd" or "a%2Fb" cannot reach any file.
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_SRC_SERVER_MODEL_REPOSITORY_H_
#define KAPSL_SRC_SERVER_MODEL_REPOSITORY_H_

#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/thread_annotations.h"

namespace kapsl::server {

enum class ModelFormat { kOnnx, kGguf };
const char* model_format_name(ModelFormat format) noexcept;  // "onnx", "gguf"

struct RepositoryModel {
  std::string name;
  ModelFormat format = ModelFormat::kOnnx;
  std::filesystem::path model_path;  // canonical, inside the repository root
  std::string version = "1";         // the manifest's version, "1" for a bare file
};

// Whether `name` may name a model (see the header comment).
bool is_valid_model_name(std::string_view name);

class ModelRepository {
 public:
  // Throws Error(kNotFound) if `root` is not a folder. Scans it.
  explicit ModelRepository(const std::filesystem::path& root);
  ModelRepository(const ModelRepository&) = delete;
  ModelRepository& operator=(const ModelRepository&) = delete;

  // Re-reads the root folder, replacing the list. Never throws except bad_alloc.
  void rescan();
  // The model called `name`, or nullopt.
  std::optional<RepositoryModel> find(std::string_view name) const;
  // Every model, by name.
  std::vector<RepositoryModel> list() const;
  const std::filesystem::path& root() const noexcept { return root_; }

 private:
  std::filesystem::path root_;  // canonical
  mutable std::mutex mu_;
  std::map<std::string, RepositoryModel, std::less<>> models_ GUARDED_BY(mu_);
};

}  // namespace kapsl::server

#endif  // KAPSL_SRC_SERVER_MODEL_REPOSITORY_H_
