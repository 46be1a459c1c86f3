#include "server/model_repository.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <system_error>

#include <spdlog/spdlog.h>

#include "core/strings.h"
#include "kapsl/error.h"

namespace kapsl::server {

namespace fs = std::filesystem;

bool is_valid_model_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

namespace {

// Whether canonical `path` lies strictly inside canonical `dir`.
bool is_inside(const fs::path& path, const fs::path& dir) {
  auto [d, p] = std::mismatch(dir.begin(), dir.end(), path.begin(), path.end());
  return d == dir.end() && p != path.end();
}

// "inode:size:mtime" of a path (one stat), "-" if it cannot be read; `is_dir` tells which
// it was. A find() runs this on every request, so it is one system call per path.
std::string stamp(const fs::path& path, bool* is_dir = nullptr) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "-";
  if (is_dir != nullptr) *is_dir = S_ISDIR(st.st_mode);
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) +
         "." + std::to_string(st.st_mtim.tv_nsec);
}

// What a change to the model would touch: the entry, a folder's manifest, the model file
// (a bare file is its own model file: stamped once).
std::string fingerprint(const fs::path& source, const fs::path& model_file) {
  bool is_dir = false;
  std::string fp = stamp(source, &is_dir);
  if (is_dir) fp += "|" + stamp(source / "metadata.json");
  if (!model_file.empty() && model_file != source) fp += "|" + stamp(model_file);
  return fp;
}

}  // namespace

ModelRepository::ModelRepository(const fs::path& root, std::shared_ptr<const BackendFactory> factory,
                                 LoadOptions settings)
    : factory_(std::move(factory)), settings_(std::move(settings)) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw Error::not_found("model repository is not a folder", root.string());
  root_ = fs::canonical(root);
  rescan();
}

ModelRepository::ModelRepository(const fs::path& storage, std::shared_ptr<const BackendFactory> factory,
                                 LoadOptions settings, SingleModel single)
    : factory_(std::move(factory)), settings_(std::move(settings)), single_(std::move(single)) {
  std::error_code ec;
  if (!fs::exists(storage, ec)) throw Error::not_found("model storage does not exist", storage.string());
  const fs::path canonical = fs::canonical(storage);
  if (fs::is_directory(canonical) && !fs::exists(canonical / "metadata.json")) {
    root_ = canonical;  // a folder holding the model
  } else {
    // The storage is the model; named as given (KServe's mount may be a link), not as resolved.
    root_ = canonical.parent_path();
    single_entry_ = fs::absolute(storage).lexically_normal();
    if (single_entry_.filename().empty()) single_entry_ = single_entry_.parent_path();
  }
  ModelMap found;
  if (std::string problem = scan(found); !problem.empty()) throw Error::invalid_input(storage.string(), problem);
  internal::MutexLock lock(&mu_);
  models_ = std::move(found);
}

std::optional<RepositoryModel> ModelRepository::model_from_entry(
    const fs::directory_entry& entry, const ModelMap& previous) const {
  const fs::path canonical = fs::canonical(entry.path());
  if (!is_inside(canonical, root_)) throw Error::invalid_input("resolves outside the repository root", canonical.string());
  const std::string ext = internal::to_lower(entry.path().extension().string());
  if (fs::is_directory(canonical)) {
    if (!fs::exists(canonical / "metadata.json")) return std::nullopt;
  } else if (!fs::is_regular_file(canonical) || (ext != ".aimod" && !factory_->backends().for_extension(ext))) {
    return std::nullopt;
  }
  // The name comes from the entry as listed (a link keeps its own name).
  const std::string name = single_ && !single_->name.empty() ? single_->name
                           : fs::is_directory(canonical)      ? entry.path().filename().string()
                                                              : entry.path().stem().string();
  if (!is_valid_model_name(name)) throw Error::invalid_input("'" + name + "' is not a valid model name");
  if (auto it = previous.find(name); it != previous.end() && it->second.source == canonical &&
                                     it->second.fingerprint ==
                                         fingerprint(canonical, it->second.resolved->package.model_path)) {
    return it->second;
  }
  RepositoryModel model;
  model.name = name;
  model.entry = entry.path();
  model.source = canonical;
  Package package = factory_->open(canonical);
  package.name = name;
  if (package.kind != PackageKind::kModelFile) model.version = package.manifest.version;
  model.resolved = std::make_shared<const ResolvedModel>(factory_->resolve(package, settings_));
  model.fingerprint = fingerprint(canonical, model.resolved->package.model_path);
  model.generation = next_generation_.fetch_add(1, std::memory_order_relaxed);
  return model;
}

