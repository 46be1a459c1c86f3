// ModelRepository: what a scan admits (model files, manifest folders and .aimod packages
// side by side, resolved through the factory), and that no requested name reaches a file
// outside the repository root.
#include "server/model_repository.h"

#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "kapsl/backend.h"
#include "kapsl/error.h"
#include "support/archive_writer.h"

namespace kapsl::server {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class ModelRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() / ("kapsl-repo-test-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base_);
    root_ = base_ / "repo";
    fs::create_directories(root_);
    fs::create_directories(base_ / "outside");
    touch(base_ / "outside" / "secret.onnx");
  }
  void TearDown() override { fs::remove_all(base_); }
  static void touch(const fs::path& p, const std::string& text = "x") { std::ofstream(p) << text; }
  static std::string manifest(const std::string& file, const std::string& extra = "") {
    return R"({"project_name":"m","framework":"onnx","version":"3","created_at":"","model_file":")" + file + "\"" +
           extra + "}";
  }
  // Resolving reads manifests and picks backends; nothing is loaded, so the model files
  // need not be real models.
  ModelRepository repository(const std::string& defaults = "") const {
    LoadOptions settings;
    settings.defaults = defaults;
    return ModelRepository(root_, factory(), settings);
  }
  static std::shared_ptr<const BackendFactory> factory() {
    return std::make_shared<const BackendFactory>(FactoryOptions{}, builtin_backends(), DeviceInfo{});
  }
  // The names a single model's storage at `storage` serves, or the error it gives.
  static std::string single(const fs::path& storage, const std::string& name = "") {
    try {
      ModelRepository repo(storage, factory(), LoadOptions{}, SingleModel{name});
      std::string names;
      for (const auto& m : repo.list()) names += (names.empty() ? "" : " ") + m.name;
      return names;
    } catch (const Error& e) {
      return std::string(e.code() == ErrorCode::kNotFound ? "not found: " : "error: ") + e.what();
    }
  }

  fs::path base_, root_;
};

TEST_F(ModelRepositoryTest, AdmitsFoldersWithManifestsAndBareFiles) {
  touch(root_ / "a.onnx");
  touch(root_ / "b.GGUF");
  touch(root_ / "notes.txt");
  fs::create_directories(root_ / "c");
  touch(root_ / "c" / "model.onnx");
  touch(root_ / "c" / "metadata.json", manifest("model.onnx"));
  fs::create_directories(root_ / "no-manifest");
  testing::write_archive(root_ / "d.aimod", {testing::file("metadata.json", manifest("m.onnx")),
                                             testing::file("m.onnx", "x")});
  ModelRepository repo = repository();
  const auto models = repo.list();
  ASSERT_EQ(models.size(), 4u);
  EXPECT_EQ(models[0].name, "a");
  EXPECT_EQ(models[0].version, "1");
  EXPECT_EQ(models[1].name, "b");
  EXPECT_EQ(models[1].resolved->backend->name(), "gguf");
  EXPECT_EQ(models[1].resolved->task, "generate");
  EXPECT_EQ(models[2].name, "c");
  EXPECT_EQ(models[2].version, "3");
  EXPECT_EQ(models[2].resolved->package.model_path, fs::canonical(root_ / "c" / "model.onnx"));
  EXPECT_EQ(models[3].name, "d");
  EXPECT_EQ(models[3].resolved->package.kind, PackageKind::kArchive);
  EXPECT_EQ(models[3].resolved->backend->name(), "onnx");
}

TEST_F(ModelRepositoryTest, ServerDefaultsGoUnderEachManifest) {
  touch(root_ / "a.onnx");
  fs::create_directories(root_ / "c");
  touch(root_ / "c" / "model.onnx");
  touch(root_ / "c" / "metadata.json", manifest("model.onnx", R"(,"serving":{"max_queue":2})"));
  ModelRepository repo = repository(R"({"serving":{"max_queue":9,"max_concurrency":3}})");
  EXPECT_EQ(repo.find("a")->resolved->package.manifest.serving.max_queue, 9u);
  EXPECT_EQ(repo.find("c")->resolved->package.manifest.serving.max_queue, 2u);
  EXPECT_EQ(repo.find("c")->resolved->package.manifest.serving.max_concurrency, 3u);
}

