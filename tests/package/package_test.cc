#include "kapsl/package.h"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "support/archive_writer.h"
#include "support/test_util.h"

namespace kapsl {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;
using testing::TarEntry;
using testing::dir;
using testing::fifo;
using testing::file;
using testing::hardlink;
using testing::symlink;

constexpr const char* kManifest =
    R"({"project_name":"demo","framework":"onnx","version":"1","created_at":"","model_file":"model.onnx"})";

class PackageTest : public ::testing::Test {
 protected:
  fs::path archive(const std::vector<TarEntry>& entries, const std::string& name = "pkg.aimod", bool gzip = true) {
    fs::path p = dir_.path() / name;
    testing::write_archive(p, entries, gzip);
    return p;
  }
  PackageOptions options() const {
    PackageOptions o;
    o.cache_dir = (dir_.path() / "cache").string();
    return o;
  }
  // Entries in the cache directory (complete extractions and leftovers alike).
  size_t cache_entries() const {
    std::error_code ec;
    size_t n = 0;
    for (auto it = fs::directory_iterator(dir_.path() / "cache", ec); !ec && it != fs::directory_iterator(); ++it) ++n;
    return n;
  }
  // A hostile archive must fail with kInvalidInput naming `entry` and `why`, leave nothing in
  // the cache and write nothing next to it.
  void expect_refused(const std::vector<TarEntry>& entries, const std::string& entry, const std::string& why) {
    fs::path p = archive(entries, "hostile.aimod");
    expect_error([&] { open_package(p, options()); }, ErrorCode::kInvalidInput, {entry, why});
    EXPECT_EQ(cache_entries(), 0u) << "a failed open left a directory in the cache";
    EXPECT_FALSE(fs::exists(dir_.path() / "evil"));
    EXPECT_FALSE(fs::exists(dir_.path() / "cache" / "evil"));
  }

  testing::TempDir dir_;
};

TEST_F(PackageTest, ExtractsOnceAndReusesByContent) {
  fs::path p = archive({file("metadata.json", kManifest), file("model.onnx", "weights"), file("extra/tok.json", "{}")});
  Package first = open_package(p, options());
  EXPECT_FALSE(first.reused_extraction);
  EXPECT_EQ(first.manifest.project_name, "demo");
  EXPECT_EQ(first.content_sha256, sha256_file(p));
  EXPECT_EQ(first.model_path.filename(), "model.onnx");
  EXPECT_TRUE(first.model_path.is_absolute());
  std::ifstream in(first.model_path);
  std::string body;
  std::getline(in, body);
  EXPECT_EQ(body, "weights");
  EXPECT_TRUE(fs::exists(first.root / "extra" / "tok.json"));

  Package second = open_package(p, options());
  EXPECT_TRUE(second.reused_extraction);
  EXPECT_EQ(second.model_path, first.model_path);

  // Same path, same size, new bytes: a new extraction, not the stale one.
  archive({file("metadata.json", kManifest), file("model.onnx", "WEIGHTS"), file("extra/tok.json", "{}")});
  Package changed = open_package(p, options());
  EXPECT_FALSE(changed.reused_extraction);
  EXPECT_NE(changed.model_path, first.model_path);
  EXPECT_EQ(cache_entries(), 2u);
}

TEST_F(PackageTest, AcceptsDotSlashNamesAndLinksInside) {
  fs::path p = archive({dir("./"), file("./metadata.json", kManifest), file("./weights/real.onnx", "w"),
                        symlink("model.onnx", "weights/real.onnx"), hardlink("copy.onnx", "./weights/real.onnx"),
                        symlink("weights/up", "../metadata.json")});
  Package pkg = open_package(p, options());
  EXPECT_EQ(pkg.model_path, fs::canonical(pkg.root / "weights" / "real.onnx"));
  EXPECT_TRUE(fs::is_regular_file(pkg.root / "copy.onnx"));
}

TEST_F(PackageTest, ConcurrentOpensOfOnePackageDoNotRace) {
  fs::path p = archive({file("metadata.json", kManifest), file("model.onnx", std::string(1 << 20, 'x'))});
  constexpr int kThreads = 8;
  std::vector<Package> results(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      try {
        results[i] = open_package(p, options());
      } catch (const Error& e) {
        errors[i] = e.to_string();
      }
    });
  }
  for (auto& t : threads) t.join();
  int extracted = 0;
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(errors[i], "");
    EXPECT_EQ(results[i].model_path, results[0].model_path);
    EXPECT_EQ(fs::file_size(results[i].model_path), 1u << 20);
    extracted += results[i].reused_extraction ? 0 : 1;
  }
  EXPECT_EQ(extracted, 1);           // exactly one rename won
  EXPECT_EQ(cache_entries(), 1u);    // the losers' copies are gone
}

