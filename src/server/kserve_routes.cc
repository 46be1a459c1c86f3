// KServe Open Inference Protocol v2 routes: model metadata and readiness, inference (JSON
// and binary tensors) and the model-repository extension. Error bodies are
// {"error": "<message>"} as the protocol says.
//
// Inference runs the model's engine whatever its backend; a text generator takes its
// generation options from the request's parameters (max_tokens, temperature, ...), and its
// tokens are counted like the OpenAI routes'. A client that goes away cancels the call.
#include <charconv>

#include <nlohmann/json.hpp>

#include "core/json_fields.h"
#include "kapsl/error.h"
#include "kapsl/text_generation.h"
#include "server/kserve_tensors.h"
#include "server/openai_params.h"
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

// Request parameters every model accepts; the rest must mean something to the model.
constexpr std::string_view kCommonParameters[] = {"priority", "timeout", "sequence_id", "sequence_start",
                                                  "sequence_end"};

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
    throw Error::invalid_input("Inference-Header-Content-Length must be a byte count, got '" + v.substr(0, 40) + "'");
  }
  return n;
}

// The model the route names, at the version it names if it has one (kNotFound otherwise).
server::RepositoryModel find_route_model(Server::Impl& s, const httplib::Request& req) {
  return s.find_model(req.matches[1], req.matches.size() < 3 ? std::string() : std::string(req.matches[2]));
}

}  // namespace

namespace server {

// The generation options of a text generator from the request's parameters (the OpenAI
// sampling fields); other engines take none but the common ones.
void apply_infer_parameters(const json& parameters, Engine& engine, const std::string& model, InferenceRequest& request) {
  json generation = json::object();
  for (const auto& [key, value] : parameters.items()) {
    if (std::find(std::begin(kCommonParameters), std::end(kCommonParameters), key) == std::end(kCommonParameters)) {
      generation[key] = value;
    }
  }
  if (generation.empty()) return;
  if (engine.text_generator() == nullptr) {
    throw Error::invalid_input("parameter '" + generation.begin().key() + "' is not one model '" + model + "' takes",
                               "it does not generate text; accepted: priority, timeout, sequence_*");
  }
  const server::SamplingRequest sampling = server::parse_sampling(generation, /*kserve=*/true);
  request.generation = sampling.options;
  if (sampling.max_tokens) request.generation.max_new_tokens = *sampling.max_tokens;
}

}  // namespace server

