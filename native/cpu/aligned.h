// A std::vector allocator with 64-byte (cache-line) alignment, for the executor's scratch buffers that the
// SIMD kernels stream through. std::allocator only guarantees 16 bytes (glibc's large blocks come from mmap
// at page + 16), so a 32- or 64-byte vector load at a block boundary of such a buffer straddles two cache
// lines every second or every time; measured on the ternary prefill kernel (bench/ternary-kernel/run.sh): 1.3×
// slower on AVX2 and AVX-512 with the activations at 16 mod 64. Written here because the standard library
// has no aligned allocator for vector and the C++17 aligned operator new makes one a few lines.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace barbell {

constexpr std::size_t kCacheLine = 64;

template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kCacheLine}));
  }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{kCacheLine}); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const CacheLineAllocator<U>&) const noexcept { return false; }
};

// A vector whose data() is 64-byte aligned.
template <class T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

}  // namespace barbell
