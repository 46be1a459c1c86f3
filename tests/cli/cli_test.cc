// The kapsl binary run as a user runs it: arguments in, stdout, stderr and exit code out,
// on an ONNX model from Debian's ONNX test data and tiny GGUF models generated at build time.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "npy.h"
#include "onnx/test_models.h"

namespace kapsl::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;

struct CliRun {
  int code = -1;
  std::string out;
  std::string err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("kapsl-cli-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  // Runs `kapsl ARGS` through the shell (args are already quoted by the caller).
  static CliRun kapsl(const std::string& args) {
    const fs::path out = dir_ / "stdout", err = dir_ / "stderr";
    const std::string cmd = std::string(KAPSL_CLI_PATH) + " " + args + " >" + out.string() + " 2>" + err.string();
    const int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
  }
  static std::string file(const std::string& name) { return (dir_ / name).string(); }
  static std::string data(const std::string& name) { return std::string(KAPSL_TEST_DATA_DIR) + "/" + name; }

  const std::string add_ = std::string(KAPSL_ONNX_TESTDATA) + "/node/test_add/model.onnx";
  const std::string tiny_ = data("tiny-spm.gguf");
  static fs::path dir_;
};

fs::path CliTest::dir_;

TEST_F(CliTest, HelpAndUsageErrors) {
  const CliRun help = kapsl("--help");
  EXPECT_EQ(help.code, 0);
  for (const char* sub : {"info", "run", "generate", "embed", "tokenize", "bench", "devices", "version"}) {
    EXPECT_THAT(help.out, HasSubstr(sub));
  }
  EXPECT_EQ(kapsl("").code, 2);
  EXPECT_EQ(kapsl("frobnicate").code, 2);
  EXPECT_EQ(kapsl("info").code, 2);  // missing MODEL
  EXPECT_EQ(kapsl("generate " + tiny_).code, 2);  // missing -p
  EXPECT_EQ(kapsl("generate " + tiny_ + " -p hi --top-p 2").code, 2);
  EXPECT_EQ(kapsl("bench " + add_ + " --runs 0").code, 2);
}

// `kapsl worker` refuses what it cannot serve before it starts; its help and --rpc's carry
// the security note.
TEST_F(CliTest, WorkerRefusesBadAddressesAndDevices) {
  const CliRun bad_host = kapsl("worker --host not-an-address");
  EXPECT_EQ(bad_host.code, 1);
  EXPECT_THAT(bad_host.err, HasSubstr("invalid worker address \"not-an-address\""));
  const CliRun bad_device = kapsl("worker --port 1 --device NOPE0");
  EXPECT_EQ(bad_device.code, 1);
  EXPECT_THAT(bad_device.err, AnyOf(HasSubstr("cannot listen on 127.0.0.1:1"), HasSubstr("unknown device \"NOPE0\"")));
  EXPECT_THAT(kapsl("worker --help").out, HasSubstr("no authentication and no encryption"));
  EXPECT_THAT(kapsl("serve --help").out, HasSubstr("no authentication or encryption"));
  const CliRun bad_worker = kapsl("info " + tiny_ + " --rpc 127.0.0.1");
  EXPECT_EQ(bad_worker.code, 1);
  EXPECT_THAT(bad_worker.err, HasSubstr("invalid RPC worker \"127.0.0.1\""));
}

// A repository or one model, never both; a name only for one model. The server's own
// refusals (a storage with several models) are in tests/deploy/runtime_e2e.sh.
TEST_F(CliTest, ServeTakesARepositoryOrOneModel) {
  const CliRun neither = kapsl("serve --port 0");
  EXPECT_EQ(neither.code, 2);
  EXPECT_THAT(neither.err, HasSubstr("give --models DIR (a repository) or --model PATH (one model)"));
  EXPECT_EQ(kapsl("serve --port 0 --models " + dir_.string() + " --model " + add_).code, 2);
  const CliRun orphan_name = kapsl("serve --port 0 --models " + dir_.string() + " --model-name m");
  EXPECT_EQ(orphan_name.code, 2);
  EXPECT_THAT(orphan_name.err, HasSubstr("--model-name names the model of --model"));
  const CliRun bad_name = kapsl("serve --port 0 --model " + add_ + " --model-name ../m");
  EXPECT_EQ(bad_name.code, 1);
  EXPECT_THAT(bad_name.err, HasSubstr("'../m' is not a valid model name"));
  const CliRun missing = kapsl("serve --port 0 --model " + file("nope.onnx"));
  EXPECT_EQ(missing.code, 1);
  EXPECT_THAT(missing.err, HasSubstr("model storage does not exist"));
}

TEST_F(CliTest, VersionNamesTheLinkedLibraries) {
  const CliRun r = kapsl("version");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("onnx         onnxruntime 1.29.0"));
  EXPECT_THAT(r.out, HasSubstr("cpu"));
  EXPECT_THAT(r.out, HasSubstr("gguf         llama.cpp v0.5.0"));
  const CliRun d = kapsl("devices");
  EXPECT_EQ(d.code, 0);
  EXPECT_THAT(d.out, HasSubstr("cpu "));
  EXPECT_THAT(d.out, HasSubstr("backend   gguf: providers"));
  const auto j = nlohmann::json::parse(kapsl("devices --json").out);
  EXPECT_GT(j["cpu"]["memory_total_bytes"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["devices"][0]["backend"], "cpu");
  EXPECT_TRUE(j["backends"]["onnx"]["providers"].is_array());
}

TEST_F(CliTest, InfoOnOnnxAndGguf) {
  const CliRun r = kapsl("info " + add_);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("float32   [3, 4, 5]"));
  const auto j = nlohmann::json::parse(kapsl("info --json " + add_).out);
  EXPECT_EQ(j["backend"], "onnx");
  EXPECT_EQ(j["inputs"][1]["name"], "y");
  EXPECT_EQ(j["load_report"]["provider"], "cpu");
  const CliRun g = kapsl("info " + tiny_);
  EXPECT_EQ(g.code, 0) << g.err;
  EXPECT_THAT(g.out, HasSubstr("loaded        gguf/generate on cpu:0"));
  EXPECT_THAT(g.out, HasSubstr("architecture = llama"));
  EXPECT_THAT(g.out, HasSubstr("vocabulary    32000"));
  const auto gj = nlohmann::json::parse(kapsl("info --json " + tiny_).out);
  EXPECT_EQ(gj["text"]["vocab_size"], 32000);
  EXPECT_EQ(gj["metadata"]["architecture"], "llama");
}

