#include "log_ring.h"

#include <chrono>
#include <utility>

namespace endosynth {

const char* LogSeverityName(LogSeverity severity) {
  switch (severity) {
    case LogSeverity::kInternalError: return "internal error";
    case LogSeverity::kError: return "error";
    case LogSeverity::kWarning: return "warning";
    case LogSeverity::kInfo: return "info";
    case LogSeverity::kVerbose: return "verbose";
  }
  return "info";
}

LogRing::LogRing(std::size_t capacity) : capacity_(capacity) {}

void LogRing::Push(LogSeverity severity, std::string source, std::string message) {
  const double now = std::chrono::duration<double, std::milli>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.push_back(LogEntry{++last_seq_, severity, std::move(source), std::move(message), now});
  while (entries_.size() > capacity_) entries_.pop_front();
}

std::vector<LogEntry> LogRing::Since(std::uint64_t seq) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<LogEntry> result;
  for (const LogEntry& entry : entries_) {
    if (entry.seq > seq) result.push_back(entry);
  }
  return result;
}

std::uint64_t LogRing::LastSeq() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_seq_;
}

std::vector<std::string> LogRing::ProblemsSince(std::uint64_t seq, std::size_t max) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> problems;
  for (auto it = entries_.rbegin(); it != entries_.rend() && it->seq > seq && problems.size() < max; ++it) {
    if (it->severity <= LogSeverity::kWarning) problems.push_back(std::string(LogSeverityName(it->severity)) + ": " + it->message);
  }
  return std::vector<std::string>(problems.rbegin(), problems.rend());
}

LogRing& TensorRtLog() {
  // Leaked on purpose: TensorRT may still log from its own threads while static objects are
  // destroyed at exit, so the ring must outlive every static destructor.
  static LogRing* ring = new LogRing(256);
  return *ring;
}

}  // namespace endosynth