std::vector<fs::directory_entry> ModelRepository::list_entries() const {
  std::vector<fs::directory_entry> entries;
  std::error_code ec;
  if (!single_entry_.empty()) {
    entries.emplace_back(single_entry_, ec);
    return entries;
  }
  for (const auto& entry : fs::directory_iterator(root_, ec)) entries.push_back(entry);
  if (ec) spdlog::warn("model repository {}: {}", root_.string(), ec.message());
  // Path order: a folder "m" sorts before "m.aimod" and "m.onnx", so it wins every time.
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.path() < b.path(); });
  return entries;
}

std::string ModelRepository::scan(ModelMap& found) const {
  ModelMap previous;
  {
    internal::MutexLock lock(&mu_);
    previous = models_;
  }
  std::vector<std::string> models_seen;  // one model's storage must hold exactly one
  std::string first_error;
  for (const auto& entry : list_entries()) {
    try {
      auto model = model_from_entry(entry, previous);
      if (!model) continue;
      models_seen.push_back(entry.path().filename().string());
      if (!found.emplace(model->name, *model).second && !single_) {
        spdlog::warn("model repository: skipping {}: model '{}' is already defined", entry.path().string(), model->name);
      }
    } catch (const std::exception& e) {
      if (first_error.empty()) first_error = entry.path().string() + ": " + e.what();
      spdlog::warn("model repository: skipping {}: {}", entry.path().string(), e.what());
    }
  }
  if (!single_) return "";
  if (models_seen.size() > 1) {
    found.clear();
    return "holds " + std::to_string(models_seen.size()) + " models (" + internal::join(models_seen, ", ") +
           "): that is a repository, not one model";
  }
  if (found.empty()) {
    return first_error.empty() ? "holds no model: expected a model file, a folder with a metadata.json or a folder holding one"
                               : first_error;
  }
  return "";
}

void ModelRepository::rescan() {
  ModelMap found;
  if (std::string problem = scan(found); !problem.empty()) spdlog::warn("model storage {}: {}", root_.string(), problem);
  internal::MutexLock lock(&mu_);
  models_ = std::move(found);
}

std::optional<RepositoryModel> ModelRepository::find(std::string_view name) {
  std::optional<RepositoryModel> known;
  {
    internal::MutexLock lock(&mu_);
    auto it = models_.find(name);
    if (it == models_.end()) return std::nullopt;
    known = it->second;
  }
  if (known->fingerprint == fingerprint(known->source, known->resolved->package.model_path)) return known;
  // Changed or gone: resolve that entry again (outside the lock: it reads files).
  std::optional<RepositoryModel> fresh;
  try {
    std::error_code ec;
    if (fs::exists(known->entry, ec)) {
      const ModelMap none;
      fresh = model_from_entry(fs::directory_entry(known->entry), none);
    }
  } catch (const std::exception& e) {
    spdlog::warn("model repository: dropping {}: {}", known->name, e.what());
  }
  internal::MutexLock lock(&mu_);
  if (fresh && fresh->name == known->name) {
    // Requests finding a change together all resolve it; the first to get here wins, so
    // that they share one resolution (and the host loads one engine, not one each).
    auto it = models_.find(known->name);
    if (it != models_.end() && it->second.fingerprint == fresh->fingerprint) return it->second;
    models_[known->name] = *fresh;
  } else {
    models_.erase(known->name);
    fresh.reset();
  }
  return fresh;
}

std::vector<RepositoryModel> ModelRepository::list() const {
  internal::MutexLock lock(&mu_);
  std::vector<RepositoryModel> out;
  for (const auto& [name, model] : models_) out.push_back(model);
  return out;
}

}  // namespace kapsl::server
