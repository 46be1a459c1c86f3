// PoolConfig defaults, JSON parsing and validation.
#include <gtest/gtest.h>

#include "kapsl/engine_pool.h"
#include "kapsl/pool_config.h"

namespace kapsl {
namespace {

using namespace std::chrono_literals;

// The message of the kInvalidInput error `json` produces, or "" when it parses.
std::string parse_error(const std::string& json) {
  try {
    PoolConfig::from_json(json);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput) << e.to_string();
    return e.message();
  }
  return "";
}

// Weakness 4: Default and serde disagreed on warmup_enabled / warmup_size.
TEST(PoolConfigTest, DefaultsAreTheOriginalsAndTheSameFromCodeAndJson) {
  const PoolConfig code;
  const PoolConfig json = PoolConfig::from_json("{}");
  for (const PoolConfig* c : {&code, &json}) {
    EXPECT_EQ(c->max_size, 5u);
    EXPECT_EQ(c->min_size, 1u);
    EXPECT_EQ(c->ttl, 60s);
    EXPECT_EQ(c->health_check_interval, 10s);
    EXPECT_TRUE(c->warmup_enabled);
    EXPECT_EQ(c->warmup_size, 1u);
    EXPECT_TRUE(c->health_check_on_get);
    EXPECT_TRUE(c->device_byte_budgets.empty());
    EXPECT_EQ(c->load_failure_backoff, 0ms);
  }
}

TEST(PoolConfigTest, ParsesEveryField) {
  const PoolConfig c = PoolConfig::from_json(R"({
    "max_size": 8, "min_size": 2, "ttl": "5m", "health_check_interval": 2.5,
    "load_failure_backoff": "500ms", "health_check_on_get": false, "warmup_enabled": false,
    "warmup_size": 3, "device_byte_budgets": {"0": "8GiB", "1": 1000, "-1": "1.5GB"}})");
  EXPECT_EQ(c.max_size, 8u);
  EXPECT_EQ(c.min_size, 2u);
  EXPECT_EQ(c.ttl, 5min);
  EXPECT_EQ(c.health_check_interval, 2500ms);
  EXPECT_EQ(c.load_failure_backoff, 500ms);
  EXPECT_FALSE(c.health_check_on_get);
  EXPECT_FALSE(c.warmup_enabled);
  EXPECT_EQ(c.warmup_size, 3u);
  EXPECT_EQ(c.device_byte_budgets.at(0), 8ull << 30);
  EXPECT_EQ(c.device_byte_budgets.at(1), 1000u);
  EXPECT_EQ(c.device_byte_budgets.at(-1), 1'500'000'000u);
}

TEST(PoolConfigTest, DurationForms) {
  EXPECT_EQ(PoolConfig::from_json(R"({"ttl": 60})").ttl, 60s);
  EXPECT_EQ(PoolConfig::from_json(R"({"ttl": "60s"})").ttl, 60s);
  EXPECT_EQ(PoolConfig::from_json(R"({"ttl": "1h"})").ttl, 1h);
  EXPECT_EQ(PoolConfig::from_json(R"({"ttl": "0"})").ttl, 0s);
  EXPECT_EQ(PoolConfig::from_json(R"({"ttl": 0.25})").ttl, 250ms);
}

TEST(PoolConfigTest, ErrorsNameTheField) {
  EXPECT_NE(parse_error(R"({"max_sise": 3})").find("unknown field \"max_sise\""), std::string::npos);
  EXPECT_NE(parse_error(R"({"max_size": "5"})").find("PoolConfig.max_size"), std::string::npos);
  EXPECT_NE(parse_error(R"({"max_size": -1})").find("PoolConfig.max_size"), std::string::npos);
  EXPECT_NE(parse_error(R"({"max_size": 2.5})").find("PoolConfig.max_size"), std::string::npos);
  EXPECT_NE(parse_error(R"({"max_size": 0})").find("PoolConfig.max_size"), std::string::npos);
  EXPECT_NE(parse_error(R"({"min_size": 6})").find("PoolConfig.min_size"), std::string::npos);
  EXPECT_NE(parse_error(R"({"ttl": -1})").find("PoolConfig.ttl"), std::string::npos);
  EXPECT_NE(parse_error(R"({"ttl": "10 parsecs"})").find("PoolConfig.ttl"), std::string::npos);
  EXPECT_NE(parse_error(R"({"ttl": "s"})").find("PoolConfig.ttl"), std::string::npos);
  EXPECT_NE(parse_error(R"({"ttl": {"secs": 60, "nanos": 0}})").find("PoolConfig.ttl"), std::string::npos);
  EXPECT_NE(parse_error(R"({"ttl": 1e300})").find("PoolConfig.ttl"), std::string::npos);
  EXPECT_NE(parse_error(R"({"warmup_enabled": 1})").find("PoolConfig.warmup_enabled"), std::string::npos);
  EXPECT_NE(parse_error(R"({"device_byte_budgets": [1]})").find("device_byte_budgets"), std::string::npos);
  EXPECT_NE(parse_error(R"({"device_byte_budgets": {"gpu0": 1}})").find("\"gpu0\""), std::string::npos);
  EXPECT_NE(parse_error(R"({"device_byte_budgets": {"0": "8 furlongs"}})").find("device_byte_budgets[0]"),
            std::string::npos);
  EXPECT_NE(parse_error(R"({"device_byte_budgets": {"0": 0}})").find("device_byte_budgets[0]"), std::string::npos);
}

TEST(PoolConfigTest, MalformedDocumentsAreInvalidInput) {
  EXPECT_NE(parse_error("").find("not valid JSON"), std::string::npos);
  EXPECT_NE(parse_error("{\"max_size\": ").find("not valid JSON"), std::string::npos);
  EXPECT_NE(parse_error("[1, 2]").find("expected a JSON object"), std::string::npos);
  EXPECT_NE(parse_error("null").find("expected a JSON object"), std::string::npos);
}

TEST(PoolConfigTest, PoolRejectsAnInvalidConfig) {
  PoolConfig c;
  c.max_size = 0;
  try {
    EnginePool pool(c);
    ADD_FAILURE() << "expected kInvalidInput";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
    EXPECT_NE(e.message().find("max_size"), std::string::npos);
  }
  c.max_size = 2;
  c.min_size = 3;
  EXPECT_THROW(EnginePool{c}, Error);
  c.min_size = 0;
  c.ttl = -1s;
  EXPECT_THROW(EnginePool{c}, Error);
}

}  // namespace
}  // namespace kapsl
