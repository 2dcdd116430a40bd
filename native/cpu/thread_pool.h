// A small persistent thread pool: the calling thread plus (threads − 1) workers run the tasks of one
// job at a time, handed out dynamically through an atomic counter (robust on a noisy, shared machine).
//
// The caller never waits for a worker that has not joined the job: a worker that is asleep (or not
// scheduled) when a job is posted simply misses it, and the caller runs the remaining tasks itself.
// Workers spin for about a millisecond after a job (kernels come in quick succession while decoding)
// and then sleep on a condition variable, so an idle pool costs no CPU.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace barbell {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Runs fn(t) for every t in [0, tasks) and returns when all are done. Not reentrant; one caller.
  void run(int tasks, const std::function<void(int)>& fn);
  // Joins the workers; safe to call more than once. run() afterwards executes inline.
  void stop();
  int threads() const { return threads_; }

 private:
  struct Job {
    const std::function<void(int)>* fn;
    int tasks;
    std::atomic<int> next{0};
    std::atomic<int> done{0};
  };

  void worker_loop();
  static void drain(Job* job);

  int threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> sleeping_{0};
  std::atomic<Job*> current_{nullptr};
  std::atomic<int> inside_{0};  // workers that may hold a pointer to the current job
  std::atomic<bool> stop_{false};
};

}  // namespace barbell
