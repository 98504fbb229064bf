// A bounded, thread-safe record of what TensorRT (and the addon itself) logged. TensorRT reports
// the reason for most failures only through its ILogger, so failures quote the problems logged
// while they ran, and JS mirrors new entries to util.debuglog("endosynth"). Bounded because an
// engine build logs thousands of lines and nothing may grow without limit in a long-lived process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace endosynth {

// Severities in TensorRT's order (nvinfer1::ILogger::Severity has the same values).
enum class LogSeverity : int { kInternalError = 0, kError = 1, kWarning = 2, kInfo = 3, kVerbose = 4 };

// The lower-case name of a severity, e.g. "warning".
const char* LogSeverityName(LogSeverity severity);

struct LogEntry {
  std::uint64_t seq;    // increases by one per entry, never reused
  LogSeverity severity;
  std::string source;   // "tensorrt" or "endosynth"
  std::string message;
  double unix_ms;       // wall-clock time of the entry
};

// How many log problems a failure quotes at most.
constexpr std::size_t kProblemsPerFailure = 8;

class LogRing {
 public:
  explicit LogRing(std::size_t capacity);
  LogRing(const LogRing&) = delete;
  LogRing& operator=(const LogRing&) = delete;

  void Push(LogSeverity severity, std::string source, std::string message);
  // The entries still held whose seq is greater than `seq`, oldest first.
  std::vector<LogEntry> Since(std::uint64_t seq) const;
  // The seq of the newest entry (0 before the first): a mark to pass to Since/ProblemsSince later.
  std::uint64_t LastSeq() const;
  // The last `max` errors and warnings logged after `seq`, formatted "error: <message>".
  std::vector<std::string> ProblemsSince(std::uint64_t seq, std::size_t max) const;
  std::size_t capacity() const { return capacity_; }

 private:
  mutable std::mutex mutex_;
  std::deque<LogEntry> entries_;
  std::size_t capacity_;
  std::uint64_t last_seq_ = 0;
};

// The process-wide ring TensorRT's logger writes into (TensorRT keeps one logger per process).
LogRing& TensorRtLog();

}  // namespace endosynth
