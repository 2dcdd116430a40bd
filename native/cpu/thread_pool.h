// A small persistent thread pool: the calling thread plus (threads − 1) workers run the tasks of one
// job at a time, handed out dynamically through an atomic counter (robust on a noisy, shared machine).
//
// Workers spin briefly after a job (kernels come in quick succession while decoding) and then sleep
// on a condition variable, so an idle pool costs no CPU.
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

  // Runs fn(t) for every t in [0, tasks) and returns when all are done. Not reentrant.
  void run(int tasks, const std::function<void(int)>& fn);
  // Joins the workers; safe to call more than once. run() afterwards executes inline.
  void stop();
  int threads() const { return static_cast<int>(workers_.size()) + 1; }

 private:
  void worker_loop();
  void drain();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> sleeping_{0};
  std::atomic<int> next_{0};
  std::atomic<int> busy_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int)>* job_ = nullptr;
  int tasks_ = 0;
};

}  // namespace barbell
