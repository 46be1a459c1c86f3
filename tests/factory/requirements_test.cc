// validate_requirements: the original's ten factory tests, ported, plus the cases where
// its bugs gave wrong answers.
#include <gtest/gtest.h>

#include "support/test_util.h"
#include "kapsl/backend_factory.h"

namespace kapsl {
namespace {

using testing::expect_error;

constexpr uint64_t kGiB = uint64_t{1} << 30;

Device gpu(int id, const char* name, uint64_t gib, const char* cuda) {
  Device d;
  d.backend = DeviceBackend::kCuda;
  d.id = id;
  d.name = name;
  d.memory_total_bytes = gib * kGiB;
  d.cuda_version = cuda;
  return d;
}

// The original's mock: 8 cores, 16 GiB, CPU plus CUDA ids 1 (RTX 3080, 10 GiB) and 2
// (RTX 3060, 8 GiB), both CUDA 12.0.
DeviceInfo mock_devices() {
  DeviceInfo info;
  info.cpu.logical_cores = info.cpu.physical_cores = 8;
  info.cpu.memory_total_bytes = 16 * kGiB;
  Device cpu;
  cpu.memory_total_bytes = 16 * kGiB;
  info.devices = {cpu, gpu(1, "RTX 3080", 10, "12.0"), gpu(2, "RTX 3060", 8, "12.0")};
  return info;
}

HardwareRequirements cuda_on(int device, std::optional<uint64_t> vram = std::nullopt, std::string min_cuda = "") {
  HardwareRequirements r;
  r.preferred_provider = "cuda";
  r.device_id = device;
  r.min_vram_mb = vram;
  r.min_cuda_version = std::move(min_cuda);
  return r;
}

TEST(ValidateRequirementsTest, MemorySuccess) {
  HardwareRequirements r;
  r.min_memory_mb = 8192;
  EXPECT_NO_THROW(validate_requirements(r, mock_devices()));
}

TEST(ValidateRequirementsTest, MemoryFailure) {
  HardwareRequirements r;
  r.min_memory_mb = 32768;
  expect_error([&] { validate_requirements(r, mock_devices()); }, ErrorCode::kUnavailable,
               {"Insufficient memory: need 32768MB, have 16384MB"});
}

TEST(ValidateRequirementsTest, VramSuccess) { EXPECT_NO_THROW(validate_requirements(cuda_on(1, 8192), mock_devices())); }

TEST(ValidateRequirementsTest, VramFailure) {
  expect_error([] { validate_requirements(cuda_on(1, 12288), mock_devices()); }, ErrorCode::kUnavailable,
               {"No compatible provider found", "Provider cuda (Device 1) has insufficient VRAM: 10240MB < required 12288MB"});
}

TEST(ValidateRequirementsTest, CudaVersionSuccess) {
  EXPECT_NO_THROW(validate_requirements(cuda_on(1, std::nullopt, "11.8"), mock_devices()));
}

TEST(ValidateRequirementsTest, CudaVersionFailure) {
  expect_error([] { validate_requirements(cuda_on(1, std::nullopt, "12.1"), mock_devices()); },
               ErrorCode::kUnavailable, {"CUDA version too old: 12.0 < required 12.1"});
}

TEST(ValidateRequirementsTest, MissingProviderFailure) {
  HardwareRequirements r;
  r.preferred_provider = "metal";
  // "metal" is spelled coreml after normalisation; the message names what was checked.
  expect_error([&] { validate_requirements(r, mock_devices()); }, ErrorCode::kUnavailable,
               {"Provider coreml not available"});
}

TEST(ValidateRequirementsTest, FallbackProviderSuccess) {
  HardwareRequirements r;
  r.preferred_provider = "metal";
  r.fallback_providers = {"cpu"};
  EXPECT_NO_THROW(validate_requirements(r, mock_devices()));
}

TEST(ValidateRequirementsTest, DeviceIdNotFound) {
  expect_error([] { validate_requirements(cuda_on(99), mock_devices()); }, ErrorCode::kUnavailable,
               {"Device ID 99 not found for provider cuda"});
}

TEST(ValidateRequirementsTest, MultiGpuStrategyAcceptsAnyMatchingDevice) {
  HardwareRequirements r;
  r.preferred_provider = "cuda";
  r.min_vram_mb = 9216;
  r.strategy = "pool";
  EXPECT_NO_THROW(validate_requirements(r, mock_devices()));
  r.strategy = "";  // device 0 is not a CUDA device in the mock
  expect_error([&] { validate_requirements(r, mock_devices()); }, ErrorCode::kUnavailable, {"Device ID 0 not found"});
  r.strategy = "Round-Robin";
  r.min_vram_mb = 20000;
  expect_error([&] { validate_requirements(r, mock_devices()); }, ErrorCode::kUnavailable,
               {"No devices meet requirements for provider cuda"});
}

// --- Corrected expectations: the original's bugs.

TEST(ValidateRequirementsTest, CudaVersionsCompareNumerically) {
  DeviceInfo info = mock_devices();
  info.devices[1].cuda_version = "12.10";
  EXPECT_NO_THROW(validate_requirements(cuda_on(1, std::nullopt, "12.2"), info));  // string compare failed this
  info.devices[1].cuda_version = "9.2";
  expect_error([&] { validate_requirements(cuda_on(1, std::nullopt, "11.8"), info); }, ErrorCode::kUnavailable,
               {"CUDA version too old: 9.2 < required 11.8"});  // string compare passed this
  info.devices[1].cuda_version = "";
  expect_error([&] { validate_requirements(cuda_on(1, std::nullopt, "11.8"), info); }, ErrorCode::kUnavailable,
               {"Unknown CUDA version on device"});
  expect_error([] { validate_requirements(cuda_on(1, std::nullopt, "twelve"), mock_devices()); },
               ErrorCode::kInvalidInput, {"twelve"});
}

TEST(ValidateRequirementsTest, MemoryOfARealProbeIsInBytes) {
  // The original divided a KiB figure by 2^20, so a real 64 GiB host reported 64 MB.
  DeviceInfo real = probe_devices({.probe_cuda = false, .probe_rocm = false});
  HardwareRequirements r;
  r.min_memory_mb = 64;
  EXPECT_NO_THROW(validate_requirements(r, real));
}

TEST(ValidateRequirementsTest, OpenvinoRunsOnTheCpu) {
  HardwareRequirements r;
  r.preferred_provider = "OpenVINO";
  EXPECT_NO_THROW(validate_requirements(r, mock_devices()));
}

TEST(ValidateRequirementsTest, TensorrtIsCheckedAsCudaAndReasonsAreListed) {
  HardwareRequirements r = cuda_on(2, 9000);
  r.preferred_provider = " TensorRT ";
  r.fallback_providers = {"rocm", "cuda", "TENSORRT"};
  expect_error([&] { validate_requirements(r, mock_devices()); }, ErrorCode::kUnavailable,
               {"Reasons: [\"Provider tensorrt (Device 2) has insufficient VRAM: 8192MB < required 9000MB\", "
                "\"Provider rocm not available\", \"Provider cuda (Device 2) has insufficient VRAM"});
  EXPECT_NO_THROW(validate_requirements(HardwareRequirements{}, DeviceInfo{}));
}

}  // namespace
}  // namespace kapsl
