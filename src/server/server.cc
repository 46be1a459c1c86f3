#include "kapsl/server.h"

#include <algorithm>
#include <charconv>
#include <csignal>
#include <optional>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "kapsl/backend.h"
#include "kapsl/error.h"
#include "kapsl/version.h"
#include "server/grpc_endpoint.h"
#include "server/openai_params.h"
#include "server/server_impl.h"

namespace kapsl {

using json = nlohmann::json;
using server::ApiStyle;
using server::current_request;
using server::Outcome;

namespace {

ServerOptions validated(ServerOptions o) {
  if (o.model_repository.empty()) throw Error::invalid_input("model_repository", "expected a path, got \"\"");
  if (!o.single_model_name.empty() && !o.single_model) {
    throw Error::invalid_input("single_model_name", "names the model of single_model storage, which is not set");
  }
  if (o.max_concurrency == 0) throw Error::invalid_input("max_concurrency", "expected >= 1, got 0");
  if (o.grpc_port < -1 || o.grpc_port > 65535) {
    throw Error::invalid_input("grpc_port", "expected -1 (off) or 0..65535, got " + std::to_string(o.grpc_port));
  }
  if (o.http_threads < 2) throw Error::invalid_input("http_threads", "expected >= 2, got " + std::to_string(o.http_threads));
  if (o.http_max_threads == 0) o.http_max_threads = 8 * o.http_threads;
  if (o.http_max_threads < o.http_threads) {
    throw Error::invalid_input("http_max_threads", "expected >= http_threads (" + std::to_string(o.http_threads) +
                                                       "), got " + std::to_string(o.http_max_threads));
  }
  if (o.port < 0 || o.port > 65535) throw Error::invalid_input("port", "expected 0..65535, got " + std::to_string(o.port));
  if (o.read_timeout.count() <= 0) throw Error::invalid_input("read_timeout", "expected a positive duration");
  if (o.max_body_bytes == 0) throw Error::invalid_input("max_body_bytes", "expected >= 1");
  // Each body counts three times its size: a budget below that refuses every large body.
  if (o.max_inflight_body_bytes / server::BodyBudget::kBodyCost < o.max_body_bytes) {
    throw Error::invalid_input("max_inflight_body_bytes", "expected >= 3 x max_body_bytes (" +
                                                              std::to_string(3 * o.max_body_bytes) + ")");
  }
  o.pool.validate();
  return o;
}

double seconds(std::chrono::milliseconds d) { return static_cast<double>(d.count()) / 1000.0; }

// Every model's defaults: the server's load limits, then options.model_defaults over them.
LoadOptions model_settings(const ServerOptions& o) {
  json defaults = {{"serving",
                    {{"max_concurrency", o.max_concurrency},
                     {"max_queue", o.max_queue},
                     {"queue_timeout", seconds(o.queue_timeout)},
                     {"request_timeout", seconds(o.request_timeout)}}}};
  if (!o.model_defaults.empty()) {
    const json given = json::parse(o.model_defaults, nullptr, false);
    if (given.is_discarded() || !given.is_object()) {
      throw Error::invalid_input("model_defaults", "expected a JSON object in manifest form");
    }
    defaults.merge_patch(given);
  }
  LoadOptions settings;
  settings.defaults = defaults.dump();
  return settings;
}

std::shared_ptr<const BackendFactory> make_factory(const ServerOptions& o) {
  return std::make_shared<const BackendFactory>(FactoryOptions{}, o.backends ? o.backends : builtin_backends(),
                                                cached_devices());
}

server::ModelRepository open_repository(const ServerOptions& o, std::shared_ptr<const BackendFactory> factory) {
  if (o.single_model) {
    return server::ModelRepository(o.model_repository, std::move(factory), model_settings(o),
                                   server::SingleModel{o.single_model_name});
  }
  return server::ModelRepository(o.model_repository, std::move(factory), model_settings(o));
}

}  // namespace

Server::Impl::Impl(ServerOptions opts)
    : options(validated(std::move(opts))),
      factory(make_factory(options)),
      repository(open_repository(options, factory)),
      host(options.pool, factory),
      bodies(options.max_inflight_body_bytes),
      deadlines(options.read_timeout) {}

Server::Impl::ModelCall::ModelCall(ModelCall&& other) noexcept
    : server(other.server),
      model(std::move(other.model)),
      ticket(std::move(other.ticket)),
      engine(std::move(other.engine)),
      stats(other.stats),
      cancel(other.cancel),
      deadline(other.deadline),
      running_id(other.running_id),
      finished(other.finished),
      admission_wait_s(other.admission_wait_s),
      compute_start(other.compute_start) {
  other.running_id = 0;
  other.finished = true;
}

Server::Impl::ModelCall::~ModelCall() {
  if (running_id != 0) server->running.remove(running_id);
  if (!finished && stats != nullptr && engine) {
    stats->queue.record(admission_wait_s);
    stats->count(Outcome::kCancelled);
  }
}

server::RepositoryModel Server::Impl::named_or_only_generator(const nlohmann::json& body) {
  if (body.contains("model")) return find_model(server::model_field(body));
  std::vector<server::RepositoryModel> generators;
  for (auto& m : repository.list()) {
    if (m.resolved->task == "generate") generators.push_back(std::move(m));
  }
  if (generators.size() != 1) {
    throw Error::invalid_input("'model' is required",
                               "the repository holds " + std::to_string(generators.size()) + " text-generation models");
  }
  current_request().model = generators[0].name;
  return std::move(generators[0]);
}

server::RepositoryModel Server::Impl::find_model(const std::string& name) {
  // A name that is not valid cannot be in the repository; say so without a rescan.
  if (!server::is_valid_model_name(name)) throw Error::not_found("unknown model '" + name + "'");
  auto model = repository.find(name);
  if (!model) {
    host.forget(name);  // its files are gone: so is any engine still loaded from them
    throw Error::not_found("unknown model '" + name + "'");
  }
  current_request().model = name;
  return *model;
}

server::RepositoryModel Server::Impl::find_model(const std::string& name, const std::string& version) {
  server::RepositoryModel model = find_model(name);
  if (!version.empty() && version != model.version) {
    throw Error::not_found("model '" + name + "' has no version '" + version + "' (it has '" + model.version + "')");
  }
  return model;
}

std::vector<Server::Impl::IndexEntry> Server::Impl::repository_index(bool only_ready) {
  repository.rescan();
  std::vector<IndexEntry> out;
  for (const auto& model : repository.list()) {
    const server::ModelState state = host.state(model.name);
    if (!only_ready || state == server::ModelState::kReady) out.push_back({model.name, model.version, state});
  }
  return out;
}

void Server::Impl::load_model(const std::string& name) {
  repository.rescan();
  host.load(find_model(name));
}

void Server::Impl::unload_model(const std::string& name) {
  if (repository.find(name)) {
    host.unload(name);
  } else if (!server::is_valid_model_name(name) || !host.forget(name)) {
    throw Error::not_found("unknown model '" + name + "'");
  }
}

namespace {

Error too_many_bodies() {
  return Error::overloaded("too many large request bodies are being read at once",
                           "retry later, or send smaller bodies");
}

// The body length the request declares, nullopt if it declares none (chunked). Throws
// HttpError 400 for a framing that is not to be guessed at, 413 for a length over `limit`.
std::optional<uint64_t> declared_length(const httplib::Request& req, size_t limit) {
  if (!req.has_header("Content-Length")) return std::nullopt;
  if (req.has_header("Transfer-Encoding")) {
    // RFC 9112 6.3: a smuggling attempt or a broken proxy; either way, not to be guessed at.
    throw server::HttpError(400, "a request may not have both Content-Length and Transfer-Encoding");
  }
  const std::string declared = req.get_header_value("Content-Length");
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(declared.data(), declared.data() + declared.size(), n);
  if (end != declared.data() + declared.size() || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
    throw server::HttpError(400, "Content-Length '" + declared.substr(0, 24) + "' is not a number");
  }
  if (ec == std::errc::result_out_of_range || n > limit) {
    throw server::HttpError(413, "request body too large: Content-Length " + declared.substr(0, 24) +
                                     " is over the limit of " + std::to_string(limit) + " bytes");
  }
  return n;
}

}  // namespace

server::ReserveBytes Server::Impl::reserve_in(server::BodyBudget::Lease& lease, size_t allowance) const {
  return [&lease, allowance, limit = options.max_inflight_body_bytes](size_t bytes) mutable {
    const size_t covered = std::min(bytes, allowance);
    allowance -= covered;
    bytes -= covered;
    if (bytes == 0 || lease.grow(bytes)) return;
    if (!lease.could_grow(bytes)) {
      throw server::HttpError(413, "the request's tensors need more memory than --max-inflight-body-mib (" +
                                       std::to_string(limit >> 20) + " MiB) allows");
    }
    throw too_many_bodies();
  };
}

std::string Server::Impl::read_body(const httplib::Request& req, const httplib::ContentReader& reader,
                                    server::BodyBudget::Lease& lease) {
  constexpr size_t cost = server::BodyBudget::kBodyCost;
  // Each body byte counts `cost` times against the in-flight budget: the raw body and the
  // parsing that follows it. A declared length is refused at once if over the limit, and
  // reserved whole before reading, so that bodies arriving together do not all fail
  // halfway; cpp-httplib drains (and discards) what a refused client still sends.
  std::string body;
  const std::optional<uint64_t> declared = declared_length(req, options.max_body_bytes);
  if (declared) {
    if (!lease.grow(*declared * cost)) throw too_many_bodies();
    body.reserve(*declared);
  }
  bool over_budget = false;
  const bool ok = reader([&](const char* data, size_t n) {
    if (!declared && !lease.grow(n * cost)) {
      over_budget = true;
      return false;
    }
    body.append(data, n);
    return true;
  });
  deadlines.request_read();
  if (over_budget) throw too_many_bodies();
  // A failed read is a client that went away, timed out or sent too much (cpp-httplib
  // answers 413 itself): no one reads this answer.
  if (!ok) throw Error::invalid_input("the request body could not be read");
  return body;
}

Server::Impl::ModelCall Server::Impl::begin_call(server::RepositoryModel model, server::EngineRole role,
                                                 const httplib::Request& req) {
  return begin_call(std::move(model), role, [&req] { return req.is_connection_closed(); });
}

Server::Impl::ModelCall Server::Impl::begin_call(server::RepositoryModel model, server::EngineRole role,
                                                 std::function<bool()> client_gone) {
  ModelCall call;
  call.server = this;
  call.model = std::move(model);
  const std::string& name = call.model.name;
  call.stats = &metrics.model(name);
  current_request().model = name;
  const auto queued_at = Clock::now();
  const ServingConfig& serving = call.model.resolved->package.manifest.serving;
  const server::AdmissionLimits limits{host.admitted_at_once(name, serving, options.max_concurrency),
                                       serving.max_queue.value_or(options.max_queue),
                                       serving.queue_timeout.value_or(options.queue_timeout)};
  bool admitted = false;
  try {
    call.ticket = admission.admit(name, limits);
    admitted = true;
    call.admission_wait_s = std::chrono::duration<double>(Clock::now() - queued_at).count();
    current_request().queue_s = call.admission_wait_s;
    call.compute_start = Clock::now();
    const auto timeout = serving.request_timeout.value_or(options.request_timeout);
    if (timeout.count() > 0) call.deadline = call.compute_start + timeout;
    call.running_id = running.add(call.cancel, std::move(client_gone));
    call.engine = host.acquire(call.model, role);
  } catch (const Error& e) {
    // Refused by admission: it waited this long for nothing.
    if (!admitted) call.admission_wait_s = std::chrono::duration<double>(Clock::now() - queued_at).count();
    call.stats->queue.record(call.admission_wait_s);
    call.stats->count(outcome_for(e));
    call.finished = true;
    current_request().counted = true;
    throw;
  }
  return call;
}

void Server::Impl::finish_call(ModelCall& call, Outcome outcome, const std::optional<ComputeTiming>& timing) {
  call.finished = true;
  call.ticket.release();
  const auto now = Clock::now();
  const double compute_s = std::chrono::duration<double>(now - call.compute_start).count();
  call.stats->queue.record(call.admission_wait_s + (timing ? timing->queue_s : 0.0));
  call.stats->compute.record(compute_s);
  if (timing) server::record_timing(*call.stats, *timing);
  call.stats->total.record(std::chrono::duration<double>(now - current_request().start).count());
  call.stats->count(outcome);
  current_request().compute_s = compute_s;
  current_request().counted = true;
}

Outcome Server::Impl::outcome_for(const Error& error) {
  switch (error.code()) {
    case ErrorCode::kInvalidInput:
    case ErrorCode::kNotFound: return Outcome::kClientError;
    case ErrorCode::kOverloaded:
    case ErrorCode::kUnavailable:
    case ErrorCode::kResourceExhausted: return Outcome::kRejected;
    case ErrorCode::kCancelled: return Outcome::kCancelled;
    case ErrorCode::kTimeout: return Outcome::kTimeout;
    default: return Outcome::kFailure;
  }
}

void Server::Impl::guarded(httplib::Response& res, ApiStyle style, const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& e) {
    server::send_error(res, style, e);
  } catch (const server::HttpError& e) {
    server::send_error(res, style, e.status, e.what());  // cpp-httplib closes the connection: its body is unread
  } catch (const json::exception& e) {
    server::send_error(res, style, 400, std::string("malformed request: ") + e.what());
  } catch (const std::bad_alloc&) {
    // Not 503: a resend would fail the same way; every limit that could have stopped it
    // earlier answers with its own error.
    server::send_error(res, style, 500, "out of memory");
  } catch (const std::exception& e) {
    server::send_error(res, style, 500, e.what());
  }
  // Client errors that never reached a model call are counted here too, by model.
  if (res.status >= 400 && res.status < 500 && !current_request().model.empty() && !current_request().counted) {
    metrics.model(current_request().model).count(Outcome::kClientError);
  }
}

