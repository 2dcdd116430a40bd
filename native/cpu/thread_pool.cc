#include "thread_pool.h"

#include <chrono>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define BARBELL_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define BARBELL_PAUSE() __asm__ volatile("yield")
#else
#define BARBELL_PAUSE() ((void)0)
#endif

namespace barbell {

namespace {
// How long an idle worker spins for the next job before it sleeps.
constexpr auto kSpin = std::chrono::microseconds(1000);

constexpr uint64_t pack(uint32_t next, uint32_t end) { return (static_cast<uint64_t>(end) << 32) | next; }
constexpr uint32_t next_of(uint64_t w) { return static_cast<uint32_t>(w); }
constexpr uint32_t end_of(uint64_t w) { return static_cast<uint32_t>(w >> 32); }
}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(threads < 1 ? 1 : threads) {
  ranges_ = std::make_unique<Range[]>(static_cast<size_t>(threads_));
  for (int t = 1; t < threads_; ++t) {
    workers_.emplace_back([this, t] { worker_loop(t); });
  }
}

ThreadPool::~ThreadPool() { stop(); }

void ThreadPool::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  for (auto& w : workers_) {
    if (w.joinable()) {
      w.join();
    }
  }
  workers_.clear();
  threads_ = 1;
}

void ThreadPool::drain(int self) {
  const int n = threads_;
  std::atomic<int>& done = ranges_[static_cast<size_t>(self)].done;
  for (int i = 0; i < n; ++i) {
    Range& r = ranges_[static_cast<size_t>((self + i) % n)];
    uint64_t w = r.word.load(std::memory_order_acquire);
    while (next_of(w) < end_of(w)) {
      // In order, own range or another's (the weights then stream forward, as the kernels' prefetch expects).
      if (!r.word.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
        continue;  // w reloaded
      }
      const int task = static_cast<int>(next_of(w));
      ++w;
      // The claimed task belongs to the job being run (ranges are empty between jobs), and that job cannot
      // finish before this task is counted, so fn_ is its function.
      (*fn_.load(std::memory_order_acquire))(task);
      // Counted at once on this thread's own line: a thread preempted later holds up nobody.
      done.fetch_add(1, std::memory_order_release);
    }
  }
}

void ThreadPool::run(int tasks, const std::function<void(int)>& fn) {
  if (tasks <= 0) {
    return;
  }
  if (workers_.empty() || tasks == 1) {
    for (int t = 0; t < tasks; ++t) {
      fn(t);
    }
    return;
  }
  // Every range is empty and every task of the last job counted: no other thread touches fn_ or a count now.
  fn_.store(&fn, std::memory_order_relaxed);
  const uint64_t n = static_cast<uint64_t>(threads_);
  for (uint64_t t = 0; t < n; ++t) {
    ranges_[t].done.store(0, std::memory_order_relaxed);
  }
  for (uint64_t t = 0; t < n; ++t) {
    const uint64_t b = static_cast<uint64_t>(tasks) * t / n;
    const uint64_t e = static_cast<uint64_t>(tasks) * (t + 1) / n;
    ranges_[t].word.store(pack(static_cast<uint32_t>(b), static_cast<uint32_t>(e)), std::memory_order_release);
  }
  generation_.fetch_add(1);
  if (sleeping_.load() > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }
  drain(0);
  // Tasks claimed by workers finish quickly (each is a slice of one kernel).
  const auto finished = [&] {
    int sum = 0;
    for (uint64_t t = 0; t < n; ++t) {
      sum += ranges_[t].done.load(std::memory_order_acquire);
    }
    return sum == tasks;
  };
  for (int spin = 0; !finished(); ++spin) {
    if (spin < 4096) {
      BARBELL_PAUSE();
    } else {
      std::this_thread::yield();  // the worker may share our core on an oversubscribed machine
    }
  }
}

void ThreadPool::worker_loop(int self) {
  uint64_t seen = 0;
  for (;;) {
    auto start = std::chrono::steady_clock::now();
    bool got = false;
    for (int spin = 0;; ++spin) {
      if (generation_.load(std::memory_order_acquire) != seen || stop_.load(std::memory_order_relaxed)) {
        got = true;
        break;
      }
      BARBELL_PAUSE();
      if ((spin & 255) == 255 && std::chrono::steady_clock::now() - start > kSpin) {
        break;
      }
    }
    if (!got) {
      std::unique_lock<std::mutex> lock(mu_);
      sleeping_.fetch_add(1);
      cv_.wait(lock, [&] { return generation_.load() != seen || stop_.load(); });
      sleeping_.fetch_sub(1);
    }
    if (stop_.load()) {
      return;
    }
    seen = generation_.load();
    drain(self);
  }
}

}  // namespace barbell
