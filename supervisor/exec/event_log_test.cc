#include "supervisor/exec/event_log.h"

#include <cerrno>
#include <cstring>

#include <gtest/gtest.h>

namespace fault::exec {
namespace {

fault_event Event(uint16_t op, uint16_t effect, int64_t value) {
  fault_event e;
  std::memset(&e, 0, sizeof(e));
  e.time_ns = 1700000000123456789;
  e.pid = 10;
  e.tid = 11;
  e.rule = 1;
  e.op = op;
  e.effect = effect;
  e.value = value;
  e.layer = 1;
  std::strcpy(e.target, "127.0.0.1:8080");
  return e;
}

TEST(EventLogTest, LatencyEventAsJson) {
  nlohmann::json j = EventToJson(Event(FAULT_OP_SEND, FAULT_EFFECT_LATENCY, 200000000),
                                 {"first", "slow"});
  EXPECT_EQ(j.dump(),
            R"({"delay_ns":200000000,"effect":"latency","layer":"shim","op":"send",)"
            R"("pid":10,"rule":"slow","target":"127.0.0.1:8080","tid":11,)"
            R"("time":"2023-11-14T22:13:20.123456789Z","time_ns":1700000000123456789})");
}

TEST(EventLogTest, DenyCarriesErrnoName) {
  fault_event e = Event(FAULT_OP_FSYNC, FAULT_EFFECT_DENY, EIO);
  e.syscall_rule = 3;
  e.layer = 2;
  std::strcpy(e.target, "/tmp/x.db");
  nlohmann::json j = EventToJson(e, {"a", "disk"});
  EXPECT_EQ(j["errno"], EIO);
  EXPECT_EQ(j["errno_name"], "EIO");
  EXPECT_EQ(j["syscall_rule"], 2);
  EXPECT_EQ(j["layer"], "seccomp");
  EXPECT_EQ(j["op"], "fsync");
  EXPECT_EQ(j["effect"], "deny");
  EXPECT_FALSE(j.contains("delay_ns"));
}

TEST(EventLogTest, UnknownNumbersAndRulesStayReadable) {
  fault_event e = Event(200, 300, 5);
  e.rule = 9;
  e.layer = 7;
  nlohmann::json j = EventToJson(e, {"only"});
  EXPECT_EQ(j["op"], "op200");
  EXPECT_EQ(j["effect"], "effect300");
  EXPECT_EQ(j["rule"], "rule9");
  EXPECT_EQ(j["layer"], "layer7");
  EXPECT_EQ(j["value"], 5);
}

TEST(EventLogTest, TargetIsBoundedEvenWithoutNul) {
  fault_event e = Event(FAULT_OP_DNS, FAULT_EFFECT_DNS_NXDOMAIN, -2);
  std::memset(e.target, 'h', sizeof(e.target));
  nlohmann::json j = EventToJson(e, {});
  EXPECT_EQ(j["target"].get<std::string>().size(), sizeof(e.target));
  EXPECT_EQ(j["eai"], -2);
  EXPECT_EQ(j["effect"], "dns_nxdomain");
}

TEST(EventLogTest, ValueKeysByEffect) {
  EXPECT_EQ(ValueKey(FAULT_EFFECT_RATE, FAULT_OP_SEND), "delay_ns");
  EXPECT_EQ(ValueKey(FAULT_EFFECT_CONNECTION_ERROR, FAULT_OP_CONNECT), "errno");
  EXPECT_EQ(ValueKey(FAULT_EFFECT_LOSS, FAULT_OP_SEND), "value");
  EXPECT_EQ(ValueKey(FAULT_EFFECT_DNS_TIMEOUT, FAULT_OP_DNS), "eai");
  EXPECT_EQ(ValueKey(FAULT_EFFECT_BLACKHOLE, FAULT_OP_CONNECT), "delay_ns");
  EXPECT_EQ(ValueKey(FAULT_EFFECT_BLACKHOLE, FAULT_OP_SEND), "bytes");
  EXPECT_EQ(ValueKey(FAULT_EFFECT_HALF_OPEN, FAULT_OP_RECV), "bytes");
  EXPECT_EQ(ValueKey(FAULT_EFFECT_HTTP_ERROR, FAULT_OP_SEND), "status");
}

TEST(EventLogTest, HttpErrorCarriesTheStatus) {
  fault_event e = Event(FAULT_OP_RECV, FAULT_EFFECT_HTTP_ERROR, 503);
  std::strcpy(e.target, "api.example.com:80");
  nlohmann::json j = EventToJson(e, {"slow", "maintenance"});
  EXPECT_EQ(j["effect"], "http_error");
  EXPECT_EQ(j["status"], 503);
  EXPECT_EQ(j["rule"], "maintenance");
  EXPECT_EQ(j["target"], "api.example.com:80");
  EXPECT_FALSE(j.contains("errno"));
  EXPECT_FALSE(j.contains("value"));
}

}  // namespace
}  // namespace fault::exec