TEST_F(PackageTest, RefusesParentTraversal) {
  expect_refused({file("metadata.json", kManifest), file("../evil", "x")}, "../evil", "\"..\"");
  expect_refused({file("metadata.json", kManifest), file("a/../../evil", "x")}, "a/../../evil", "\"..\"");
}

TEST_F(PackageTest, RefusesAbsolutePaths) {
  expect_refused({file("/tmp/evil", "x")}, "/tmp/evil", "absolute path");
}

TEST_F(PackageTest, RefusesLinksPointingOutside) {
  expect_refused({symlink("evil", "/etc/passwd")}, "evil", "absolute path");
  expect_refused({symlink("sub/evil", "../../evil")}, "sub/evil", "outside the package");
  // "b" -> "." is harmless alone, but makes "b/.." the package's parent.
  expect_refused({symlink("a", "b/.."), symlink("b", ".")}, "\"a\"", "through the link \"b\"");
  expect_refused({hardlink("evil", "../outside")}, "../outside", "\"..\"");
  expect_refused({hardlink("evil", "missing")}, "evil", "not a file earlier in the package");
}

TEST_F(PackageTest, RefusesWritingThroughALink) {
  expect_refused({dir("sub"), symlink("d", "sub"), file("d/evil", "x")}, "d/evil", "through the link \"d\"");
}

TEST_F(PackageTest, RefusesDuplicateEntries) {
  expect_refused({file("metadata.json", kManifest), file("model.onnx", "a"), file("./model.onnx", "b")},
                 "model.onnx", "appears twice");
}

TEST_F(PackageTest, RefusesDevicesAndFifos) {
  expect_refused({fifo("pipe")}, "pipe", "fifo");
}

TEST_F(PackageTest, SizeBombIsStoppedByTheByteLimit) {
  // 16 MiB of zeros compresses to a few KiB; the limit counts what would be written.
  fs::path p = archive({file("metadata.json", kManifest), file("model.onnx", std::string(16 << 20, '\0'))});
  EXPECT_LT(fs::file_size(p), 100u << 10);
  PackageOptions o = options();
  o.max_total_bytes = 1 << 20;
  expect_error([&] { open_package(p, o); }, ErrorCode::kResourceExhausted, {"model.onnx", "max_total_bytes"});
  EXPECT_EQ(cache_entries(), 0u);
}

TEST_F(PackageTest, EntryCountIsLimited) {
  std::vector<TarEntry> many = {file("metadata.json", kManifest), file("model.onnx", "w")};
  for (int i = 0; i < 10; ++i) many.push_back(file("f" + std::to_string(i), ""));
  PackageOptions o = options();
  o.max_entries = 5;
  expect_error([&] { open_package(archive(many), o); }, ErrorCode::kResourceExhausted, {"max_entries (5)"});
  EXPECT_EQ(cache_entries(), 0u);
}

TEST_F(PackageTest, ManifestProblemsNameTheField) {
  expect_error([&] { open_package(archive({file("model.onnx", "w")}, "a.aimod"), options()); },
               ErrorCode::kInvalidInput, {"metadata.json", "missing"});
  expect_error([&] { open_package(archive({file("metadata.json", R"({"project_name":1})")}, "b.aimod"), options()); },
               ErrorCode::kInvalidInput, {"b.aimod: metadata.json", "project_name", "expected a string"});
  expect_error([&] { open_package(archive({file("metadata.json", kManifest)}, "c.aimod"), options()); },
               ErrorCode::kInvalidInput, {"model_file \"model.onnx\"", "not in the package"});
  expect_error([&] { open_package(archive({file("metadata.json", kManifest), dir("model.onnx")}, "d.aimod"), options()); },
               ErrorCode::kInvalidInput, {"model_file", "not a regular file"});
  PackageOptions o = options();
  o.max_manifest_bytes = 10;
  expect_error([&] { open_package(archive({file("metadata.json", kManifest)}, "e.aimod"), o); },
               ErrorCode::kInvalidInput, {"metadata.json", "max_manifest_bytes"});
}

