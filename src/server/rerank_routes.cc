// Reranking: POST /v1/rerank (and llama-server's aliases /rerank, /v1/reranking), for models
// loaded with the "rerank" task (a Reranker engine). The body is Jina's and Cohere's —
// {"model", "query", "documents": [string | {"text"}], "top_n", "return_documents"} —
// answered with {"model", "object": "list", "usage", "results": [{"index",
// "relevance_score", "document"?}]}, most relevant first; or TEI's — "texts" in place of
// "documents", "return_text" — answered with the bare array of {"index", "score", "text"?},
// as llama-server does. Errors use OpenAI's shape.
#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kapsl/error.h"
#include "kapsl/reranker.h"
#include "server/body_fields.h"
#include "server/generation_route.h"
#include "server/openai_params.h"
#include "server/rerank_body.h"
#include "server/server_impl.h"

namespace kapsl {

using json = nlohmann::json;

namespace server {

RerankBody parse_rerank_body(const json& body) {
  only_fields(body, {"model", "query", "documents", "texts", "top_n", "return_documents", "return_text"},
                      "rerank");
  RerankBody out;
  out.model = model_field(body);
  out.query = string_field(body, "query", "body");
  out.tei = body.contains("texts");
  const json& list = out.tei ? body["texts"] : body.value("documents", json());
  const char* field = out.tei ? "texts" : "documents";
  if (!list.is_array() || list.empty() || list.size() > kMaxRerankDocuments) {
    bad(field, "an array of 1 to " + std::to_string(kMaxRerankDocuments) + " documents", list);
  }
  for (const json& d : list) {
    if (d.is_string()) out.documents.push_back(d.get<std::string>());
    else if (!out.tei && d.is_object() && d.contains("text")) out.documents.push_back(string_field(d, "text", field));
    else bad(std::string(field) + "[]", out.tei ? "a string" : "a string or {\"text\": ...}", d);
  }
  const auto top_n = body.find("top_n");
  if (top_n != body.end() && !top_n->is_null() && (!top_n->is_number_integer() || top_n->get<int64_t>() < 1)) {
    bad("top_n", "a positive integer", *top_n);
  }
  out.top_n = top_n == body.end() || top_n->is_null() ? out.documents.size()
                                                      : std::min<size_t>(top_n->get<uint64_t>(), out.documents.size());
  out.return_text = flag(body, out.tei ? "return_text" : "return_documents");
  return out;
}

}  // namespace server

namespace {

using server::RerankBody;

Reranker& reranker_of(Engine& engine, const server::RepositoryModel& model) {
  Reranker* reranker = engine.reranker();
  if (reranker == nullptr) {
    throw Error::invalid_input("model '" + model.name + "' does not rerank",
                               "its task is " + model.resolved->task + " (a reranking model needs the task \"rerank\")");
  }
  return *reranker;
}

json results_json(const RerankBody& body, const RerankScores& r) {
  std::vector<size_t> order(r.scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return r.scores[a] > r.scores[b]; });
  json results = json::array();
  for (size_t k = 0; k < body.top_n; ++k) {
    const size_t i = order[k];
    json e = {{"index", i}, {body.tei ? "score" : "relevance_score", r.scores[i]}};
    if (body.return_text && body.tei) e["text"] = body.documents[i];
    else if (body.return_text) e["document"] = {{"text", body.documents[i]}};
    results.push_back(std::move(e));
  }
  if (body.tei) return results;
  return {{"model", body.model},
          {"object", "list"},
          {"usage", {{"prompt_tokens", r.prompt_tokens}, {"total_tokens", r.prompt_tokens}}},
          {"results", std::move(results)}};
}

void rerank_route(Server::Impl& s, const httplib::Request& req, httplib::Response& res,
                  const httplib::ContentReader& reader) {
  auto lease = s.bodies.lease();
  const json body = server::parse_object(s.read_body(req, reader, lease));
  server::RepositoryModel model = s.find_model(server::model_field(body));  // 404 before anything else
  const RerankBody parsed = server::parse_rerank_body(body);
  Server::Impl::ModelCall call = s.begin_call(std::move(model), server::EngineRole::kMain, req);
  const RerankScores scores = server::run_counted(s, call, [&] {
    EmbedOptions options;
    options.deadline = call.deadline;
    options.cancel = call.cancel;
    return reranker_of(*call.engine, call.model).rerank(parsed.query, parsed.documents, options);
  });
  s.finish_call(call, server::Outcome::kSuccess);
  call.stats->prompt_tokens.fetch_add(scores.prompt_tokens, std::memory_order_relaxed);
  res.set_content(server::dump(results_json(parsed, scores)), "application/json");
}

}  // namespace

void Server::Impl::register_rerank_routes() {
  for (const char* path : {"/v1/rerank", "/rerank", "/v1/reranking", "/reranking"}) {
    http.Post(path, [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
      guarded(res, server::ApiStyle::kOpenAi, [&] { rerank_route(*this, req, res, reader); });
    });
  }
}

}  // namespace kapsl
