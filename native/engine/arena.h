// Scratch memory for kernels (im2col buffers, packed panels): a bump allocator over aligned blocks,
// reset after each op so a run reuses the same blocks instead of hitting malloc.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace fit {

class Arena {
 public:
  template <typename T> T* alloc(size_t n) { return static_cast<T*>(allocBytes(n * sizeof(T))); }
  void* allocBytes(size_t bytes);
  void reset();           // makes all memory reusable (keeps the blocks)
  size_t capacity() const;

 private:
  struct Block {
    std::shared_ptr<void> mem;
    size_t size = 0;
    size_t used = 0;
  };
  std::vector<Block> blocks_;
};

}  // namespace fit