TEST_F(ModelRepositoryTest, SkipsModelsWhoseManifestIsWrong) {
  touch(root_ / "good.onnx");
  fs::create_directories(root_ / "typo");
  touch(root_ / "typo" / "model.onnx");
  touch(root_ / "typo" / "metadata.json", manifest("model.onnx", R"(,"serving":{"max_concurency":2})"));
  ModelRepository repo = repository();
  EXPECT_TRUE(repo.find("good").has_value());
  EXPECT_FALSE(repo.find("typo").has_value());
}

TEST_F(ModelRepositoryTest, RescanResolvesOnlyWhatChanged) {
  fs::create_directories(root_ / "c");
  touch(root_ / "c" / "model.onnx");
  touch(root_ / "c" / "metadata.json", manifest("model.onnx"));
  ModelRepository repo = repository();
  const auto first = repo.find("c")->resolved;
  repo.rescan();
  EXPECT_EQ(repo.find("c")->resolved, first);  // unchanged: the same resolution
  touch(root_ / "c" / "metadata.json", manifest("model.onnx", R"(,"serving":{"max_queue":5})"));
  fs::last_write_time(root_ / "c" / "metadata.json", fs::last_write_time(root_ / "c" / "metadata.json") + 1s);
  repo.rescan();
  EXPECT_NE(repo.find("c")->resolved, first);
  EXPECT_EQ(repo.find("c")->resolved->package.manifest.serving.max_queue, 5u);
}

// Requests that find a change together share one new resolution, and it is newer (a larger
// generation) than the old one: the host replaces an engine only for a newer view.
TEST_F(ModelRepositoryTest, AChangeFoundByManyLookupsIsResolvedOnce) {
  touch(root_ / "m.onnx", "one");
  ModelRepository repo = repository();
  const auto before = *repo.find("m");
  touch(root_ / "m.onnx", "two, longer");
  std::vector<std::optional<RepositoryModel>> found(8);
  std::vector<std::thread> threads;
  for (auto& f : found) threads.emplace_back([&repo, &f] { f = repo.find("m"); });
  for (auto& t : threads) t.join();
  for (const auto& f : found) {
    ASSERT_TRUE(f);
    EXPECT_EQ(f->resolved, found[0]->resolved);
    EXPECT_EQ(f->generation, found[0]->generation);
    EXPECT_GT(f->generation, before.generation);
  }
}

TEST_F(ModelRepositoryTest, SkipsEntriesThatLeaveTheRoot) {
  fs::create_symlink(base_ / "outside" / "secret.onnx", root_ / "link.onnx");
  fs::create_directory_symlink(base_ / "outside", root_ / "linked-dir");
  fs::create_directories(root_ / "escape");
  touch(root_ / "escape" / "metadata.json", manifest("../../outside/secret.onnx"));
  fs::create_directories(root_ / "sneaky");
  fs::create_symlink(base_ / "outside" / "secret.onnx", root_ / "sneaky" / "model.onnx");
  touch(root_ / "sneaky" / "metadata.json", manifest("model.onnx"));
  touch(root_ / "bad name!.onnx");
  ModelRepository repo = repository();
  EXPECT_TRUE(repo.list().empty());
}

TEST_F(ModelRepositoryTest, NamesAreKeysNotPaths) {
  touch(root_ / "a.onnx");
  ModelRepository repo = repository();
  for (const char* name : {"../outside/secret", "/etc/passwd", "a/../a", "..", ".", "", "a.onnx", "a%2Fb"}) {
    EXPECT_FALSE(repo.find(name).has_value()) << name;
  }
  EXPECT_TRUE(repo.find("a").has_value());
  EXPECT_FALSE(is_valid_model_name("../x"));
  EXPECT_FALSE(is_valid_model_name(".hidden"));
  EXPECT_FALSE(is_valid_model_name("a:b"));
  EXPECT_TRUE(is_valid_model_name("llama-3.2_1B"));
}

TEST_F(ModelRepositoryTest, RescanSeesNewModels) {
  ModelRepository repo = repository();
  EXPECT_FALSE(repo.find("late").has_value());
  touch(root_ / "late.onnx");
  repo.rescan();
  EXPECT_TRUE(repo.find("late").has_value());
}

