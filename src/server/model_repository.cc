#include "server/model_repository.h"

#include <algorithm>
#include <cctype>
#include <system_error>

#include <spdlog/spdlog.h>

#include "kapsl/error.h"
#include "kapsl/manifest.h"

namespace kapsl::server {

namespace fs = std::filesystem;

const char* model_format_name(ModelFormat format) noexcept {
  return format == ModelFormat::kGguf ? "gguf" : "onnx";
}

bool is_valid_model_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::optional<ModelFormat> format_from_extension(const fs::path& path) {
  const std::string ext = lower(path.extension().string());
  if (ext == ".onnx") return ModelFormat::kOnnx;
  if (ext == ".gguf") return ModelFormat::kGguf;
  return std::nullopt;
}

// Whether canonical `path` lies strictly inside canonical `dir`.
bool is_inside(const fs::path& path, const fs::path& dir) {
  auto [d, p] = std::mismatch(dir.begin(), dir.end(), path.begin(), path.end());
  return d == dir.end() && p != path.end();
}

// The model a folder with a metadata.json describes; throws Error on a bad manifest.
RepositoryModel model_from_folder(const fs::path& dir) {
  const Manifest manifest = read_manifest(dir / "metadata.json");
  const fs::path file = fs::weakly_canonical(dir / manifest.model_file);
  if (!is_inside(file, dir)) throw Error::invalid_input("model_file resolves outside the model folder", file.string());
  if (!fs::is_regular_file(file)) throw Error::not_found("model_file is not a regular file", file.string());
  std::string format = lower(manifest.format.empty() ? manifest.framework : manifest.format);
  std::optional<ModelFormat> fmt;
  if (format == "onnx") fmt = ModelFormat::kOnnx;
  if (format == "gguf") fmt = ModelFormat::kGguf;
  if (!fmt) fmt = format_from_extension(file);
  if (!fmt) throw Error::invalid_input("unsupported model format", format);
  return RepositoryModel{dir.filename().string(), *fmt, file, manifest.version.empty() ? "1" : manifest.version};
}

// The model a root entry describes, or nullopt if it is not one. Throws Error on a bad one.
std::optional<RepositoryModel> model_from_entry(const fs::directory_entry& entry, const fs::path& root) {
  const fs::path canonical = fs::canonical(entry.path());
  if (!is_inside(canonical, root)) throw Error::invalid_input("resolves outside the repository root", canonical.string());
  if (fs::is_directory(canonical)) {
    if (!fs::exists(canonical / "metadata.json")) return std::nullopt;
    RepositoryModel model = model_from_folder(canonical);
    model.name = entry.path().filename().string();
    return model;
  }
  const auto format = format_from_extension(entry.path());
  if (!format || !fs::is_regular_file(canonical)) return std::nullopt;
  return RepositoryModel{entry.path().stem().string(), *format, canonical, "1"};
}

}  // namespace

ModelRepository::ModelRepository(const fs::path& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw Error::not_found("model repository is not a folder", root.string());
  root_ = fs::canonical(root);
  rescan();
}

void ModelRepository::rescan() {
  std::vector<fs::directory_entry> entries;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_, ec)) entries.push_back(entry);
  if (ec) spdlog::warn("model repository {}: {}", root_.string(), ec.message());
  // Folders sort before files of the same name so that "m/" wins over "m.onnx" every time.
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.path() < b.path(); });
  std::map<std::string, RepositoryModel, std::less<>> found;
  for (const auto& entry : entries) {
    try {
      auto model = model_from_entry(entry, root_);
      if (!model) continue;
      if (!is_valid_model_name(model->name)) {
        spdlog::warn("model repository: skipping '{}': not a valid model name", entry.path().filename().string());
      } else if (!found.emplace(model->name, *model).second) {
        spdlog::warn("model repository: skipping {}: model '{}' is already defined", entry.path().string(), model->name);
      }
    } catch (const std::exception& e) {
      spdlog::warn("model repository: skipping {}: {}", entry.path().string(), e.what());
    }
  }
  std::lock_guard lock(mu_);
  models_ = std::move(found);
}

std::optional<RepositoryModel> ModelRepository::find(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return std::nullopt;
  return it->second;
}

std::vector<RepositoryModel> ModelRepository::list() const {
  std::lock_guard lock(mu_);
  std::vector<RepositoryModel> out;
  for (const auto& [name, model] : models_) out.push_back(model);
  return out;
}

}  // namespace kapsl::server