TEST_F(CliTest, BadModelsAreOneLineErrorsWithExitCode1) {
  const CliRun missing = kapsl("info " + file("missing.onnx"));
  EXPECT_EQ(missing.code, 1);
  EXPECT_THAT(missing.err, HasSubstr("kapsl: error: no such model or package"));
  EXPECT_THAT(missing.err, HasSubstr("missing.onnx"));
  std::ofstream(file("notes.txt")) << "hello";
  EXPECT_THAT(kapsl("info " + file("notes.txt")).err, HasSubstr("no backend takes \".txt\" files"));
  std::ofstream(file("garbage.onnx")) << "this is not protobuf";
  const CliRun bad = kapsl("info " + file("garbage.onnx"));
  EXPECT_EQ(bad.code, 1);
  EXPECT_THAT(bad.err, HasSubstr("garbage.onnx"));
  std::ofstream(file("garbage.gguf")) << "GGUF but not really";
  EXPECT_EQ(kapsl("info " + file("garbage.gguf")).code, 1);
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1);
}

TEST_F(CliTest, RunAddsTwoNpyInputs) {
  std::vector<float> x(60), y(60);
  for (size_t i = 0; i < 60; ++i) {
    x[i] = static_cast<float>(i);
    y[i] = 0.5f;
  }
  npy_save(file("x.npy"), Tensor::from_vector<float>({3, 4, 5}, x));
  npy_save(file("y.npy"), Tensor::from_vector<float>({3, 4, 5}, y));
  const CliRun r = kapsl("run " + add_ + " -i x=" + file("x.npy") + " -i y=" + file("y.npy") + " -o " + file("out"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("sum: float32 [3, 4, 5]"));
  const Tensor sum = npy_load(file("out/sum.npy"));
  EXPECT_FLOAT_EQ(sum.data<float>()[59], 59.5f);
}

TEST_F(CliTest, RunWithSynthesisedInputsAndJson) {
  const CliRun r = kapsl("run " + add_ + " --fill ones --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["outputs"][0]["data"][0], 2.0);
  const auto seeded = [&] { return nlohmann::json::parse(kapsl("run " + add_ + " --fill random --seed 3 --json").out)["outputs"]; };
  EXPECT_EQ(seeded(), seeded());
}

TEST_F(CliTest, RunUsageAndInputErrors) {
  EXPECT_EQ(kapsl("run " + add_).code, 2);  // inputs not given
  EXPECT_THAT(kapsl("run " + add_).err, HasSubstr("--input x=FILE.npy"));
  EXPECT_EQ(kapsl("run " + add_ + " -i x").code, 2);
  EXPECT_THAT(kapsl("run " + add_ + " -i nope=a.npy").err, HasSubstr("no input 'nope'"));

  std::ofstream(file("bad.npy")) << "nope";
  const CliRun bad = kapsl("run " + add_ + " -i x=" + file("bad.npy") + " --fill zeros");
  EXPECT_EQ(bad.code, 1);
  EXPECT_THAT(bad.err, HasSubstr("bad.npy is not a valid .npy file"));
  npy_save(file("wrong.npy"), Tensor::zeros(DType::kFloat32, {2, 2}));
  const CliRun shape = kapsl("run " + add_ + " -i x=" + file("wrong.npy") + " --fill zeros");
  EXPECT_EQ(shape.code, 1);
  EXPECT_THAT(shape.err, HasSubstr("'x'"));
}

TEST_F(CliTest, GenerateStreamsAndReportsUsage) {
  const std::string args = "generate " + tiny_ + " -p 'Hello, my name is' -n 8 --temp 0 --ignore-eos";
  const CliRun r = kapsl(args);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("6 prompt tokens, 8 generated, finish: length"));
  EXPECT_EQ(r.out, kapsl(args).out);  // greedy is deterministic
  const std::string seeded = "generate " + tiny_ + " -p Hi -n 6 --seed 11 --temp 1 --ignore-eos";
  EXPECT_EQ(kapsl(seeded).out, kapsl(seeded).out);
  // No template in the model: chatml, as llama-server does; --chat-template names another.
  const CliRun chat = kapsl("generate " + tiny_ + " -p Hi --chat -n 2");
  ASSERT_EQ(chat.code, 0) << chat.err;
  const CliRun llama3 = kapsl("generate " + tiny_ + " -p Hi --chat -n 2 --chat-template llama3");
  ASSERT_EQ(llama3.code, 0) << llama3.err;
  EXPECT_NE(chat.err.substr(0, chat.err.find("prompt tokens")), llama3.err.substr(0, llama3.err.find("prompt tokens")));
  const CliRun unknown = kapsl("generate " + tiny_ + " -p Hi --chat --chat-template no-such-template");
  EXPECT_EQ(unknown.code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("template"));
  EXPECT_EQ(kapsl("generate " + add_ + " -p Hi").code, 1);
}

// Every model source: a manifest folder and an .aimod package run like a bare file, and
// the manifest's settings apply (a cuda-then-cpu manifest loads on CPU here, saying why).
TEST_F(CliTest, FoldersAndPackagesRunAndReportHowTheyLoaded) {
  const std::string dir = file("add-model");
  fs::create_directories(dir);
  fs::copy_file(add_, dir + "/model.onnx", fs::copy_options::overwrite_existing);
  std::ofstream(dir + "/metadata.json")
      << R"({"project_name":"add","framework":"onnx","version":"2","created_at":"","model_file":"model.onnx",)"
         R"("hardware_requirements":{"preferred_provider":"cuda","fallback_providers":["cpu"]}})";
  const CliRun r = kapsl("run " + dir + " --fill ones --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["outputs"][0]["data"][0], 2.0);
  const auto info = nlohmann::json::parse(kapsl("info --json " + dir).out);
  EXPECT_EQ(info["load_report"]["provider"], "cpu");
  EXPECT_EQ(info["load_report"]["failures"][0]["provider"], "cuda");
  const std::string package = file("add.aimod");
  ASSERT_EQ(std::system(("tar -czf " + package + " -C " + dir + " metadata.json model.onnx").c_str()), 0);
  const CliRun p = kapsl("run " + package + " --fill ones --json");
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_EQ(nlohmann::json::parse(p.out)["outputs"][0]["data"][0], 2.0);
  std::ofstream(dir + "/metadata.json")
      << R"({"project_name":"add","framework":"onnx","version":"2","created_at":"","model_file":"model.onnx",)"
         R"("serving":{"max_concurency":2}})";
  const CliRun typo = kapsl("info " + dir);
  EXPECT_EQ(typo.code, 1);
  EXPECT_THAT(typo.err, HasSubstr("serving"));
  EXPECT_THAT(typo.err, HasSubstr("max_concurency"));
}

TEST_F(CliTest, TokenizeGivesLlamaIds) {
  const CliRun r = kapsl("tokenize --json " + tiny_ + " 'Hello, my name is'");
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<int> ids;
  for (const auto& t : nlohmann::json::parse(r.out)) ids.push_back(t["id"]);
  EXPECT_EQ(ids, (std::vector<int>{1, 15043, 29892, 590, 1024, 338}));
}

TEST_F(CliTest, EmbedPrintsOneVectorPerText) {
  const CliRun r = kapsl("embed --json " + data("tiny-embed.gguf") + " first second");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0].size(), 64u);
}