TEST_F(PackageTest, CorruptArchivesAreModelLoadErrors) {
  fs::path good = archive({file("metadata.json", kManifest), file("model.onnx", std::string(100000, 'q'))});
  std::string bytes(fs::file_size(good), '\0');
  std::ifstream(good, std::ios::binary).read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::ofstream(dir_.path() / "truncated.aimod", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  expect_error([&] { open_package(dir_.path() / "truncated.aimod", options()); }, ErrorCode::kModelLoad,
               {"truncated.aimod"});
  std::ofstream(dir_.path() / "garbage.aimod") << "this is not an archive at all";
  expect_error([&] { open_package(dir_.path() / "garbage.aimod", options()); }, ErrorCode::kModelLoad,
               {"garbage.aimod"});
  EXPECT_EQ(cache_entries(), 0u);
}

// A bare file's format is left to the BackendFactory, which knows the registered backends
// (ResolutionTest.OpenNamesABareFileByItsBackend).
TEST_F(PackageTest, BareModelFilesGetASynthesisedManifest) {
  std::ofstream(dir_.path() / "tiny.gguf") << "GGUF";
  Package pkg = open_package(dir_.path() / "tiny.gguf", options());
  EXPECT_EQ(pkg.name, "tiny");
  EXPECT_EQ(pkg.kind, PackageKind::kModelFile);
  EXPECT_EQ(pkg.manifest.model_file, "tiny.gguf");
  EXPECT_EQ(pkg.manifest.framework, "");
  EXPECT_EQ(pkg.model_path, fs::absolute(dir_.path() / "tiny.gguf"));
  EXPECT_EQ(pkg.root, fs::absolute(dir_.path()));
  EXPECT_TRUE(pkg.content_sha256.empty());
  expect_error([&] { open_package(dir_.path() / "missing.onnx", options()); }, ErrorCode::kNotFound, {"missing.onnx"});
}

TEST_F(PackageTest, ModelFoldersAreOpenedInPlace) {
  const fs::path d = dir_.path() / "resnet";
  fs::create_directories(d / "weights");
  std::ofstream(d / "weights" / "m.onnx") << "x";
  std::ofstream(d / "metadata.json")
      << R"({"project_name":"r","framework":"onnx","version":"4","created_at":"","model_file":"weights/m.onnx"})";
  Package pkg = open_package(d, options());
  EXPECT_EQ(pkg.name, "resnet");
  EXPECT_EQ(pkg.kind, PackageKind::kFolder);
  EXPECT_EQ(pkg.manifest.version, "4");
  EXPECT_EQ(pkg.model_path, fs::canonical(d / "weights" / "m.onnx"));
  EXPECT_EQ(cache_entries(), 0u);  // nothing is copied
  std::ofstream(d / "labels.txt") << "a";
  EXPECT_EQ(resolve_in_package(pkg, "labels.txt", "onnx.labels_file"), fs::canonical(d / "labels.txt"));
  expect_error([&] { resolve_in_package(pkg, "../x", "onnx.labels_file"); }, ErrorCode::kInvalidInput,
               {"onnx.labels_file", "\"..\""});
  expect_error([&] { resolve_in_package(pkg, "/etc/passwd", "f"); }, ErrorCode::kInvalidInput, {"f"});
  expect_error([&] { resolve_in_package(pkg, "missing.txt", "f"); }, ErrorCode::kInvalidInput, {"missing.txt"});
  fs::create_symlink(dir_.path(), d / "up");
  expect_error([&] { resolve_in_package(pkg, "up/x", "f"); }, ErrorCode::kInvalidInput, {"outside"});
  const fs::path empty = dir_.path() / "empty";
  fs::create_directories(empty);
  expect_error([&] { open_package(empty, options()); }, ErrorCode::kInvalidInput, {"metadata.json", "missing"});
  std::ofstream(d / "metadata.json")
      << R"({"project_name":"r","framework":"onnx","version":"4","created_at":"","model_file":"../escape.onnx"})";
  expect_error([&] { open_package(d, options()); }, ErrorCode::kInvalidInput, {"model_file"});
}

}  // namespace
}  // namespace kapsl
