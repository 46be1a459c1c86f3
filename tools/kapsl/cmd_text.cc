// The text commands: kapsl generate, kapsl embed, kapsl tokenize — for any model whose
// engine has the TextGenerator or Embedder capability.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "kapsl/embedding.h"
#include "kapsl/text_generation.h"

namespace kapsl::cli {

TextGenerator& text_generator_of(Engine& engine, const std::string& model, const char* command) {
  TextGenerator* text = engine.text_generator();
  if (text == nullptr) {
    throw Error::invalid_input(std::string("kapsl ") + command + " needs a model that generates text",
                               model + " is a " + engine.model_info().backend + " model that does not");
  }
  return *text;
}

namespace {

struct GenerateArgs {
  std::string model;
  std::string prompt;
  bool chat = false;
  std::string system;
  GenerationOptions gen;
  int64_t seed = -1;
  LoadFlags load;
};

void add_sampling_flags(CLI::App& cmd, GenerateArgs& a) {
  cmd.add_option("-n,--max-tokens", a.gen.max_new_tokens, "tokens to generate at most")->capture_default_str();
  cmd.add_option("--temp", a.gen.temperature, "temperature; 0 = greedy")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd.add_option("--top-k", a.gen.top_k, "top-k; 0 = off")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd.add_option("--top-p", a.gen.top_p, "top-p; 1 = off")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  cmd.add_option("--min-p", a.gen.min_p, "min-p; 0 = off")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  cmd.add_option("--repeat-penalty", a.gen.repetition_penalty, "repetition penalty; 1 = off")->capture_default_str();
  cmd.add_option("--presence-penalty", a.gen.presence_penalty, "presence penalty; 0 = off")->capture_default_str();
  cmd.add_option("--frequency-penalty", a.gen.frequency_penalty, "frequency penalty; 0 = off")->capture_default_str();
  cmd.add_option("--repeat-last-n", a.gen.penalty_last_n, "tokens the penalties look back; -1 = all")->capture_default_str();
  cmd.add_option("-s,--seed", a.seed, "sampling seed; -1 = random")->capture_default_str();
  cmd.add_option("--stop", a.gen.stop, "stop string (repeatable); not printed");
  cmd.add_flag("--ignore-eos", a.gen.ignore_eos, "keep going past end-of-generation tokens");
}

void print_usage(const GenerationUsage& u) {
  std::fprintf(stderr,
               "\n[%u prompt tokens, %u generated, finish: %s; first token %.1f ms; prompt %.1f tok/s, "
               "generation %.1f tok/s]\n",
               u.prompt_tokens, u.completion_tokens, finish_reason_name(u.finish_reason),
               u.time_to_first_token_s * 1e3, u.prompt_tokens_per_s, u.generation_tokens_per_s);
}

void run_generate(const CliContext& context, GenerateArgs& a) {
  if (a.prompt.empty()) throw UsageError("kapsl generate needs a prompt: -p TEXT");
  if (a.seed >= 0) a.gen.seed = static_cast<uint32_t>(a.seed);
  const auto engine = load_model(context, a.model, a.load).engine;
  TextGenerator& text = text_generator_of(*engine, a.model, "generate");
  GenerateRequest req;
  req.options = a.gen;
  if (a.chat) {
    ChatPrompt chat{{}, {}};  // the engine's template: --chat-template (a load flag), the model's, or chatml
    if (!a.system.empty()) chat.messages.push_back({"system", a.system});
    chat.messages.push_back({"user", a.prompt});
    req.prompt = std::move(chat);
  } else {
    req.prompt = a.prompt;
  }
  const GenerateResult r = text.generate(req, [](const StreamChunk& c) {
    std::fwrite(c.text.data(), 1, c.text.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::fputc('\n', stdout);
  print_usage(r.usage);
}

void register_generate_command(CLI::App& app, const CliContext& context) {
  auto a = std::make_shared<GenerateArgs>();
  auto* cmd = app.add_subcommand("generate", "generate text, streamed to stdout");
  cmd->add_option("model", a->model, "model file, model folder (metadata.json) or .aimod package")->required();
  cmd->add_option("-p,--prompt", a->prompt, "prompt text")->required();
  cmd->add_flag("--chat", a->chat, "render the prompt as a user message with the model's chat template");
  cmd->add_option("--system", a->system, "system message (with --chat)");
  add_sampling_flags(*cmd, *a);
  add_load_flags(*cmd, a->load, /*text=*/true);
  cmd->callback([a, &context] { run_generate(context, *a); });
}

}  // namespace

void register_generate(CLI::App& app, const CliContext& context) { register_generate_command(app, context); }

void register_embed(CLI::App& app, const CliContext& context) {
  struct Args {
    std::string model;
    std::vector<std::string> texts;
    bool no_normalize = false;
    bool json = false;
    LoadFlags load;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("embed", "embed texts");
  cmd->add_option("model", a->model, "model file, model folder (metadata.json) or .aimod package")->required();
  cmd->add_option("texts", a->texts, "texts to embed")->required();
  cmd->add_flag("--no-normalize", a->no_normalize, "do not L2-normalise");
  cmd->add_flag("--json", a->json, "print every value as JSON");
  add_load_flags(*cmd, a->load, /*text=*/true);
  cmd->callback([a, &context] {
    a->load.task = "embed";
    const auto engine = load_model(context, a->model, a->load).engine;
    Embedder* embedder = engine->embedder();
    if (embedder == nullptr) throw Error::invalid_input("kapsl embed: " + a->model + " does not produce embeddings");
    const std::vector<EmbeddingInput> inputs(a->texts.begin(), a->texts.end());
    EmbedOptions options;
    options.normalize = !a->no_normalize;
    const auto vectors = embedder->embed(inputs, options).vectors;
    if (a->json) {
      std::cout << nlohmann::json(vectors).dump() << "\n";
      return;
    }
    for (size_t i = 0; i < vectors.size(); ++i) {
      const auto& v = vectors[i];
      std::printf("%zu: [%zu] %.4f %.4f %.4f ... %.4f  %s\n", i, v.size(), v.empty() ? 0.0 : v[0],
                  v.size() > 1 ? v[1] : 0.0, v.size() > 2 ? v[2] : 0.0, v.empty() ? 0.0 : v.back(), a->texts[i].c_str());
    }
  });
}

void register_tokenize(CLI::App& app, const CliContext& context) {
  struct Args {
    std::string model;
    std::string text;
    bool no_special = false;
    bool json = false;
    LoadFlags load;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("tokenize", "show how a model tokenizes text");
  cmd->add_option("model", a->model, "model file, model folder (metadata.json) or .aimod package")->required();
  cmd->add_option("text", a->text, "text")->required();
  cmd->add_flag("--no-special", a->no_special, "do not add BOS/EOS");
  cmd->add_flag("--json", a->json, "print JSON");
  cmd->callback([a, &context] {
    a->load.tokenizer_only = true;
    a->load.progress = false;
    const auto engine = load_model(context, a->model, a->load).engine;
    const TextGenerator& text = text_generator_of(*engine, a->model, "tokenize");
    const auto ids = text.tokenize(a->text, !a->no_special, false);
    nlohmann::json j = nlohmann::json::array();
    for (const int32_t id : ids) {
      const std::string piece = text.detokenize(std::span(&id, 1), true);
      if (a->json) j.push_back({{"id", id}, {"piece", piece}});
      else std::printf("%6d  %s\n", id, nlohmann::json(piece).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    }
    if (a->json) std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  });
}

}  // namespace kapsl::cli