TEST_F(CliTest, BenchPrintsPercentiles) {
  const CliRun r = kapsl("bench " + add_ + " -r 20 -C 2");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("p50"));
  EXPECT_THAT(r.out, HasSubstr("p99"));
  const CliRun g = kapsl("bench " + tiny_ + " -r 1 -p 16 -n 4");
  ASSERT_EQ(g.code, 0) << g.err;
  EXPECT_THAT(g.out, HasSubstr("pp16"));
  EXPECT_THAT(g.out, HasSubstr("tg4"));
  EXPECT_THAT(g.err, Not(HasSubstr("[")));  // no progress bar when stderr is not a terminal
}

// --- Hostile models and files: the CLI treats them as the server does.

// Output names come from the model: they never choose where a file goes.
TEST_F(CliTest, OutputFilesStayInsideTheOutputDirectoryWhateverTheNames) {
  const std::vector<std::string> names = {"../escape", "/tmp/kapsl-abs", "a/b", "..", "a/b"};
  testing::GraphBuilder g("hostile_names");
  g.input("x", ::onnx::TensorProto::FLOAT, {2});
  // ONNX needs distinct value names: the last "a/b" is written as "a/b " (a space).
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string name = names[i] + (i == 4 ? " " : "");
    g.output(name, ::onnx::TensorProto::FLOAT, {2});
    g.node("Identity", {"x"}, {name});
  }
  testing::write_file(file("hostile_names.onnx"), g.serialize());
  const fs::path parent = dir_ / "outs";
  const fs::path out = parent / "in";
  const CliRun r = kapsl("run " + file("hostile_names.onnx") + " --fill ones -o " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  std::set<std::string> written;
  for (const auto& e : fs::directory_iterator(out)) written.insert(e.path().filename().string());
  EXPECT_EQ(written, (std::set<std::string>{".._escape.npy", "_tmp_kapsl-abs.npy", "a_b.npy", "output3.npy", "a_b_.npy"}));
  EXPECT_FALSE(fs::exists(parent / "escape.npy"));
  EXPECT_FALSE(fs::exists("/tmp/kapsl-abs.npy"));
  EXPECT_EQ(std::distance(fs::directory_iterator(parent), fs::directory_iterator()), 1);  // only "in"
  EXPECT_FLOAT_EQ(npy_load((out / "output3.npy").string()).data<float>()[1], 1.0f);
}

