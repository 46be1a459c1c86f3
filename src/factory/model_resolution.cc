// BackendFactory::open and ::resolve: settings layers merged into the manifest, the backend
// and task chosen through the registry, the backend's section parsed. Nothing is loaded.
#include <array>

#include <nlohmann/json.hpp>

#include "core/json_fields.h"
#include "core/strings.h"
#include "factory/factory_impl.h"
#include "kapsl/backend_factory.h"

namespace kapsl {
namespace {

using nlohmann::json;

// Keys a settings layer may hold besides backend sections.
constexpr std::array<std::string_view, 4> kLayerKeys = {"task", "threads", "serving", "hardware_requirements"};

// Formats the original knew that kapsl has no backend for.
constexpr std::array<std::string_view, 3> kUnservedFormats = {"llm", "native", "safetensors"};

json parse_layer(std::string_view text, std::string_view what, const BackendRegistry& backends) {
  if (internal::trim(text).empty()) return json::object();
  json layer = internal::parse_json_document(text, what);
  if (!layer.is_object()) internal::fail_field(what, "a JSON object", layer);
  for (const auto& [key, value] : layer.items()) {
    bool known = backends.find(key) != nullptr;
    for (std::string_view k : kLayerKeys) known = known || key == k;
    if (!known) {
      throw Error::invalid_input(std::string(what) + ": unknown field \"" + key + "\"",
                                 "expected task, threads, serving, hardware_requirements or a backend section (" +
                                     backends.names() + ")");
    }
  }
  return layer;
}

// A manifest section no registered backend owns, or another backend's, is refused.
void check_sections(const Manifest& manifest, const std::string& source, const Backend& chosen,
                    const BackendRegistry& backends) {
  for (const auto& [key, text] : manifest.backend_sections) {
    if (key == chosen.name()) continue;
    if (backends.find(key)) {
      throw Error::invalid_input(source + ": " + key, "this section is for backend \"" + key +
                                                          "\", but the model is served by \"" + chosen.name() + "\"");
    }
    throw Error::invalid_input(source + ": " + key,
                               "unknown field (not a manifest field nor a registered backend: " + backends.names() + ")");
  }
}

[[noreturn]] void unknown_format(const std::string& field, const std::string& value, const BackendRegistry& backends) {
  for (std::string_view u : kUnservedFormats) {
    if (value == u) {
      throw Error::unavailable(field + " \"" + value + "\" is not served by kapsl",
                               "registered backends: " + backends.names());
    }
  }
  throw Error::invalid_input(field, "expected a registered backend (" + backends.names() + "), got \"" + value + "\"");
}

std::string extensions_text(const BackendRegistry& backends) {
  std::string out;
  for (const auto& b : backends.backends()) {
    std::string exts;
    for (const auto& e : b->file_extensions()) exts += (exts.empty() ? "" : ", ") + e;
    out += (out.empty() ? "" : "; ") + b->name() + " takes " + exts;
  }
  return out;
}

// The backend for a manifest: format, else framework, else the model file's extension.
std::shared_ptr<const Backend> route(const Manifest& m, const BackendRegistry& backends) {
  const std::string format = internal::lower_trimmed(m.format);
  const std::string framework = internal::lower_trimmed(m.framework);
  if (!format.empty() && !framework.empty() && format != framework) {
    throw Error::invalid_input("format \"" + format + "\" contradicts framework \"" + framework + "\"");
  }
  const std::string ext = internal::to_lower(std::filesystem::path(m.model_file).extension().string());
  const std::string name = format.empty() ? framework : format;
  if (name.empty()) {
    auto by_ext = backends.for_extension(ext);
    if (!by_ext) {
      throw Error::invalid_input("model_file \"" + m.model_file + "\": no backend takes \"" + ext + "\" files",
                                 extensions_text(backends));
    }
    return by_ext;
  }
  auto backend = backends.find(name);
  if (!backend) unknown_format(format.empty() ? "framework" : "format", name, backends);
  const auto exts = backend->file_extensions();
  if (std::find(exts.begin(), exts.end(), ext) == exts.end()) {
    throw Error::invalid_input("model_file \"" + m.model_file + "\"",
                               "expected a " + internal::to_lower(exts.empty() ? "" : exts.front()) +
                                   " file for format " + name);
  }
  return backend;
}

std::string resolve_task(const Manifest& m, const Backend& backend, const BackendRegistry& backends) {
  const std::vector<std::string> tasks = backend.tasks();
  const std::string task = internal::lower_trimmed(m.task);
  if (task.empty()) return tasks.empty() ? std::string() : tasks.front();
  if (std::find(tasks.begin(), tasks.end(), task) != tasks.end()) return task;
  std::string servers, listed;
  for (const auto& b : backends.backends()) {
    const auto t = b->tasks();
    if (std::find(t.begin(), t.end(), task) != t.end()) servers += (servers.empty() ? "" : ", ") + b->name();
  }
  if (!servers.empty()) {
    throw Error::unavailable("task \"" + task + "\" for format " + backend.name() + " is not served by kapsl",
                             "backends serving it: " + servers);
  }
  for (const auto& t : tasks) listed += (listed.empty() ? "\"" : ", \"") + t + "\"";
  throw Error::invalid_input("task", "expected " + listed + " for format " + backend.name() + ", got \"" + task + "\"");
}

// A bare model file's manifest names no format: the backend that takes its extension.
void name_format_by_extension(Package& package, const BackendRegistry& backends) {
  Manifest& m = package.manifest;
  if (!internal::trim(m.format).empty() || !internal::trim(m.framework).empty()) return;
  const std::string ext = internal::to_lower(std::filesystem::path(m.model_file).extension().string());
  auto backend = backends.for_extension(ext);
  if (!backend) {
    throw Error::invalid_input("cannot tell the model format of " + package.model_path.string(),
                               "no backend takes \"" + ext + "\" files (" + extensions_text(backends) +
                                   "), and it is not a folder with a metadata.json or an .aimod package");
  }
  m.framework = m.format = backend->name();
}

}  // namespace

Package BackendFactory::open(const std::filesystem::path& path) const {
  Package package = open_package(path, impl_->options.package);
  name_format_by_extension(package, *impl_->backends);
  return package;
}

ResolvedModel BackendFactory::resolve(const Package& package, const LoadOptions& options) const {
  const BackendRegistry& backends = *impl_->backends;
  const std::string source = package.name.empty() ? package.model_path.string() : package.name;
  Package named = package;
  name_format_by_extension(named, backends);
  json merged = parse_layer(options.defaults, source + ": defaults", backends);
  merged.merge_patch(json::parse(manifest_to_json(named.manifest)));
  merged.merge_patch(parse_layer(options.overrides, source + ": overrides", backends));
  ResolvedModel out;
  out.package = package;
  out.package.manifest = parse_manifest(merged.dump(), source);
  Manifest& m = out.package.manifest;
  out.backend = route(m, backends);
  check_sections(package.manifest, source, *out.backend, backends);
  // Layers may hold sections of other backends; only the chosen one's stays.
  for (auto it = m.backend_sections.begin(); it != m.backend_sections.end();) {
    it = it->first == out.backend->name() ? std::next(it) : m.backend_sections.erase(it);
  }
  out.task = resolve_task(m, *out.backend, backends);
  out.options = out.backend->parse_options(out.package, out.task);
  if (!out.options) throw Error::backend("backend " + out.backend->name() + " returned no options");
  out.tokenizer_only = options.tokenizer_only;
  out.progress = options.progress;
  return out;
}

}  // namespace kapsl