namespace {

std::string request_id_from(const httplib::Request& req) {
  std::string id = req.get_header_value("X-Request-Id");
  const bool usable = !id.empty() && id.size() <= 64 &&
                      std::all_of(id.begin(), id.end(), [](char c) { return c > ' ' && c < 127 && c != '"'; });
  return usable ? id : server::new_request_id();
}

void log_request(const httplib::Request& req, const httplib::Response& res) {
  const auto& ctx = current_request();
  json line = {{"request_id", ctx.request_id},
               {"method", req.method},
               {"path", req.path},
               {"status", res.status},
               {"total_ms", std::chrono::duration<double, std::milli>(Clock::now() - ctx.start).count()}};
  if (!ctx.model.empty()) {
    line["model"] = ctx.model;
    line["queue_ms"] = ctx.queue_s * 1e3;
    line["compute_ms"] = ctx.compute_s * 1e3;
  }
  if (!ctx.error.empty()) line["error"] = ctx.error;
  spdlog::info("{}", line.dump(-1, ' ', false, json::error_handler_t::replace));
}

}  // namespace

void Server::Impl::install_hooks() {
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    auto& ctx = current_request();
    ctx = server::RequestContext{request_id_from(req), "", Clock::now(), 0, 0, "", false, false};
    res.set_header("X-Request-Id", ctx.request_id);
    const ApiStyle style = server::style_for_path(req.path);
    // A request with a body stops its read clock once read_body() has it all. GET and HEAD
    // take none: cpp-httplib would read one outside the body budget and the clock.
    if (req.method == "GET" || req.method == "HEAD") {
      if (req.has_header("Transfer-Encoding") || req.get_header_value_u64("Content-Length") > 0) {
        res.set_header("Connection", "close");
        server::send_error(res, style, 400, req.method + " requests take no body");
        return httplib::Server::HandlerResponse::Handled;
      }
      deadlines.request_read();
    }
    if (req.path == "/v2/health/live") return httplib::Server::HandlerResponse::Unhandled;
    if (!options.api_key.empty() && !server::authorized(req, options.api_key)) {
      res.set_header("WWW-Authenticate", "Bearer");
      server::send_error(res, style, 401, "missing or wrong API key (send 'Authorization: Bearer <key>')",
                         "invalid_api_key");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (draining.load()) {
      server::send_error(res, style, 503, "the server is shutting down");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const std::string message = res.status == 413   ? "request body too large"
                                : res.status == 404 ? "no route for " + req.method + " " + req.path
                                : res.status == 405 ? "method not allowed"
                                                    : "bad request";
    server::send_error(res, server::style_for_path(req.path), res.status, message);
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string message = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
    }
    server::send_error(res, server::style_for_path(req.path), 500, message);
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    // Called before the response is written; a streamed one starts the clock when it ends.
    if (!current_request().streams) deadlines.response_done();
    metrics.count_http(res.status);
    if (options.log_requests) log_request(req, res);
  });
}