// Names come from the model: printed, their control characters are escaped, so that a
// hostile model cannot drive the terminal (found in review).
TEST_F(CliTest, ModelChosenNamesCannotDriveTheTerminal) {
  testing::GraphBuilder g("escapes");
  g.input("x", ::onnx::TensorProto::FLOAT, {1}).output("\x1b[2Jred\n", ::onnx::TensorProto::FLOAT, {1});
  g.node("Identity", {"x"}, {"\x1b[2Jred\n"});
  testing::write_file(file("escapes.onnx"), g.serialize());
  const CliRun run = kapsl("run " + file("escapes.onnx") + " --fill ones");
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("\\x1b[2Jred\\x0a: float32 [1]"));
  const CliRun info = kapsl("info " + file("escapes.onnx"));
  EXPECT_EQ(info.out.find('\x1b'), std::string::npos);
  EXPECT_EQ(run.out.find('\x1b'), std::string::npos);
}

// int64 values beyond 2^53 (where a double loses them) go in and come out exact.
TEST_F(CliTest, Int64IsExactThroughJsonBothWays) {
  testing::write_file(file("ids.onnx"), testing::identity_model(::onnx::TensorProto::INT64, {-1}));
  const std::vector<int64_t> values = {9007199254740993, std::numeric_limits<int64_t>::max(),
                                       std::numeric_limits<int64_t>::min(), -9007199254740993};
  std::ofstream(file("ids.json")) << nlohmann::json{{"dtype", "int64"}, {"data", values}}.dump();
  const CliRun r = kapsl("run " + file("ids.onnx") + " -i x=" + file("ids.json") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("[9007199254740993,9223372036854775807,-9223372036854775808,-9007199254740993]"));
  EXPECT_EQ(nlohmann::json::parse(r.out)["outputs"][0]["data"].get<std::vector<int64_t>>(), values);
  // Out of range, or not an integer, is an error naming the value's place, not a rounding.
  std::ofstream(file("big.json")) << R"({"dtype":"int64","data":[9223372036854775808]})";
  const CliRun big = kapsl("run " + file("ids.onnx") + " -i x=" + file("big.json"));
  EXPECT_EQ(big.code, 1);
  EXPECT_THAT(big.err, HasSubstr("big.json"));
  std::ofstream(file("frac.json")) << R"({"dtype":"int64","data":[1.5]})";
  EXPECT_EQ(kapsl("run " + file("ids.onnx") + " -i x=" + file("frac.json")).code, 1);
}

