// ModelRepository: what a scan admits, and that no requested name reaches a file outside
// the repository root.
#include "server/model_repository.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "kapsl/error.h"

namespace kapsl::server {
namespace {

namespace fs = std::filesystem;

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
  static std::string manifest(const std::string& file) {
    return R"({"project_name":"m","framework":"onnx","version":"3","created_at":"","model_file":")" + file + R"("})";
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
  ModelRepository repo(root_);
  const auto models = repo.list();
  ASSERT_EQ(models.size(), 3u);
  EXPECT_EQ(models[0].name, "a");
  EXPECT_EQ(models[1].name, "b");
  EXPECT_EQ(models[1].format, ModelFormat::kGguf);
  EXPECT_EQ(models[2].name, "c");
  EXPECT_EQ(models[2].version, "3");
  EXPECT_EQ(models[2].model_path, fs::canonical(root_ / "c" / "model.onnx"));
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
  ModelRepository repo(root_);
  EXPECT_TRUE(repo.list().empty());
}

TEST_F(ModelRepositoryTest, NamesAreKeysNotPaths) {
  touch(root_ / "a.onnx");
  ModelRepository repo(root_);
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
  ModelRepository repo(root_);
  EXPECT_FALSE(repo.find("late").has_value());
  touch(root_ / "late.onnx");
  repo.rescan();
  EXPECT_TRUE(repo.find("late").has_value());
}

TEST_F(ModelRepositoryTest, MissingRootIsNotFound) {
  try {
    ModelRepository repo(base_ / "nope");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

}  // namespace
}  // namespace kapsl::server
