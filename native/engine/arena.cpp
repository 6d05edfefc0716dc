#include "arena.h"

#include "tensor.h"

namespace fit {

void* Arena::allocBytes(size_t bytes) {
  size_t need = ((bytes + 63) / 64) * 64;
  if (need == 0) need = 64;
  for (Block& b : blocks_) {
    if (b.size - b.used >= need) {
      void* p = static_cast<char*>(b.mem.get()) + b.used;
      b.used += need;
      return p;
    }
  }
  // Small first blocks: reset() merges them into one block of the size a run needs, and a fixed
  // megabyte per executor was a third of the Fisher-pass memory of a small CNN.
  size_t size = need < (size_t(64) << 10) ? (size_t(64) << 10) : need;
  Block b;
  b.mem = allocAligned(size);
  b.size = size;
  b.used = need;
  blocks_.push_back(b);
  return b.mem.get();
}

void Arena::reset() {
  // Merge many small blocks into one big one so steady state needs a single block.
  if (blocks_.size() > 1) {
    size_t total = 0;
    for (const Block& b : blocks_) total += b.size;
    blocks_.clear();
    Block b;
    b.mem = allocAligned(total);
    b.size = total;
    blocks_.push_back(b);
  }
  for (Block& b : blocks_) b.used = 0;
}

size_t Arena::capacity() const {
  size_t total = 0;
  for (const Block& b : blocks_) total += b.size;
  return total;
}

}  // namespace fit