// ONNX Runtime warns about an unused initializer while loading: its line goes through
// kapsl's "backends" logger, shown with -v only, and without colour codes off a terminal.
TEST_F(CliTest, BackendLogLinesAppearOnlyWithVerbose) {
  testing::GraphBuilder g("unused_initializer");
  g.input("x", ::onnx::TensorProto::FLOAT, {2}).output("y", ::onnx::TensorProto::FLOAT, {2});
  g.float_initializer("never_used", {2}, {1, 2});
  g.node("Identity", {"x"}, {"y"});
  testing::write_file(file("unused.onnx"), g.serialize());
  const CliRun quiet = kapsl("run " + file("unused.onnx") + " --fill ones");
  ASSERT_EQ(quiet.code, 0) << quiet.err;
  EXPECT_THAT(quiet.err, Not(HasSubstr("never_used")));
  const CliRun verbose = kapsl("-v run " + file("unused.onnx") + " --fill ones");
  ASSERT_EQ(verbose.code, 0) << verbose.err;
  EXPECT_THAT(verbose.err, HasSubstr("never_used"));
  EXPECT_THAT(verbose.err, HasSubstr("onnxruntime"));
  EXPECT_THAT(verbose.err, Not(HasSubstr("\x1b[")));
}

// A valid file with an operator no kernel implements: the error says so, and does not
// suggest the file is broken.
TEST_F(CliTest, ErrorsNameTheRealCause) {
  testing::GraphBuilder g("unknown_op");
  g.input("x", ::onnx::TensorProto::FLOAT, {2}).output("y", ::onnx::TensorProto::FLOAT, {2});
  g.node("NoSuchOperator", {"x"}, {"y"});
  testing::write_file(file("unknown_op.onnx"), g.serialize());
  const CliRun r = kapsl("info " + file("unknown_op.onnx"));
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("NoSuchOperator"));
  EXPECT_THAT(r.err, Not(HasSubstr("valid model file")));
}

