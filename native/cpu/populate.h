// madvise(MADV_POPULATE_READ / MADV_POPULATE_WRITE) (Linux ≥ 5.14): fill the page tables of a range of whole
// pages in one call instead of a page fault per 4 KiB, reading (file pages) or preparing for writes (fresh
// memory) without touching data. Used by load.cc (readable, prefault_destination) and layers.cc (KV rows).
#pragma once

#include <cerrno>
#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace barbell {

// 0, or the errno of madvise for the page-aligned range [lo, hi) (EINVAL where the kernel lacks the advice,
// EFAULT where a file page cannot be read: the file became shorter than its mapping); ENOSYS off Linux.
inline int populate_pages(uintptr_t lo, uintptr_t hi, bool write) {
#if defined(__linux__)
  constexpr int kPopulateRead = 22;   // MADV_POPULATE_READ (older headers lack the names)
  constexpr int kPopulateWrite = 23;  // MADV_POPULATE_WRITE
  return madvise(reinterpret_cast<void*>(lo), hi - lo, write ? kPopulateWrite : kPopulateRead) == 0 ? 0 : errno;
#else
  (void)lo, (void)hi, (void)write;
  return ENOSYS;
#endif
}

}  // namespace barbell