TEST_F(ModelRepositoryTest, MissingRootIsNotFound) {
  try {
    ModelRepository repo(base_ / "nope", factory(), LoadOptions{});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

// KServe's storage initializer puts a model at /mnt/models as the file itself or as a
// folder's contents, and passes the InferenceService's name; each layout serves one model.
TEST_F(ModelRepositoryTest, OneModelsStorageInEveryLayoutKServeMounts) {
  touch(root_ / "model.onnx");
  EXPECT_EQ(single(root_ / "model.onnx"), "model");
  EXPECT_EQ(single(root_ / "model.onnx", "resnet"), "resnet");
  // A folder holding one model file, beside files that are not models.
  touch(root_ / "README.md");
  EXPECT_EQ(single(root_, "resnet"), "resnet");
  EXPECT_EQ(single(root_.string() + "/"), "model");
  // A manifest folder at the mount is the model, whatever its files are called.
  fs::create_directories(base_ / "mnt");
  touch(base_ / "mnt" / "weights.onnx");
  touch(base_ / "mnt" / "metadata.json", manifest("weights.onnx"));
  EXPECT_EQ(single(base_ / "mnt", "bert"), "bert");
  EXPECT_EQ(single(base_ / "mnt"), "mnt");
  // A folder holding one manifest folder, or one package.
  fs::create_directories(base_ / "one-folder");
  fs::copy(base_ / "mnt", base_ / "one-folder" / "inner", fs::copy_options::recursive);
  EXPECT_EQ(single(base_ / "one-folder", "bert"), "bert");
  fs::create_directories(base_ / "one-package");
  testing::write_archive(base_ / "one-package" / "p.aimod",
                         {testing::file("metadata.json", manifest("m.onnx")), testing::file("m.onnx", "x")});
  EXPECT_EQ(single(base_ / "one-package", "p1"), "p1");
  // KServe's modelcar mounts a link; the model keeps the name it was given.
  fs::create_symlink(root_ / "model.onnx", base_ / "link.onnx");
  EXPECT_EQ(single(base_ / "link.onnx"), "link");
}

TEST_F(ModelRepositoryTest, OneModelsStorageRefusesNoneSeveralAndBadNames) {
  EXPECT_EQ(single(base_ / "nope"), "not found: model storage does not exist: " + (base_ / "nope").string());
  EXPECT_NE(single(root_).find("holds no model"), std::string::npos) << single(root_);
  touch(root_ / "notes.txt");
  EXPECT_NE(single(root_ / "notes.txt").find("holds no model"), std::string::npos);
  touch(root_ / "a.onnx");
  touch(root_ / "b.gguf");
  const std::string several = single(root_, "m");
  EXPECT_NE(several.find("holds 2 models (a.onnx, b.gguf)"), std::string::npos) << several;
  fs::remove(root_ / "b.gguf");
  EXPECT_EQ(single(root_, "m"), "m");
  // A wrong manifest is the model's own error, named.
  fs::create_directories(base_ / "typo");
  touch(base_ / "typo" / "model.onnx");
  touch(base_ / "typo" / "metadata.json", manifest("model.onnx", R"(,"serving":{"max_concurency":2})"));
  EXPECT_NE(single(base_ / "typo").find("max_concurency"), std::string::npos) << single(base_ / "typo");
  EXPECT_NE(single(root_ / "a.onnx", "../x").find("not a valid model name"), std::string::npos);
}

// A later scan follows the storage: a second model there is refused, not half-served.
TEST_F(ModelRepositoryTest, OneModelsStorageRescannedKeepsItsRule) {
  touch(root_ / "a.onnx");
  ModelRepository repo(root_, factory(), LoadOptions{}, SingleModel{"m"});
  EXPECT_TRUE(repo.find("m").has_value());
  EXPECT_FALSE(repo.find("a").has_value());
  touch(root_ / "b.onnx");
  repo.rescan();
  EXPECT_TRUE(repo.list().empty());
  fs::remove(root_ / "a.onnx");
  repo.rescan();
  ASSERT_EQ(repo.list().size(), 1u);
  EXPECT_EQ(repo.list()[0].name, "m");
  EXPECT_EQ(repo.list()[0].source, fs::canonical(root_ / "b.onnx"));
}

}  // namespace
}  // namespace kapsl::server
