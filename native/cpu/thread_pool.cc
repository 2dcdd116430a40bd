#include "thread_pool.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define BARBELL_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define BARBELL_PAUSE() __asm__ volatile("yield")
#else
#define BARBELL_PAUSE() ((void)0)
#endif

namespace barbell {

ThreadPool::ThreadPool(int threads) {
  for (int t = 1; t < threads; ++t) {
    workers_.emplace_back([this] { worker_loop(); });
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
}

void ThreadPool::drain() {
  for (;;) {
    const int t = next_.fetch_add(1);
    if (t >= tasks_) {
      return;
    }
    (*job_)(t);
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
  job_ = &fn;
  tasks_ = tasks;
  next_.store(0);
  busy_.store(static_cast<int>(workers_.size()));
  generation_.fetch_add(1);  // publishes job_ and tasks_ (seq_cst)
  if (sleeping_.load() > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }
  drain();
  // Every worker checks in once per generation, after it stopped taking tasks of this job.
  while (busy_.load() != 0) {
    BARBELL_PAUSE();
  }
  job_ = nullptr;
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;  // the generation at construction; a job posted before this thread ran is still seen
  for (;;) {
    // Spin a little (≈ tens of microseconds) for the next kernel, then sleep.
    bool got = false;
    for (int spin = 0; spin < 20000; ++spin) {
      if (generation_.load() != seen || stop_.load()) {
        got = true;
        break;
      }
      BARBELL_PAUSE();
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
    drain();
    busy_.fetch_sub(1);
  }
}

}  // namespace barbell
