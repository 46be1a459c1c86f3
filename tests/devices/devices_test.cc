#include "kapsl/devices.h"

#include <gtest/gtest.h>

#include <fstream>

#include "devices/devices_internal.h"
#include "devices/subprocess.h"
#include "support/test_util.h"

namespace kapsl {
namespace {

using testing::expect_error;

constexpr const char* kCpuinfo =
    "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU @ 2.0GHz\nphysical id\t: 0\n"
    "core id\t\t: 0\nflags\t\t: fpu sse4_2 AVX2 fma avx512f\n\n"
    "processor\t: 1\nmodel name\t: Test CPU @ 2.0GHz\nphysical id\t: 0\ncore id\t\t: 0\n"
    "flags\t\t: fpu sse4_2 AVX2 fma avx512f\n\n"
    "processor\t: 2\nphysical id\t: 0\ncore id\t\t: 1\n\n"
    "processor\t: 3\nphysical id\t: 0\ncore id\t\t: 1\n";

TEST(CpuProbeTest, ParsesCoresAndFeatures) {
  CpuInfo cpu = internal::parse_cpuinfo(kCpuinfo);
  EXPECT_EQ(cpu.model_name, "Test CPU @ 2.0GHz");
  EXPECT_EQ(cpu.logical_cores, 4u);
  EXPECT_EQ(cpu.physical_cores, 2u);
  EXPECT_EQ(cpu.features, (std::vector<std::string>{"avx2", "avx512f", "fma", "fpu", "sse4_2"}));
  EXPECT_TRUE(cpu.has_feature("AVX2"));
  EXPECT_FALSE(cpu.has_feature("neon"));
}

TEST(CpuProbeTest, ArmFeaturesAndNoCoreIds) {
  CpuInfo cpu = internal::parse_cpuinfo("processor : 0\nFeatures : fp asimd neon\n\nprocessor : 1\n");
  EXPECT_EQ(cpu.logical_cores, 2u);
  EXPECT_EQ(cpu.physical_cores, 2u);
  EXPECT_TRUE(cpu.has_feature("neon"));
}

TEST(CpuProbeTest, MeminfoIsConvertedToBytes) {
  CpuInfo cpu;
  internal::parse_meminfo("MemTotal:       16384000 kB\nMemFree:  100 kB\nMemAvailable:    8192000 kB\n", cpu);
  EXPECT_EQ(cpu.memory_total_bytes, uint64_t{16384000} * 1024);
  EXPECT_EQ(cpu.memory_available_bytes, uint64_t{8192000} * 1024);
  CpuInfo old;
  internal::parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 20 kB\nCached: 300 kB\n", old);
  EXPECT_EQ(old.memory_available_bytes, uint64_t{420} * 1024);
}

TEST(CpuProbeTest, ProbeReadsAProcRoot) {
  testing::TempDir dir;
  std::ofstream(dir.path() / "cpuinfo") << kCpuinfo;
  std::ofstream(dir.path() / "meminfo") << "MemTotal: 2048 kB\nMemAvailable: 1024 kB\n";
  std::vector<std::string> notes;
  CpuInfo cpu = internal::probe_cpu(dir.path().string(), notes);
  EXPECT_TRUE(notes.empty());
  EXPECT_EQ(cpu.memory_total_bytes, 2048u * 1024);
  EXPECT_GE(cpu.logical_cores, 1u);
  EXPECT_LE(cpu.physical_cores, cpu.logical_cores);
  EXPECT_TRUE(cpu.has_feature("avx2"));
}

TEST(CpuProbeTest, RealMachineReportsBytes) {
  DeviceInfo info = probe_devices({.probe_cuda = false, .probe_rocm = false});
  ASSERT_FALSE(info.devices.empty());
  EXPECT_EQ(info.devices[0].backend, DeviceBackend::kCpu);
  // /proc/meminfo says kB and means KiB; the original stored that figure as if it were bytes.
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  meminfo >> key >> kib;
  ASSERT_EQ(key, "MemTotal:");
  EXPECT_EQ(info.cpu.memory_total_bytes, kib * 1024);
  EXPECT_LE(info.cpu.memory_available_bytes, info.cpu.memory_total_bytes);
  EXPECT_GE(info.cpu.logical_cores, 1u);
}

TEST(CudaProbeTest, ParsesNvidiaSmiCsv) {
  std::vector<Device> d = internal::parse_nvidia_smi_csv(
      "0, NVIDIA H100 80GB HBM3, 81559, 80000, 00000000:17:00.0, 550.54.15, 9.0, GPU-abc\n"
      "1, Tesla K80, 11441, [N/A], 00000000:18:00.0, 470.1, 3.7, GPU-def\n"
      "garbage line\n"
      "x, bad index, 1, 1, 1, 1, 1, 1\n");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].backend, DeviceBackend::kCuda);
  EXPECT_EQ(d[0].name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(d[0].memory_total_bytes, uint64_t{81559} << 20);
  EXPECT_EQ(d[0].compute_capability, "9.0");
  EXPECT_EQ(d[0].uuid, "GPU-abc");
  EXPECT_TRUE(d[0].supports_int8);
  EXPECT_EQ(d[1].id, 1);
  EXPECT_EQ(d[1].memory_free_bytes, 0u);
  EXPECT_FALSE(d[1].supports_fp16);
}

TEST(CudaProbeTest, ParsesCudaVersionFromPlainReport) {
  EXPECT_EQ(internal::parse_nvidia_smi_cuda_version(
                "| NVIDIA-SMI 550.54.15    Driver Version: 550.54.15    CUDA Version: 12.4     |"),
            "12.4");
  EXPECT_EQ(internal::parse_nvidia_smi_cuda_version("no version here"), "");
}

// Writes an executable shell script.
std::string write_script(const std::filesystem::path& path, const std::string& body) {
  std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  return path.string();
}

TEST(CudaProbeTest, FallsBackToNvidiaSmiWhenNvmlIsMissing) {
  testing::TempDir dir;
  std::string smi = write_script(dir.path() / "nvidia-smi",
                                 "if [ $# -eq 0 ]; then echo 'Driver Version: 550.1  CUDA Version: 12.10'; exit 0; fi\n"
                                 "echo '0, Fake GPU, 1024, 512, 00000000:01:00.0, 550.1, 8.6, GPU-1'");
  ProbeOptions options;
  options.nvml_library = (dir.path() / "no-such-libnvidia-ml.so").string();
  options.nvidia_smi = smi;
  options.probe_rocm = false;
  DeviceInfo info = probe_devices(options);
  const Device* gpu = info.find(DeviceBackend::kCuda, 0);
  ASSERT_NE(gpu, nullptr);
  EXPECT_EQ(gpu->name, "Fake GPU");
  EXPECT_EQ(gpu->cuda_version, "12.10");
  EXPECT_EQ(gpu->memory_total_bytes, uint64_t{1} << 30);
  EXPECT_TRUE(info.has_provider("TensorRT"));
}

TEST(CudaProbeTest, NvmlThroughDlopen) {
  ProbeOptions options;
  options.nvml_library = KAPSL_FAKE_NVML;
  options.nvidia_smi = "/no/such/nvidia-smi";  // must not be needed
  options.probe_rocm = false;
  DeviceInfo info = probe_devices(options);
  ASSERT_EQ(info.devices.size(), 3u) << (info.notes.empty() ? "" : info.notes[0]);
  const Device* g0 = info.find(DeviceBackend::kCuda, 0);
  const Device* g1 = info.find(DeviceBackend::kCuda, 1);
  ASSERT_NE(g0, nullptr);
  ASSERT_NE(g1, nullptr);
  EXPECT_EQ(g0->name, "Fake GPU 0");
  EXPECT_EQ(g0->memory_total_bytes, uint64_t{1} << 30);
  EXPECT_EQ(g0->memory_free_bytes, uint64_t{1} << 20);
  EXPECT_EQ(g0->compute_capability, "9.0");
  EXPECT_EQ(g0->uuid, "GPU-fake-0");
  EXPECT_EQ(g0->pci_bus_id, "00000000:17:00.0");
  EXPECT_EQ(g0->driver_version, "550.54.15");
  EXPECT_EQ(g0->cuda_version, "12.10");
  EXPECT_EQ(g1->memory_total_bytes, uint64_t{2} << 30);
  EXPECT_FALSE(g1->supports_fp16);  // capability 3.7
  EXPECT_TRUE(info.notes.empty());
}

TEST(CudaProbeTest, HangingOrMissingToolsLeaveCpuOnly) {
  testing::TempDir dir;
  ProbeOptions options;
  options.nvml_library = "";
  options.nvidia_smi = write_script(dir.path() / "nvidia-smi", "sleep 30");
  options.rocm_smi = (dir.path() / "no-such-rocm-smi").string();
  options.command_timeout = std::chrono::milliseconds(200);
  DeviceInfo info = probe_devices(options);
  EXPECT_EQ(info.devices.size(), 1u);
  EXPECT_FALSE(info.has(DeviceBackend::kCuda));
  EXPECT_TRUE(info.has_provider("cpu"));
  EXPECT_FALSE(info.has_provider("cuda"));
  ASSERT_EQ(info.notes.size(), 2u);
  EXPECT_NE(info.notes[0].find("timed out"), std::string::npos) << info.notes[0];
  EXPECT_NE(info.notes[1].find("rocm-smi"), std::string::npos) << info.notes[1];
}

TEST(SubprocessTest, ReportsExitCodesAndMissingPrograms) {
  internal::CommandResult ok = internal::run_command({"sh", "-c", "echo hi"}, std::chrono::seconds(10));
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.output, "hi\n");
  internal::CommandResult fail = internal::run_command({"sh", "-c", "exit 3"}, std::chrono::seconds(10));
  EXPECT_EQ(fail.exit_code, 3);
  EXPECT_FALSE(fail.ok());
  internal::CommandResult missing = internal::run_command({"/no/such/program"}, std::chrono::seconds(10));
  EXPECT_FALSE(missing.started);
}