void Server::Impl::register_health_routes() {
  http.Get("/v2/health/live", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"live":true})", "application/json");
  });
  // Ready once serving; a draining server answers 503 from the pre-routing hook. Models load
  // on demand, so none has to be resident for the server to be ready.
  http.Get("/v2/health/ready", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"ready":true})", "application/json");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    const server::HttpFigures http_figures{deadlines.open_connections(), deadlines.timeouts(),
                                           running.client_cancellations(), bodies.in_use()};
    res.set_content(metrics.render(host.pool_metrics(), admission.all_counts(), http_figures),
                    "text/plain; version=0.0.4");
  });
  http.Get("/v2", [](const httplib::Request&, httplib::Response& res) {
    const json body = {{"name", "kapsl"},
                       {"version", version_string()},
                       {"extensions", {"binary_tensor_data", "model_repository"}}};
    res.set_content(body.dump(), "application/json");
  });
}

void Server::Impl::drain() {
  draining = true;
  const auto idle = [this] {
    for (const auto& [name, c] : admission.all_counts()) {
      if (c.running + c.waiting > 0) return false;
    }
    return true;
  };
  const auto until = Clock::now() + options.shutdown_timeout;
  while (!idle() && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  admission.close();
  if (!idle()) {
    const size_t n = running.cancel_all();
    spdlog::warn("shutdown: cancelled {} request(s) still running after {} ms", n, options.shutdown_timeout.count());
  }
  // Cancelled generations stop within a token; give them a moment to write their last bytes.
  const auto grace = Clock::now() + std::chrono::milliseconds(500);
  while (!idle() && Clock::now() < grace) std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  impl_->install_hooks();
  impl_->register_health_routes();
  impl_->register_kserve_routes();
  impl_->register_repository_routes();
  impl_->register_openai_routes();
  impl_->register_llama_routes();
  impl_->register_anthropic_routes();
  impl_->register_responses_routes();
  impl_->register_rerank_routes();
}

Server::~Server() { shutdown(); }

void Server::start() {
  Impl& s = *impl_;
  {
    internal::MutexLock lock(&s.mu);
    if (s.started) throw Error::invalid_input("Server::start called twice");
    s.started = true;
  }
  // A client that disconnects mid-response must not kill the process with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  for (const auto& name : s.options.pinned_models) s.host.load(s.find_model(name));
  for (const auto& model : s.repository.list()) {
    if (model.resolved->package.manifest.serving.pin.value_or(false)) s.host.load(model);
  }
  // cpp-httplib takes ownership of the queue it is handed and deletes it at shutdown.
  s.http.new_task_queue = [&s] { return s.deadlines.make_task_queue(s.options.http_threads, s.options.http_max_threads); };
  s.http.set_payload_max_length(s.options.max_body_bytes);
  // Headers and body go out in separate writes; with Nagle's algorithm the body waits for
  // the client's delayed ACK, which measured 43 ms per small request.
  s.http.set_tcp_nodelay(true);
  // Per read; the whole request is bounded by options.read_timeout (ConnectionDeadlines).
  s.http.set_read_timeout(s.options.read_timeout);
  s.http.set_write_timeout(std::chrono::seconds(30));
  const bool bound = s.options.port == 0 ? (s.port = s.http.bind_to_any_port(s.options.host)) > 0
                                         : s.http.bind_to_port(s.options.host, s.options.port);
  if (!bound) {
    throw Error::unavailable("cannot listen on " + s.options.host + ":" + std::to_string(s.options.port),
                             "is the port in use or the address not local?");
  }
  if (s.options.port != 0) s.port = s.options.port;
  s.listener = std::thread([&s] {
    s.deadlines.listen_on_this_thread();
    s.http.listen_after_bind();
  });
  if (s.options.grpc_port >= 0) {
    s.grpc = std::make_unique<server::GrpcEndpoint>(s, s.options.host, s.options.grpc_port);
    spdlog::info("kapsl serve: KServe v2 over gRPC on {}:{}", s.options.host, s.grpc->port());
  }
  spdlog::info("kapsl serve: listening on http://{}:{} with {} models from {}", s.options.host, s.port,
               s.repository.list().size(), s.repository.root().string());
}

int Server::port() const { return impl_->port; }

int Server::grpc_port() const { return impl_->grpc ? impl_->grpc->port() : -1; }

void Server::wait() {
  internal::MutexLock lock(&impl_->mu);
  while (!impl_->stopped && impl_->started) impl_->stopped_cv.wait(&impl_->mu);
}

void Server::shutdown() {
  Impl& s = *impl_;
  {
    internal::MutexLock lock(&s.mu);
    if (s.shutdown_started) {  // another thread is shutting down: wait for it to finish
      while (!s.stopped) s.stopped_cv.wait(&s.mu);
      return;
    }
    s.shutdown_started = true;
  }
  s.drain();
  // gRPC calls were drained with the rest (they are admitted calls too); what is left is
  // cancelled at once.
  if (s.grpc) s.grpc->shutdown(Clock::now());
  // Whatever clients do: slow or idle connections are closed, so no worker waits on them.
  s.http.stop();
  s.deadlines.close_all();
  if (s.listener.joinable()) s.listener.join();
  s.host.clear();
  internal::MutexLock lock(&s.mu);
  s.stopped = true;
  s.stopped_cv.notify_all();
  spdlog::info("kapsl serve: stopped");
}

}  // namespace kapsl
