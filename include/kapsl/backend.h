// Backend: one inference library behind kapsl's Engine interface — ONNX Runtime, llama.cpp,
// or one a program registers itself — as the BackendFactory sees it; and BackendRegistry,
// the set of backends a factory, a server or the CLI can load models with.
//
// What a backend does. It says which models it takes: its name (the manifest's "format" and
// the key of its options section, e.g. "onnx": {...}), the file extensions that route a bare
// model file to it, and the tasks it can serve ("forward", "generate", "embed", ...). It
// reads and checks its own options section into typed options, names the execution
// providers it can use, smoke-tests one when asked, and loads engines. It does not choose
// the provider or fall back: the factory does that the same way for every backend
// (backend_factory.h), so a backend stays small.
//
// Registration is explicit, never by static initialisation: builtin_backends() returns a
// new registry holding ONNX Runtime and llama.cpp, and a program adds its own backends with
// BackendRegistry::add() before handing the registry to a BackendFactory, a Server
// (ServerOptions::backends) or the CLI. Nothing is process-wide.
//
// Ownership: registries hold backends by std::shared_ptr<const Backend>; engines a backend
// loads are owned by the caller and may outlive the registry and the backend object.
// Thread-safety: Backend's methods are const and must be safe for concurrent use without
// external synchronization. BackendRegistry: const methods may run concurrently; add()
// needs external synchronization (register everything before sharing the registry).
#ifndef KAPSL_BACKEND_H_
#define KAPSL_BACKEND_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kapsl/engine.h"
#include "kapsl/package.h"

namespace kapsl {

// A backend's options for one model, parsed from its manifest section. Each backend
// derives its own type and is the only code that reads it.
class BackendOptions {
 public:
  virtual ~BackendOptions() = default;
  // The options with every default filled in, as a JSON object in the section's own schema
  // (shown by `kapsl info` and in load reports). Never throws except std::bad_alloc.
  virtual std::string to_json() const = 0;
};

// Everything Backend::load() needs for one attempt on one provider.
struct BackendLoadRequest {
  const Package* model = nullptr;          // manifest (settings merged in), model file, package root
  const BackendOptions* options = nullptr;  // parse_options()'s result for this model
  std::string task;                         // one of tasks(), resolved (never "")
  int32_t threads = 0;                      // the manifest's "threads"; 0 = the backend's default
  std::string provider = "cpu";             // lower case, one of providers()
  int device_id = 0;                        // index within the provider's device kind
  // Load only what tokenization needs (a backend without such a mode loads everything).
  bool tokenizer_only = false;
  // Load progress in [0, 1]; returning false aborts the load with kCancelled. May be empty.
  std::function<bool(float)> progress;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // --- Identity. Never throw except std::bad_alloc.

  // Lower case letters, digits, '_' and '-': "onnx". The manifest's format and section key.
  virtual std::string name() const = 0;
  // Model file extensions this backend takes, lower case with the dot: {".onnx", ".ort"}.
  virtual std::vector<std::string> file_extensions() const = 0;
  // Tasks it serves; the first is the default when a manifest names none.
  virtual std::vector<std::string> tasks() const = 0;
  // The library and its version, for `kapsl version`: "onnxruntime 1.29.0".
  virtual std::string version() const = 0;
  // KServe's model "platform" string: "onnxruntime_onnx".
  virtual std::string platform() const = 0;

  // --- Options

  // Reads this backend's options for `model`: its manifest section
  // (model.manifest.backend_sections[name()], JSON object text; absent = defaults) and
  // whatever else of the manifest the backend consults (metadata, hardware_requirements);
  // `task` is resolved. Sidecar files the options name resolve inside model.root. Returns
  // the options, validated. Throws Error(kInvalidInput) for an unknown key, a wrong type,
  // an out-of-range value or a missing sidecar file, naming the field path
  // ("onnx.execution_mode"), the expected and the given value.
  virtual std::shared_ptr<const BackendOptions> parse_options(const Package& model, const std::string& task) const = 0;

  // --- Providers

  // The execution providers this build can use, lower case, "cpu" included, best first.
  virtual std::vector<std::string> providers() const = 0;
  // Runs a tiny model on (provider, device_id) and returns if it works; the factory calls it
  // before loading a model on an accelerator. Throws Error(kUnavailable) saying why not.
  // The default does nothing (the load itself is the test).
  virtual void smoke_test(const std::string& provider, int device_id) const;

  // --- Loading

  // Loads the model on request.provider. Returns a ready engine whose model_info().backend
  // is name() and model_info().provider is request.provider. Throws Error: kModelLoad (bad
  // or unreadable model), kUnavailable (the provider cannot run here), kInvalidInput (the
  // options do not suit this model), kResourceExhausted, kCancelled (progress said stop).
  virtual std::unique_ptr<Engine> load(const BackendLoadRequest& request) const = 0;
};

class BackendRegistry {
 public:
  BackendRegistry() = default;  // empty

  // Adds `backend`. Throws Error(kInvalidInput) if it is null, its name is not
  // [a-z0-9_-]+, or its name or one of its file extensions is taken by a backend already
  // added (the message names both). After a failure the registry is unchanged.
  void add(std::shared_ptr<const Backend> backend);

  // The backend called `name` (trimmed, case-insensitive), or nullptr.
  std::shared_ptr<const Backend> find(std::string_view name) const;
  // The backend that takes files with extension `extension` (".onnx", any case), or nullptr.
  std::shared_ptr<const Backend> for_extension(std::string_view extension) const;
  // Every backend, in the order added.
  const std::vector<std::shared_ptr<const Backend>>& backends() const { return backends_; }
  // "onnx, gguf": the names, for messages.
  std::string names() const;

 private:
  std::vector<std::shared_ptr<const Backend>> backends_;
};

// A new registry holding the backends built into libkapsl, in this order: "onnx" (ONNX
// Runtime, onnx_engine.h) and "gguf" (llama.cpp, gguf_engine.h). Add your own to it.
std::shared_ptr<BackendRegistry> builtin_backends();

}  // namespace kapsl

#endif  // KAPSL_BACKEND_H_
