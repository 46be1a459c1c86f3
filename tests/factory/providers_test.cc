#include <gtest/gtest.h>
#include <stdlib.h>

#include "support/test_util.h"
#include "kapsl/backend_factory.h"

namespace kapsl {
namespace {

using testing::expect_error;
using Names = std::vector<std::string>;

DeviceInfo devices_with(std::initializer_list<DeviceBackend> backends) {
  DeviceInfo info;
  info.devices.push_back(Device{});
  for (DeviceBackend b : backends) {
    Device d;
    d.backend = b;
    info.devices.push_back(d);
  }
  return info;
}

HardwareRequirements wants(std::string preferred, Names fallbacks = {}) {
  HardwareRequirements r;
  r.preferred_provider = std::move(preferred);
  r.fallback_providers = std::move(fallbacks);
  return r;
}

const Names kAllCompiled = {"cpu", "cuda", "tensorrt", "rocm", "coreml", "directml", "openvino"};

TEST(ProviderListTest, NormalisesTrimsLowercasesAndDeduplicates) {
  EXPECT_EQ(normalize_providers(" CUDA ", {"cpu", "cuda", "", "  ", "Cpu", "Metal", "coreml"}),
            (Names{"cuda", "cpu", "coreml"}));
  EXPECT_EQ(normalize_providers("", {}), Names{});
}

TEST(ProviderListTest, FastestPutsDetectedAcceleratorsAheadOfCpu) {
  DeviceInfo cuda = devices_with({DeviceBackend::kCuda});
  EXPECT_EQ(provider_candidates({}, cuda, ProviderPolicy::kFastest, kAllCompiled),
            (Names{"tensorrt", "cuda", "openvino", "cpu"}));
  EXPECT_EQ(provider_candidates(wants("cpu"), cuda, ProviderPolicy::kFastest, kAllCompiled),
            (Names{"tensorrt", "cuda", "openvino", "cpu"}));
  DeviceInfo amd = devices_with({DeviceBackend::kRocm});
  EXPECT_EQ(provider_candidates(wants("CPU", {"cpu"}), amd, ProviderPolicy::kFastest, kAllCompiled),
            (Names{"rocm", "openvino", "cpu"}));
}

TEST(ProviderListTest, FastestOnlyAddsProvidersOnnxRuntimeHas) {
  DeviceInfo cuda = devices_with({DeviceBackend::kCuda});
  EXPECT_EQ(provider_candidates({}, cuda, ProviderPolicy::kFastest, {"cpu", "cuda"}), (Names{"cuda", "cpu"}));
  EXPECT_EQ(provider_candidates({}, devices_with({}), ProviderPolicy::kFastest, kAllCompiled),
            (Names{"openvino", "cpu"}));
  EXPECT_EQ(provider_candidates({}, devices_with({}), ProviderPolicy::kFastest, {"cpu"}), (Names{"cpu"}));
}

TEST(ProviderListTest, FastestKeepsAnExplicitAcceleratorList) {
  DeviceInfo cuda = devices_with({DeviceBackend::kCuda});
  EXPECT_EQ(provider_candidates(wants("rocm", {"cpu"}), cuda, ProviderPolicy::kFastest, kAllCompiled),
            (Names{"rocm", "cpu"}));
  EXPECT_EQ(provider_candidates(wants("cuda"), cuda, ProviderPolicy::kFastest, kAllCompiled), (Names{"cuda", "cpu"}));
}

TEST(ProviderListTest, ManifestPolicyUsesTheListAsGiven) {
  DeviceInfo cuda = devices_with({DeviceBackend::kCuda});
  EXPECT_EQ(provider_candidates({}, cuda, ProviderPolicy::kManifest, kAllCompiled), (Names{"cpu"}));
  EXPECT_EQ(provider_candidates(wants("cpu"), cuda, ProviderPolicy::kManifest, kAllCompiled), (Names{"cpu"}));
  EXPECT_EQ(provider_candidates(wants("openvino", {"cuda"}), cuda, ProviderPolicy::kManifest, kAllCompiled),
            (Names{"openvino", "cuda", "cpu"}));
  EXPECT_EQ(provider_candidates(wants("openvino", {"cuda"}), cuda, ProviderPolicy::kManifest, kAllCompiled,
                                /*cpu_last_resort=*/false),
            (Names{"openvino", "cuda"}));
}

TEST(ProviderPolicyTest, ParsesAndReadsTheEnvironment) {
  EXPECT_EQ(parse_provider_policy(" Manifest "), ProviderPolicy::kManifest);
  EXPECT_EQ(parse_provider_policy("FASTEST"), ProviderPolicy::kFastest);
  EXPECT_EQ(parse_provider_policy("fast"), std::nullopt);
  ::unsetenv("KAPSL_PROVIDER_POLICY");
  EXPECT_EQ(provider_policy_from_env(), ProviderPolicy::kFastest);
  ::setenv("KAPSL_PROVIDER_POLICY", "manifest", 1);
  EXPECT_EQ(provider_policy_from_env(), ProviderPolicy::kManifest);
  ::setenv("KAPSL_PROVIDER_POLICY", "fastets", 1);
  expect_error([] { provider_policy_from_env(); }, ErrorCode::kInvalidInput, {"KAPSL_PROVIDER_POLICY", "fastets"});
  ::unsetenv("KAPSL_PROVIDER_POLICY");
}

TEST(ProviderTest, AcceleratorsAreEverythingButCpuAndOpenvino) {
  EXPECT_TRUE(is_accelerator_provider("CUDA"));
  EXPECT_TRUE(is_accelerator_provider("tensorrt"));
  EXPECT_FALSE(is_accelerator_provider(" cpu"));
  EXPECT_FALSE(is_accelerator_provider("openvino"));
}

}  // namespace
}  // namespace kapsl
