// A small persistent thread pool: the calling thread plus (threads − 1) workers run the tasks of one
// job at a time (robust on a noisy, shared machine).
//
// The tasks of a job are split into one contiguous range per thread (the caller's first), each with its
// own claim word and done count on its own cache line: a thread claims the tasks of its range in order
// (for a row split, one linear stream through the weights, and no cache line passed between the cores per
// task), then what is left of the others' ranges, also in order. So the caller never waits for a worker
// that has not joined the job: a worker that is asleep (or not scheduled) when a job is posted simply
// misses it, and the caller runs the remaining tasks itself; it waits only for tasks a worker has claimed
// and is running (each is counted as soon as it is done).
// Workers spin for about a millisecond after a job (kernels come in quick succession while decoding)
// and then sleep on a condition variable, so an idle pool costs no CPU.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
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
  // Thread t's range of the current job, packed in one word so a claim is one compare-and-swap:
  // next task (low 32 bits) and end (high 32 bits). A range with next == end is empty; between jobs
  // every range is empty, so a claim that succeeds is always a task of the job being run.
  // done: tasks of the job this thread has run (written by it alone; reset by the caller between jobs).
  struct alignas(64) Range {
    std::atomic<uint64_t> word{0};
    std::atomic<int> done{0};
  };

  void worker_loop(int self);
  // Claims and runs tasks, own range first, then the others'; returns when none is left to claim.
  void drain(int self);

  int threads_ = 1;
  std::vector<std::thread> workers_;
  std::unique_ptr<Range[]> ranges_;
  std::atomic<const std::function<void(int)>*> fn_{nullptr};
  alignas(64) std::atomic<uint64_t> generation_{0};
  std::atomic<int> sleeping_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace barbell
