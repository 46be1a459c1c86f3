// KServe Open Inference Protocol v2 routes: model metadata and readiness, inference (JSON
// and binary tensors) and the model-repository extension. Error bodies are
// {"error": "<message>"} as the protocol says.
#include <charconv>

#include <nlohmann/json.hpp>

#include "kapsl/error.h"
#include "server/kserve_tensors.h"
#include "server/server_impl.h"

namespace kapsl {

using json = nlohmann::json;
using server::ApiStyle;
using server::EngineRole;
using server::ModelState;
using server::Outcome;

namespace {

constexpr const char* kModel = R"(/v2/models/([^/]+))";
constexpr const char* kModelVersion = R"(/v2/models/([^/]+)/versions/([^/]+))";

json tensor_infos(const std::vector<TensorInfo>& infos) {
  json out = json::array();
  for (const auto& t : infos) {
    out.push_back({{"name", t.name},
                   {"datatype", t.dtype_known ? server::kserve_datatype(t.dtype) : "BYTES"},
                   {"shape", t.shape}});
  }
  return out;
}

std::optional<size_t> header_length(const httplib::Request& req) {
  if (!req.has_header("Inference-Header-Content-Length")) return std::nullopt;
  const std::string v = req.get_header_value("Inference-Header-Content-Length");
  size_t n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size()) {
    throw Error::invalid_input("Inference-Header-Content-Length must be a byte count, got '" + v + "'");
  }
  return n;
}

// The requested version, if the route has one; kNotFound unless the model has it.
void check_version(const httplib::Request& req, const server::RepositoryModel& model) {
  if (req.matches.size() < 3) return;
  const std::string version = req.matches[2];
  if (version != model.version) {
    throw Error::not_found("model '" + model.name + "' has no version '" + version + "' (it has '" + model.version + "')");
  }
}

}  // namespace

namespace {

using Impl = Server::Impl;

void handle_metadata(Impl& s, const httplib::Request& req, httplib::Response& res) {
  const auto model = s.find_model(req.matches[1]);
  check_version(req, model);
  const auto engine = s.host.acquire(model, EngineRole::kMain);
  const ModelInfo& info = engine->model_info();
  json body = {{"name", model.name},
               {"versions", {model.version}},
               {"platform", model.resolved->backend->platform()},
               {"inputs", tensor_infos(info.inputs)},
               {"outputs", tensor_infos(info.outputs)}};
  // kapsl's extension: how the model was loaded (backend, task, provider, what failed first).
  if (const auto report = s.host.report(model.name)) body["load_report"] = json::parse(report->to_json());
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void handle_ready(Impl& s, const httplib::Request& req, httplib::Response& res) {
  const auto model = s.find_model(req.matches[1]);
  check_version(req, model);
  const ModelState state = s.host.state(model.name);
  const bool is_ready = state == ModelState::kReady;
  res.status = is_ready ? 200 : 503;
  const json body = {{"name", model.name}, {"ready", is_ready}, {"state", server::model_state_name(state)}};
  res.set_content(body.dump(), "application/json");
}

void handle_infer(Impl& s, const httplib::Request& req, httplib::Response& res) {
  const auto model = s.find_model(req.matches[1]);
  check_version(req, model);
  // Parse before taking a turn, so malformed requests never occupy the model.
  server::KServeRequest parsed = server::parse_infer_request(req.body, header_length(req));
  Impl::ModelCall call = s.begin_call(model.name, EngineRole::kMain);
  InferenceRequest request;
  request.inputs = std::move(parsed.inputs);
  request.output_names = parsed.output_names;
  request.request_id = parsed.id;
  request.deadline = call.deadline;
  request.cancel = call.cancel;
  InferenceResult result;
  try {
    result = call.engine->infer(request);
  } catch (const Error& e) {
    s.finish_call(call, Impl::outcome_for(e));
    throw;
  }
  s.finish_call(call, Outcome::kSuccess);
  const auto encoded = server::encode_infer_response(model.name, model.version, parsed, result.outputs);
  if (encoded.header_length) {
    res.set_header("Inference-Header-Content-Length", std::to_string(*encoded.header_length));
    res.set_content(encoded.body, "application/octet-stream");
  } else {
    res.set_content(encoded.body, "application/json");
  }
}

}  // namespace

void Server::Impl::register_kserve_routes() {
  using Handler = void (*)(Impl&, const httplib::Request&, httplib::Response&);
  const auto route = [this](Handler handler) {
    return [this, handler](const httplib::Request& req, httplib::Response& res) {
      guarded(res, ApiStyle::kKServe, [&] { handler(*this, req, res); });
    };
  };
  http.Get(kModel, route(handle_metadata));
  http.Get(kModelVersion, route(handle_metadata));
  http.Get(std::string(kModel) + "/ready", route(handle_ready));
  http.Get(std::string(kModelVersion) + "/ready", route(handle_ready));
  http.Post(std::string(kModel) + "/infer", route(handle_infer));
  http.Post(std::string(kModelVersion) + "/infer", route(handle_infer));
}

void Server::Impl::register_repository_routes() {
  http.Post("/v2/repository/index", [this](const httplib::Request& req, httplib::Response& res) {
    guarded(res, ApiStyle::kKServe, [&] {
      const json doc = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
      if (doc.is_discarded() || !doc.is_object()) throw Error::invalid_input("the request body must be a JSON object");
      const bool only_ready = doc.value("ready", false);
      repository.rescan();
      json out = json::array();
      for (const auto& model : repository.list()) {
        const ModelState state = host.state(model.name);
        if (only_ready && state != ModelState::kReady) continue;
        out.push_back({{"name", model.name}, {"version", model.version}, {"state", server::model_state_name(state)}});
      }
      res.set_content(out.dump(), "application/json");
    });
  });
  http.Post(R"(/v2/repository/models/([^/]+)/load)", [this](const httplib::Request& req, httplib::Response& res) {
    guarded(res, ApiStyle::kKServe, [&] {
      repository.rescan();
      host.load(find_model(req.matches[1]));
      res.set_content("{}", "application/json");
    });
  });
  http.Post(R"(/v2/repository/models/([^/]+)/unload)", [this](const httplib::Request& req, httplib::Response& res) {
    guarded(res, ApiStyle::kKServe, [&] {
      host.unload(find_model(req.matches[1]).name);
      res.set_content("{}", "application/json");
    });
  });
}

}  // namespace kapsl
