// madvise(MADV_POPULATE_READ / MADV_POPULATE_WRITE) (Linux ≥ 5.14): fill the page tables of a range of whole
// pages in one call instead of a page fault per 4 KiB, reading (file pages) or preparing for writes (fresh
// memory) without touching data. Used by load.cc (readable, prefault_destination: converted weights) and layers.cc
// (KV rows), fresh memory through populate_for_write (2 MiB windows, huge pages inside the allocation).
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
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

// Fresh memory about to be written, bytes [lo, hi), page tables filled ahead in windows of kPopulateWindow bytes
// aligned in the address space (every window meeting [lo, hi)). A window lying wholly inside [mem_lo, mem_hi), an
// allocation the caller owns whole, is advised MADV_HUGEPAGE first and populated whole, so that it becomes one
// transparent huge page where the kernel allows them ("madvise" or "always"); of any other window only the pages
// holding bytes of [clip_lo, clip_hi) are populated (4 KiB pages: those at an allocation's ends may hold another
// allocation's bytes, which populating does not change). Why: on this project's VMs the guest's page tables are
// shadowed, so every first touch of a 4 KiB page costs a guest fault and then a hypervisor trap, ~10 µs in all; a
// huge page populated whole costs ~0.1 µs per 4 KiB and nothing at first touch (a huge page populated in parts
// was slower than 4 KiB pages): docs/architecture.md, "First touch and huge pages". 0, or the first errno.
constexpr uintptr_t kPopulateWindow = uintptr_t{2} << 20;

inline int populate_for_write(uintptr_t lo, uintptr_t hi, uintptr_t clip_lo, uintptr_t clip_hi, uintptr_t mem_lo, uintptr_t mem_hi) {
#if defined(__linux__)
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  if (page == 0 || (page & (page - 1)) != 0) {
    return EINVAL;
  }
  for (uintptr_t w = lo & ~(kPopulateWindow - 1); w < hi; w += kPopulateWindow) {
    uintptr_t a = w, b = w + kPopulateWindow;
    if (a >= mem_lo && b <= mem_hi) {
#if defined(MADV_HUGEPAGE)
      madvise(reinterpret_cast<void*>(a), b - a, MADV_HUGEPAGE);  // a hint: where it fails, 4 KiB pages
#endif
    } else {
      a = std::max(a, clip_lo) & ~(page - 1);
      b = (std::min(b, clip_hi) + page - 1) & ~(page - 1);
      if (a >= b) {
        continue;
      }
    }
    if (const int e = populate_pages(a, b, true); e != 0) {
      return e;
    }
  }
  return 0;
#else
  (void)lo, (void)hi, (void)clip_lo, (void)clip_hi, (void)mem_lo, (void)mem_hi;
  return ENOSYS;
#endif
}

}  // namespace barbell
