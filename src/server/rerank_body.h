// The body of /v1/rerank: Jina's and Cohere's {"model", "query", "documents": [string |
// {"text"}], "top_n", "return_documents"}, or TEI's {"query", "texts", "return_text"}.
//
// Thread-safety: a free function over values; safe for concurrent use.
#ifndef KAPSL_SRC_SERVER_RERANK_BODY_H_
#define KAPSL_SRC_SERVER_RERANK_BODY_H_

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kapsl::server {

// The most documents one request may rank.
inline constexpr size_t kMaxRerankDocuments = 1024;

struct RerankBody {
  std::string model;
  std::string query;
  std::vector<std::string> documents;
  size_t top_n = 0;          // results to return, at most documents.size()
  bool tei = false;          // TEI's "texts" shape: answered with a bare array
  bool return_text = false;  // return_documents (Jina, Cohere) or return_text (TEI)
};

// Throws Error(kInvalidInput) naming the field: a missing model or query, no documents or
// more than kMaxRerankDocuments, a document that is not text, a top_n below 1, an unknown
// field.
RerankBody parse_rerank_body(const nlohmann::json& body);

}  // namespace kapsl::server

#endif  // KAPSL_SRC_SERVER_RERANK_BODY_H_