namespace {

using Impl = Server::Impl;

void handle_metadata(Impl& s, const httplib::Request& req, httplib::Response& res) {
  const auto model = find_route_model(s, req);
  const auto engine = s.host.acquire(model, EngineRole::kMain);
  const ModelInfo& info = engine->model_info();
  json body = {{"name", model.name},
               {"versions", {model.version}},
               {"platform", model.resolved->backend->platform()},
               {"inputs", tensor_infos(info.inputs)},
               {"outputs", tensor_infos(info.outputs)}};
  // kapsl's extension: how the model was loaded (backend, task, provider, what failed first).
  if (const auto report = s.host.report(model.name)) body["load_report"] = json::parse(report->to_json());
  // And, for a GGUF model, which device (and RPC worker) holds which layers.
  if (const auto it = info.metadata.find("placement"); it != info.metadata.end()) body["placement"] = it->second;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void handle_ready(Impl& s, const httplib::Request& req, httplib::Response& res) {
  const auto model = find_route_model(s, req);
  const ModelState state = s.host.state(model.name);
  const bool is_ready = state == ModelState::kReady;
  res.status = is_ready ? 200 : 503;
  const json body = {{"name", model.name}, {"ready", is_ready}, {"state", server::model_state_name(state)}};
  res.set_content(body.dump(), "application/json");
}

void send_result(const server::RepositoryModel& model, const server::KServeRequest& parsed,
                 const InferenceResult& result, httplib::Response& res) {
  const auto encoded = server::encode_infer_response(model.name, model.version, parsed, result.outputs);
  if (encoded.header_length) {
    res.set_header("Inference-Header-Content-Length", std::to_string(*encoded.header_length));
    res.set_content(encoded.body, "application/octet-stream");
  } else {
    res.set_content(encoded.body, "application/json");
  }
}

void handle_infer(Impl& s, const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
  const auto model = find_route_model(s, req);
  auto lease = s.bodies.lease();
  // Read and parse before taking a turn, so malformed requests never occupy the model; the
  // body budget bounds what waiting requests hold.
  std::string body = s.read_body(req, reader, lease);
  server::KServeRequest parsed =
      server::parse_infer_request(body, header_length(req), s.reserve_in(lease, body.size()));
  std::string().swap(body);
  Impl::ModelCall call = s.begin_call(model, EngineRole::kMain, req);
  InferenceRequest request;
  request.inputs = std::move(parsed.inputs);
  request.output_names = parsed.output_names;
  request.request_id = parsed.id;
  request.deadline = call.deadline;
  request.cancel = call.cancel;
  InferenceResult result;
  try {
    server::apply_infer_parameters(parsed.parameters, *call.engine, model.name, request);
    result = call.engine->infer(request);
  } catch (const Error& e) {
    s.finish_call(call, Impl::outcome_for(e));
    throw;
  }
  if (result.usage) server::record_generation(*call.stats, *result.usage, call.compute_start);
  s.finish_call(call, Outcome::kSuccess, result.timing);
  send_result(model, parsed, result, res);
}

}  // namespace

void Server::Impl::register_kserve_routes() {
  using Handler = void (*)(Impl&, const httplib::Request&, httplib::Response&);
  const auto route = [this](Handler handler) {
    return [this, handler](const httplib::Request& req, httplib::Response& res) {
      guarded(res, ApiStyle::kKServe, [&] { handler(*this, req, res); });
    };
  };
  const auto infer = [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
    guarded(res, ApiStyle::kKServe, [&] { handle_infer(*this, req, res, reader); });
  };
  http.Get(kModel, route(handle_metadata));
  http.Get(kModelVersion, route(handle_metadata));
  http.Get(std::string(kModel) + "/ready", route(handle_ready));
  http.Get(std::string(kModelVersion) + "/ready", route(handle_ready));
  http.Post(std::string(kModel) + "/infer", infer);
  http.Post(std::string(kModelVersion) + "/infer", infer);
}

namespace {

// A repository request's body: empty, or a JSON object (the extension's optional
// parameters, which kapsl takes none of but "unload_dependents").
json repository_body(Server::Impl& s, const httplib::Request& req, const httplib::ContentReader& reader) {
  auto lease = s.bodies.lease();
  const std::string body = s.read_body(req, reader, lease);
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
  const json doc = internal::parse_json_document(body, "the request body", 16);
  if (!doc.is_object()) throw Error::invalid_input("the request body must be a JSON object");
  return doc;
}

void check_repository_fields(const json& doc, std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : doc.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      throw Error::invalid_input("unknown field \"" + key.substr(0, 64) + "\"");
    }
  }
}

}  // namespace

void Server::Impl::register_repository_routes() {
  http.Post("/v2/repository/index", [this](const httplib::Request& req, httplib::Response& res,
                                           const httplib::ContentReader& reader) {
    guarded(res, ApiStyle::kKServe, [&] {
      const json doc = repository_body(*this, req, reader);
      check_repository_fields(doc, {"ready"});
      if (doc.contains("ready") && !doc["ready"].is_boolean()) throw Error::invalid_input("'ready' must be true or false");
      json out = json::array();
      for (const auto& m : repository_index(doc.value("ready", false))) {
        out.push_back({{"name", m.name}, {"version", m.version}, {"state", server::model_state_name(m.state)}});
      }
      res.set_content(out.dump(), "application/json");
    });
  });
  http.Post(R"(/v2/repository/models/([^/]+)/load)", [this](const httplib::Request& req, httplib::Response& res,
                                                           const httplib::ContentReader& reader) {
    guarded(res, ApiStyle::kKServe, [&] {
      check_repository_fields(repository_body(*this, req, reader), {"parameters"});
      load_model(req.matches[1]);
      res.set_content("{}", "application/json");
    });
  });
  http.Post(R"(/v2/repository/models/([^/]+)/unload)", [this](const httplib::Request& req, httplib::Response& res,
                                                             const httplib::ContentReader& reader) {
    guarded(res, ApiStyle::kKServe, [&] {
      check_repository_fields(repository_body(*this, req, reader), {"parameters"});
      unload_model(req.matches[1]);
      res.set_content("{}", "application/json");
    });
  });
}

}  // namespace kapsl