TEST(SubprocessTest, KillsTheWholeProcessGroupOnTimeout) {
  // The grandchild keeps stdout open; without the group kill the read would wait for it.
  internal::CommandResult r =
      internal::run_command({"sh", "-c", "sleep 30 & sleep 30"}, std::chrono::milliseconds(200));
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.ok());
}

TEST(RocmProbeTest, ParsesRocmSmiJson) {
  std::vector<Device> d = internal::parse_rocm_smi_json(
      R"J({"card1":{"Card series":"Instinct MI210","VRAM Total Memory (B)":"68702699520",)J"
      R"J("VRAM Total Used Memory (B)":"702699520"},"card0":{"Device Name":"Radeon","VRAM Total Memory (B)":"1024"},)J"
      R"J("system":{"Driver version":"6.2.4"}})J");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].id, 0);
  EXPECT_EQ(d[0].name, "Radeon");
  EXPECT_EQ(d[1].name, "Instinct MI210");
  EXPECT_EQ(d[1].memory_total_bytes, 68702699520u);
  EXPECT_EQ(d[1].memory_free_bytes, 68000000000u);
  EXPECT_EQ(d[1].driver_version, "6.2.4");
  EXPECT_TRUE(internal::parse_rocm_smi_json("not json").empty());
}

TEST(VersionTest, ComparesNumerically) {
  EXPECT_GT(compare_versions("12.10", "12.2"), 0);
  EXPECT_LT(compare_versions("9.2", "11.8"), 0);
  EXPECT_EQ(compare_versions("12", "12.0"), 0);
  EXPECT_EQ(compare_versions(" 12.4-rc1 ", "12.4"), 0);
  EXPECT_LT(compare_versions("12.0", "12.0.1"), 0);
  expect_error([] { compare_versions("abc", "1"); }, ErrorCode::kInvalidInput, {"\"abc\""});
  expect_error([] { compare_versions("1", ""); }, ErrorCode::kInvalidInput, {"numeric version"});
}

}  // namespace
}  // namespace kapsl
