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
}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(threads < 1 ? 1 : threads) {
  for (int t = 1; t < threads_; ++t) {
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
  threads_ = 1;
}

void ThreadPool::drain(Job* job) {
  for (;;) {
    const int t = job->next.fetch_add(1);
    if (t >= job->tasks) {
      return;
    }
    (*job->fn)(t);
    job->done.fetch_add(1);
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
  Job job;
  job.fn = &fn;
  job.tasks = tasks;
  current_.store(&job);
  generation_.fetch_add(1);
  if (sleeping_.load() > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }
  drain(&job);
  // Tasks claimed by workers finish quickly (each is a slice of one kernel).
  for (int spin = 0; job.done.load() != tasks; ++spin) {
    if (spin < 4096) {
      BARBELL_PAUSE();
    } else {
      std::this_thread::yield();  // the worker may share our core on an oversubscribed machine
    }
  }
  // Retire the job, then wait for workers that entered it and may still read its counters.
  // (seq_cst: a worker either entered before this store and is counted in inside_, or sees nullptr.)
  current_.store(nullptr);
  while (inside_.load() != 0) {
    std::this_thread::yield();
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    auto start = std::chrono::steady_clock::now();
    bool got = false;
    for (int spin = 0;; ++spin) {
      if (generation_.load() != seen || stop_.load()) {
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
    inside_.fetch_add(1);
    Job* job = current_.load();
    if (job != nullptr) {
      drain(job);
    }
    inside_.fetch_sub(1);
  }
}

}  // namespace barbell
