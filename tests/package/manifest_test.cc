#include "kapsl/manifest.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "support/test_util.h"

namespace kapsl {
namespace {

using testing::expect_error;

// A valid manifest with `extra` spliced into the root object.
std::string doc(const std::string& extra = "") {
  std::string base =
      R"({"project_name":"demo","framework":"onnx","version":"1.0.0","created_at":"2026-01-01T00:00:00Z",)"
      R"("model_file":"model.onnx")";
  return base + (extra.empty() ? "" : "," + extra) + "}";
}

// `doc` with one required field removed.
std::string without(const std::string& field) {
  nlohmann::json j = nlohmann::json::parse(doc());
  j.erase(field);
  return j.dump();
}

TEST(ManifestTest, ParsesEveryField) {
  Manifest m = parse_manifest(doc(
      R"("metadata":{"embed":{"normalize":false},"x":[1,2]},"format":"onnx","model_type":"encoder","task":"embed",)"
      R"("hardware_requirements":{"preferred_provider":"cuda","fallback_providers":["cpu"],"min_memory_mb":1024,)"
      R"("min_vram_mb":2048,"gpu_memory_reservation_mb":1,"gpu_memory_limit_mb":2,"gpu_compute_share_milli":500,)"
      R"("isolation_mode":"hard","min_cuda_version":"11.8","required_precision":"fp16","optimized_for":["a100"],)"
      R"("graph_optimization_level":"basic","device_id":1,"gpu_device_ids":[0,1],"strategy":"pool"},)"
      R"("cron_jobs":[{"id":"j1","schedule":"0 */5 * * * *","input":{"shape":[1],"dtype":"float32","data":[0,0,0,0]},)"
      R"("priority":"latency_critical","force_cpu":true,"overflow_policy":"block"},{"id":"j2","schedule":{"interval_secs":30}}])"));
  EXPECT_EQ(m.project_name, "demo");
  EXPECT_EQ(m.model_file, "model.onnx");
  EXPECT_EQ(m.task, "embed");
  EXPECT_EQ(m.model_type, "encoder");
  EXPECT_EQ(m.metadata_bool("embed.normalize"), false);
  EXPECT_EQ(m.metadata_bool("classify.apply_softmax"), std::nullopt);
  const HardwareRequirements& h = m.hardware_requirements;
  EXPECT_EQ(h.preferred_provider, "cuda");
  EXPECT_EQ(h.fallback_providers, std::vector<std::string>{"cpu"});
  EXPECT_EQ(h.min_memory_mb, 1024u);
  EXPECT_EQ(h.gpu_compute_share_milli, 500u);
  EXPECT_EQ(h.device_id, 1);
  EXPECT_EQ(h.gpu_device_ids, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(h.requested_gpu_memory_mb(), 1u);
  ASSERT_EQ(m.cron_jobs.size(), 2u);
  EXPECT_EQ(m.cron_jobs[0].priority, CronJob::Priority::kLatencyCritical);
  EXPECT_EQ(m.cron_jobs[0].overflow_policy, CronJob::OverflowPolicy::kBlock);
  EXPECT_TRUE(m.cron_jobs[0].force_cpu);
  EXPECT_NE(m.cron_jobs[0].input_json.find("float32"), std::string::npos);
  EXPECT_EQ(m.cron_jobs[1].interval_secs, 30u);

  Manifest again = parse_manifest(manifest_to_json(m));
  EXPECT_EQ(manifest_to_json(again), manifest_to_json(m));
  EXPECT_EQ(again.hardware_requirements.min_cuda_version, "11.8");
  EXPECT_EQ(again.cron_jobs[1].interval_secs, 30u);
}

// An unknown key holding an object is kept as a backend section: the factory refuses it
// unless a registered backend has that name (ResolutionTest).
TEST(ManifestTest, OptionalFieldsDefaultAndObjectKeysAreKeptAsBackendSections) {
  Manifest m = parse_manifest(doc(R"("future_field":{"a":1},"hardware_requirements":{"device_id":null})"));
  EXPECT_EQ(m.backend_sections.at("future_field"), R"({"a":1})");
  EXPECT_TRUE(m.metadata_json.empty());
  EXPECT_FALSE(m.hardware_requirements.device_id.has_value());
  EXPECT_TRUE(m.cron_jobs.empty());
  EXPECT_EQ(m.hardware_requirements.requested_isolation_mode(), "best_effort");
}

TEST(ManifestTest, NotJsonNamesTheOffset) {
  expect_error([] { parse_manifest("{\"project_name\": \"x\",", "pkg.aimod: metadata.json"); },
               ErrorCode::kInvalidInput, {"pkg.aimod: metadata.json", "not valid JSON", "byte"});
}

// Found by fuzzing: the JSON library's overflow exception escaped parse_manifest.
TEST(ManifestTest, ANumberBeyondADoubleIsAnError) {
  expect_error([] { parse_manifest(R"({"project_name": "x", "threads": 8999999.99e399})", "metadata.json"); },
               ErrorCode::kInvalidInput, {"metadata.json", "beyond the range of a double"});
}

TEST(ManifestTest, RootMustBeAnObject) {
  expect_error([] { parse_manifest("[1,2]"); }, ErrorCode::kInvalidInput, {"JSON object", "array"});
}

TEST(ManifestTest, EachRequiredFieldIsNamedWhenMissing) {
  for (const char* field : {"project_name", "framework", "version", "created_at", "model_file"}) {
    SCOPED_TRACE(field);
    expect_error([&] { parse_manifest(without(field)); }, ErrorCode::kInvalidInput, {field, "missing"});
  }
}

TEST(ManifestTest, RequiredStringMustNotBeEmpty) {
  std::string d = doc();
  d.replace(d.find("\"demo\""), 6, "\" \"");
  expect_error([&] { parse_manifest(d); }, ErrorCode::kInvalidInput, {"project_name", "non-empty"});
}

TEST(ManifestTest, WrongTypeNamesFieldPathExpectedAndGot) {
  std::string d = doc();
  d.replace(d.find("\"1.0.0\""), 7, "1");
  expect_error([&] { parse_manifest(d); }, ErrorCode::kInvalidInput, {"version", "expected a string", "number"});
  expect_error([] { parse_manifest(doc(R"("hardware_requirements":{"fallback_providers":["cpu",7]})")); },
               ErrorCode::kInvalidInput, {"hardware_requirements.fallback_providers[1]", "expected a string", "7"});
  expect_error([] { parse_manifest(doc(R"("hardware_requirements":"gpu")")); }, ErrorCode::kInvalidInput,
               {"hardware_requirements", "expected an object"});
  expect_error([] { parse_manifest(doc(R"("hardware_requirements":{"min_memory_mb":"8G"})")); },
               ErrorCode::kInvalidInput, {"hardware_requirements.min_memory_mb", "integer", "\"8G\""});
  expect_error([] { parse_manifest(doc(R"("cron_jobs":{"id":"x"})")); }, ErrorCode::kInvalidInput,
               {"cron_jobs", "expected an array"});
}

TEST(ManifestTest, NumbersOutOfRangeAreRejected) {
  expect_error([] { parse_manifest(doc(R"("hardware_requirements":{"min_memory_mb":-1})")); },
               ErrorCode::kInvalidInput, {"hardware_requirements.min_memory_mb", "-1"});
  expect_error([] { parse_manifest(doc(R"("hardware_requirements":{"device_id":4294967296})")); },
               ErrorCode::kInvalidInput, {"hardware_requirements.device_id", "32-bit"});
  expect_error([] { parse_manifest(doc(R"("hardware_requirements":{"gpu_compute_share_milli":5000000000})")); },
               ErrorCode::kInvalidInput, {"gpu_compute_share_milli"});
  expect_error([] { parse_manifest(doc(R"("hardware_requirements":{"gpu_device_ids":[0,1.5]})")); },
               ErrorCode::kInvalidInput, {"hardware_requirements.gpu_device_ids[1]"});
}

TEST(ManifestTest, CronJobErrorsNameTheJob) {
  expect_error([] { parse_manifest(doc(R"("cron_jobs":[{"id":"a","schedule":"* * * * *"}])")); },
               ErrorCode::kInvalidInput, {"cron_jobs[0].schedule", "6 fields"});
  expect_error([] { parse_manifest(doc(R"("cron_jobs":[{"id":"a","schedule":{"interval_secs":0}}])")); },
               ErrorCode::kInvalidInput, {"cron_jobs[0].schedule.interval_secs", "positive"});
  expect_error([] { parse_manifest(doc(R"("cron_jobs":[{"id":"a","schedule":{"interval_secs":1}},{"id":"b"}])")); },
               ErrorCode::kInvalidInput, {"cron_jobs[1].schedule", "missing"});
  expect_error(
      [] { parse_manifest(doc(R"("cron_jobs":[{"id":"a","schedule":{"interval_secs":1},"priority":"urgent"}])")); },
      ErrorCode::kInvalidInput, {"cron_jobs[0].priority", "latency_critical", "urgent"});
  expect_error([] {
    parse_manifest(doc(R"("cron_jobs":[{"id":"a","schedule":{"interval_secs":1},"overflow_policy":"drop"}])"));
  }, ErrorCode::kInvalidInput, {"cron_jobs[0].overflow_policy", "drop"});
  expect_error([] { parse_manifest(doc(R"("cron_jobs":[5])")); }, ErrorCode::kInvalidInput,
               {"cron_jobs[0]", "an object"});
}

TEST(ManifestTest, ModelFileMustStayInsideThePackage) {
  for (const char* bad : {"../model.onnx", "/etc/passwd", "a/../../b.onnx"}) {
    SCOPED_TRACE(bad);
    std::string d = doc();
    d.replace(d.find("\"model.onnx\""), 12, std::string("\"") + bad + "\"");
    expect_error([&] { parse_manifest(d); }, ErrorCode::kInvalidInput, {"model_file", bad});
  }
}

TEST(ManifestTest, DeeplyNestedMetadataIsRefused) {
  std::string deep = std::string(10000, '[') + std::string(10000, ']');
  expect_error([&] { parse_manifest(doc("\"metadata\":" + deep)); }, ErrorCode::kInvalidInput, {"nested deeper"});
}

TEST(ManifestTest, MetadataBoolOfWrongTypeNamesThePath) {
  Manifest m = parse_manifest(doc(R"("metadata":{"classify":{"apply_softmax":"yes"}})"));
  expect_error([&] { m.metadata_bool("classify.apply_softmax"); }, ErrorCode::kInvalidInput,
               {"metadata.classify.apply_softmax", "boolean"});
}

TEST(ManifestTest, ToJsonRefusesBrokenEmbeddedJson) {
  Manifest m = synthesize_manifest("m.onnx");
  m.metadata_json = "{not json";
  expect_error([&] { manifest_to_json(m); }, ErrorCode::kInvalidInput, {"metadata_json"});
  m.metadata_json = "";
  m.project_name = "bad\xff";
  EXPECT_NE(manifest_to_json(m).find("bad\xEF\xBF\xBD"), std::string::npos);  // U+FFFD, not a throw
}

// The format of a bare file is the backend registry's call (BackendFactory::open); the
// manifest takes what it is given.
TEST(ManifestTest, SynthesizedForBareFiles) {
  Manifest g = synthesize_manifest("/models/TinyLlama.Q4.GGUF", "gguf");
  EXPECT_EQ(g.framework, "gguf");
  EXPECT_EQ(g.format, "gguf");
  EXPECT_EQ(g.project_name, "TinyLlama.Q4");
  EXPECT_EQ(g.version, "1.0.0");
  EXPECT_EQ(g.model_file, "TinyLlama.Q4.GGUF");
  EXPECT_EQ(synthesize_manifest("weights.bin").framework, "");
  EXPECT_EQ(synthesize_manifest("weights.bin").model_file, "weights.bin");
}

TEST(ManifestTest, UnknownKeysAreErrorsNamingTheirPath) {
  expect_error([] { parse_manifest(doc(R"("serving":{"max_concurency":2})")); }, ErrorCode::kInvalidInput,
               {"serving", "unknown field \"max_concurency\"", "max_concurrency"});
  expect_error([] { parse_manifest(doc(R"("hardware_requirements":{"prefered_provider":"cuda"})")); },
               ErrorCode::kInvalidInput, {"hardware_requirements", "\"prefered_provider\""});
  expect_error([] { parse_manifest(doc(R"("cron_jobs":[{"id":"a","schedule":"* * * * * *","prio":1}])")); },
               ErrorCode::kInvalidInput, {"cron_jobs[0]", "\"prio\""});
  expect_error([] { parse_manifest(doc(R"("treads":4)")); }, ErrorCode::kInvalidInput, {"treads", "unknown field"});
}

TEST(ManifestTest, ConfigurationSections) {
  Manifest m = parse_manifest(doc(R"("threads":2,"serving":{"max_concurrency":3,"max_queue":0,"queue_timeout":"500ms",)"
                                  R"("request_timeout":2.5,"warmup":true,"pin":false,"idle_ttl":"5m"},)"
                                  R"("gguf":{"context":4096,"anything":[1]})"));
  EXPECT_EQ(m.threads, 2);
  EXPECT_EQ(m.serving.max_concurrency, 3u);
  EXPECT_EQ(m.serving.max_queue, 0u);
  EXPECT_EQ(m.serving.queue_timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(m.serving.request_timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(m.serving.warmup, true);
  EXPECT_EQ(m.serving.pin, false);
  EXPECT_EQ(m.serving.idle_ttl, std::chrono::minutes(5));
  EXPECT_FALSE(m.serving.max_concurrency == std::nullopt);
  ASSERT_EQ(m.backend_sections.count("gguf"), 1u);  // its backend checks it, not the manifest
  Manifest again = parse_manifest(manifest_to_json(m));
  EXPECT_EQ(manifest_to_json(again), manifest_to_json(m));
  EXPECT_EQ(again.serving.idle_ttl, std::chrono::minutes(5));
  EXPECT_EQ(again.backend_sections, m.backend_sections);
  expect_error([] { parse_manifest(doc(R"("serving":{"max_concurrency":0})")); }, ErrorCode::kInvalidInput,
               {"serving.max_concurrency", "positive"});
  expect_error([] { parse_manifest(doc(R"("serving":{"idle_ttl":"soon"})")); }, ErrorCode::kInvalidInput,
               {"serving.idle_ttl", "\"soon\""});
  expect_error([] { parse_manifest(doc(R"("threads":-1)")); }, ErrorCode::kInvalidInput, {"threads", "-1"});
}

TEST(ManifestTest, HostileNestingIsRefusedWhileParsing) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  expect_error([&] { parse_manifest(doc("\"metadata\":" + deep)); }, ErrorCode::kInvalidInput, {"nested deeper"});
}

TEST(ManifestTest, ReadManifestFromFile) {
  testing::TempDir dir;
  expect_error([&] { read_manifest(dir.path() / "metadata.json"); }, ErrorCode::kNotFound, {"metadata.json"});
  std::ofstream(dir.path() / "metadata.json") << doc();
  EXPECT_EQ(read_manifest(dir.path() / "metadata.json").framework, "onnx");
}

}  // namespace
}  // namespace kapsl
