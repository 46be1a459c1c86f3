#include "server/request_admission.h"

#include <algorithm>
#include <chrono>

#include "kapsl/error.h"

namespace kapsl::server {

Admission::Ticket& Admission::Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = other.owner_;
    gate_ = other.gate_;
    other.owner_ = nullptr;
  }
  return *this;
}

void Admission::Ticket::release() noexcept {
  if (owner_ != nullptr) owner_->give_back(gate_);
  owner_ = nullptr;
}

Admission::Ticket Admission::admit(const std::string& model, const AdmissionLimits& limits) {
  internal::MutexLock lock(&mu_);
  if (closed_) throw Error::unavailable("the server is shutting down");
  Gate& gate = gates_[model];
  gate.max_concurrency = std::max<uint32_t>(limits.max_concurrency, 1);
  if (gate.running < gate.max_concurrency) {
    ++gate.running;
    return Ticket(this, &gate);
  }
  if (gate.waiting >= limits.max_queue) {
    throw Error::overloaded("model '" + model + "' is busy",
                            std::to_string(gate.running) + " requests running and " + std::to_string(gate.waiting) +
                                " queued (the limits)");
  }
  ++gate.waiting;
  const auto deadline = std::chrono::steady_clock::now() + limits.queue_timeout;
  bool turn = true;
  while (!closed_ && gate.running >= gate.max_concurrency) {
    if (!gate.cv.wait_until(&mu_, deadline)) {
      turn = closed_ || gate.running < gate.max_concurrency;
      break;
    }
  }
  --gate.waiting;
  if (closed_) throw Error::unavailable("the server is shutting down");
  if (!turn) throw Error::overloaded("model '" + model + "' is busy", "waited the whole queue timeout for a turn");
  ++gate.running;
  return Ticket(this, &gate);
}

void Admission::give_back(Gate* gate) noexcept {
  {
    internal::MutexLock lock(&mu_);
    --gate->running;
  }
  gate->cv.notify_one();
}

Admission::Counts Admission::counts(std::string_view model) const {
  internal::MutexLock lock(&mu_);
  auto it = gates_.find(model);
  if (it == gates_.end()) return {};
  return {it->second.running, it->second.waiting};
}

std::map<std::string, Admission::Counts> Admission::all_counts() const {
  internal::MutexLock lock(&mu_);
  std::map<std::string, Counts> out;
  for (const auto& [name, gate] : gates_) out.emplace(name, Counts{gate.running, gate.waiting});
  return out;
}

uint32_t Admission::total_running() const {
  internal::MutexLock lock(&mu_);
  uint32_t n = 0;
  for (const auto& [name, gate] : gates_) n += gate.running;
  return n;
}

void Admission::close() {
  internal::MutexLock lock(&mu_);
  closed_ = true;
  for (auto& [name, gate] : gates_) gate.cv.notify_all();
}

}  // namespace kapsl::server
