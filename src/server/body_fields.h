// Field readers shared by the request-body parsers of the OpenAI, Anthropic and Responses
// APIs (openai_params.cc, anthropic_body.cc, responses_body.cc). Each throws
// Error(kInvalidInput) naming the field, what it accepts and what it got.
//
// Thread-safety: free functions over values; safe for concurrent use.
#ifndef KAPSL_SRC_SERVER_BODY_FIELDS_H_
#define KAPSL_SRC_SERVER_BODY_FIELDS_H_

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/openai_params.h"

namespace kapsl::server {

// The most tools a request may offer.
inline constexpr size_t kMaxTools = 128;

[[noreturn]] void bad(const std::string& field, const std::string& expected, const nlohmann::json& got);

// The string `field` of `object` (`where` names the object in the message).
std::string string_field(const nlohmann::json& object, const char* field, const std::string& where);

// Refuses `field` when present and not null (nor one of `harmless`).
void refuse(const nlohmann::json& body, const char* field, std::initializer_list<nlohmann::json> harmless = {});

// The text of a content that is a string or an array of blocks whose type is one of
// `text_types` (each with a string "text").
std::string content_text(const nlohmann::json& content, const std::string& field,
                         std::initializer_list<std::string_view> text_types);

// The sampling options of a body whose fields are renamed from OpenAI's (`renames`: theirs,
// ours), read by parse_sampling.
SamplingRequest renamed_sampling(const nlohmann::json& body,
                                 std::initializer_list<std::pair<const char*, const char*>> renames);

// Each tool's schema as the client wrote it (key order kept), found at `path` inside each
// element of the body's "tools", by position; empty where the text cannot tell (the
// caller then dumps the parsed schema, in sorted order). Models read a schema as text, in
// the order they were trained on ("type" first), as llama-server passes it.
std::vector<std::string> tool_schemas_as_sent(std::string_view raw, std::initializer_list<const char*> path);

// The object at `path` in the body (keys from the top), as the client wrote it (key order
// kept), or "" where the text cannot tell. For response formats' schemas: the order of a
// schema's properties is the order of the keys in the output.
std::string object_as_sent(std::string_view raw, std::initializer_list<const char*> path);

// Adds the tool `tool` describes: its "name" (non-empty), "description" and the schema at
// `schema_key` (as_sent[i] for the i-th tool when known). `where` names it in messages.
void add_tool(ChatPrompt* chat, const nlohmann::json& tool, const char* schema_key, const std::string& where,
              const std::vector<std::string>& as_sent);

// A tool_choice that names one tool: keeps that tool alone and requires a call of it.
void require_tool(ChatPrompt* chat, const nlohmann::json& name, const std::string& field);

// Throws if the chat requires a tool call but offers no tools.
void check_tool_choice(const ChatPrompt& chat);

}  // namespace kapsl::server

#endif  // KAPSL_SRC_SERVER_BODY_FIELDS_H_