TEST_F(CliTest, AnInputGivenTwiceIsAUsageError) {
  npy_save(file("twice.npy"), Tensor::zeros(DType::kFloat32, {3, 4, 5}));
  const CliRun r = kapsl("run " + add_ + " -i x=" + file("twice.npy") + " -i x=" + file("twice.npy") + " --fill ones");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("'x' more than once"));
  EXPECT_EQ(kapsl("bench " + add_ + " -i x=" + file("twice.npy") + " -i x=" + file("twice.npy")).code, 2);
  EXPECT_EQ(kapsl("run " + add_ + " --shape x=3x4x5 --shape x=1 --fill ones").code, 2);
}

// bench takes run's input flags: a dynamic dimension is benchmarked at the size asked for.
TEST_F(CliTest, BenchTakesShapesAndInputsAndPrintsThreads) {
  testing::write_file(file("mm.onnx"), testing::matmul_relu_model(16));
  const CliRun shaped = kapsl("bench " + file("mm.onnx") + " -r 3 --shape x=8x16 --fill random --seed 1");
  ASSERT_EQ(shaped.code, 0) << shaped.err;
  EXPECT_THAT(shaped.out, HasSubstr("inputs x float32 [8, 16]"));
  EXPECT_THAT(shaped.out, ::testing::ContainsRegex("threads per run [0-9]+"));
  EXPECT_THAT(shaped.out, ::testing::ContainsRegex("concurrency 1: [0-9.]+ infer/s, .* 0 errors"));
  // A list of concurrencies, each through infer_batch of 2 copies.
  const CliRun levels = kapsl("bench " + file("mm.onnx") + " -r 4 -C 1,2 --batch 2 --shape x=1x16 --fill ones");
  ASSERT_EQ(levels.code, 0) << levels.err;
  EXPECT_THAT(levels.out, HasSubstr("infer_batch of 2 requests per call"));
  EXPECT_THAT(levels.out, ::testing::ContainsRegex("concurrency 2: [0-9.]+ infer/s"));
  EXPECT_EQ(kapsl("bench " + file("mm.onnx") + " --protocol grpc").code, 2);  // a protocol needs --url
  npy_save(file("mm_x.npy"), Tensor::zeros(DType::kFloat32, {5, 16}));
  const CliRun given = kapsl("bench " + file("mm.onnx") + " -r 3 -i x=" + file("mm_x.npy"));
  ASSERT_EQ(given.code, 0) << given.err;
  EXPECT_THAT(given.out, HasSubstr("inputs x float32 [5, 16]"));
  EXPECT_EQ(kapsl("bench " + file("mm.onnx") + " -r 3 --shape y=8x16").code, 2);  // no input 'y'
}

}  // namespace
}  // namespace kapsl::cli
