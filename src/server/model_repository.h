// ModelRepository: the models of one repository folder, by name, each opened and resolved
// through the BackendFactory with the server's settings as defaults.
//
// A scan lists the root's entries: model files (an extension a registered backend takes),
// folders holding a metadata.json, and .aimod packages, side by side. Each is opened and
// resolved (BackendFactory::open + resolve): its settings are merged and checked, its
// backend and task chosen, nothing loaded. An entry that fails (a bad manifest, a hostile
// package) is skipped with a warning naming the field. A model is named after its folder,
// its file's stem or its package's stem; names must match [A-Za-z0-9][A-Za-z0-9._-]{0,127},
// and of entries with the same name the first in path order wins (a folder "m" before
// "m.aimod" before "m.onnx"). Entries that resolve outside the root (through links) are
// skipped.
//
// Rescans are cheap: an entry is resolved again only when its fingerprint — the size and
// modification time of the entry, its manifest and its model file — changed, so packages are
// not hashed again.
//
// One model's storage. KServe mounts a model at /mnt/models as a single file or a folder's
// contents, under a name of the InferenceService's choosing. A repository made with
// SingleModel serves that storage as one model: a model file, a folder holding a
// metadata.json, or a folder holding exactly one model entry (a file, a manifest folder or a
// package; other files are ignored). Its name is SingleModel::name, or the entry's as above.
// A folder holding several models is refused: it is a repository, not one model.
//
// Lookups only search the list the last scan built: a requested name is never joined to a
// path, so "../x", "/etc/passwd" or "a%2Fb" cannot reach any file.
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_SRC_SERVER_MODEL_REPOSITORY_H_
#define KAPSL_SRC_SERVER_MODEL_REPOSITORY_H_

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/mutex.h"
#include "core/thread_annotations.h"
#include "kapsl/backend_factory.h"

namespace kapsl::server {

struct RepositoryModel {
  std::string name;
  std::string version = "1";  // the manifest's version; "1" for a bare model file
  std::filesystem::path entry;                     // the entry as listed in the root
  std::filesystem::path source;                    // the entry, canonical, inside the root
  std::shared_ptr<const ResolvedModel> resolved;   // settings merged, backend chosen
  std::string fingerprint;                         // changes when the files do
  uint64_t generation = 0;  // grows with each resolution: the larger of two is the newer view
};

// Whether `name` may name a model (see the header comment).
bool is_valid_model_name(std::string_view name);

// Serve one model's storage rather than a repository (see the header comment).
struct SingleModel {
  std::string name;  // the model's name; "" = the entry's
};

class ModelRepository {
 public:
  // Throws Error(kNotFound) if `root` is not a folder. Scans it, resolving each model with
  // `factory` and `settings` (LoadOptions::defaults: the server's defaults).
  ModelRepository(const std::filesystem::path& root, std::shared_ptr<const BackendFactory> factory,
                  LoadOptions settings);
  // One model's storage at `storage` (a file or a folder). Throws Error(kNotFound) if it does
  // not exist, Error(kInvalidInput) if it holds no model or several, or an invalid name, or
  // the model's own error (a bad manifest).
  ModelRepository(const std::filesystem::path& storage, std::shared_ptr<const BackendFactory> factory,
                  LoadOptions settings, SingleModel single);
  ModelRepository(const ModelRepository&) = delete;
  ModelRepository& operator=(const ModelRepository&) = delete;

  // Re-reads the root folder, replacing the list; logs what it skipped. Never throws except
  // bad_alloc.
  void rescan();
  // The model called `name`, or nullopt. Checks its files first (a few stat calls): a model
  // whose files changed is resolved again, one whose files are gone, or whose new manifest
  // is wrong (logged), is dropped from the list.
  std::optional<RepositoryModel> find(std::string_view name);
  // Every model, by name.
  std::vector<RepositoryModel> list() const;
  const std::filesystem::path& root() const noexcept { return root_; }
  const BackendFactory& factory() const noexcept { return *factory_; }

 private:
  using ModelMap = std::map<std::string, RepositoryModel, std::less<>>;

  // The model an entry holds, reusing `previous` if its fingerprint is unchanged; nullopt
  // if the entry is not a model. Throws Error for a bad one.
  std::optional<RepositoryModel> model_from_entry(const std::filesystem::directory_entry& entry,
                                                  const ModelMap& previous) const;
  // The entries a scan looks at, in path order.
  std::vector<std::filesystem::directory_entry> list_entries() const;
  // Scans the entries into `found`; returns what makes the scan unusable ("" if nothing).
  std::string scan(ModelMap& found) const;

  std::filesystem::path root_;  // canonical
  const std::shared_ptr<const BackendFactory> factory_;
  const LoadOptions settings_;
  const std::optional<SingleModel> single_;
  std::filesystem::path single_entry_;  // with single_: the storage itself when it is the model
  mutable std::atomic<uint64_t> next_generation_{1};
  mutable internal::Mutex mu_;  // guards models_
  ModelMap models_ GUARDED_BY(mu_);
};

}  // namespace kapsl::server

#endif  // KAPSL_SRC_SERVER_MODEL_REPOSITORY_H_
