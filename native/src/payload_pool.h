// Recycled payload memory for the native transport. A payload received as a fresh external Buffer
// counts as new external memory, and V8 answers every 64 MiB of that with a full mark-compact:
// at 1 GB/s that is ~16 major GCs a second, the largest cost on the receive path. Blocks from this
// pool are allocated once and handed to JS as views of a long-lived ArrayBuffer, so they add no
// external memory; a block returns here when JS releases it: when its views are collected (a
// FinalizationRegistry callback calls Release), or sooner when the code that owns the payload says
// it is done (pooled-views.ts, retire). Views are collected only by a full GC, so a writer that
// waits for that keeps the whole pool in use between collections and falls back to one-off
// allocations. A block a queued send still reads from is held (Hold/Unhold) and returns only once
// that send is done too. Power-of-two size classes; the total is capped, and past the cap the
// caller falls back to a one-off allocation. Blocks are page-aligned. JS thread only. Used by the
// RPC transport (received payloads) and the chunk engine's executor (read destinations).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

namespace threefs {

class PayloadPool {
 public:
  static constexpr size_t kMinBlock = 64 * 1024;
  static constexpr size_t kMaxBlock = 16 * 1024 * 1024;
  static constexpr size_t kAlign = 4096;

  struct Block {
    uint32_t id;
    uint8_t* data;
    size_t capacity;
    bool inUse;    // the connection reading into it, or JS, has it
    void* handle;  // the binding's reference to the block's ArrayBuffer (nullptr until created)
    uint32_t holds = 0;   // queued sends reading from it
    bool isFree = false;  // in the free list (so never listed twice)
  };

  explicit PayloadPool(size_t limitBytes) : limitBytes_(limitBytes) {}
  ~PayloadPool();  // frees the memory of blocks never handed to JS
  PayloadPool(const PayloadPool&) = delete;
  PayloadPool& operator=(const PayloadPool&) = delete;

  // A free block of at least `length` bytes, marked in use; nullptr when `length` is outside the
  // size classes or the pool is at its limit.
  Block* Acquire(size_t length);
  // The owner is done with the block: it is free again once no send holds it. Unknown or
  // already-released ids are ignored (and counted).
  void Release(uint32_t id);
  Block* Find(uint32_t id);
  // The block whose memory holds [data, data + length), if any.
  Block* Containing(const uint8_t* data, size_t length);
  // A send reads from the block until the matching Unhold. Unhold of an unknown id is ignored
  // (the pool may have been drained at shutdown); one without a hold counts as a bad release.
  void Hold(Block* block);
  void Unhold(uint32_t id);
  // Takes the memory of every block out of the pool (for shutdown); returns the blocks.
  std::vector<Block> Drain();

  size_t totalBytes() const { return totalBytes_; }
  size_t inUseBytes() const { return inUseBytes_; }  // every block not in the free list
  uint64_t badReleases() const { return badReleases_; }  // and holds of released blocks

 private:
  static int ClassOf(size_t length);
  void MaybeFree(Block* block);
  const size_t limitBytes_;
  size_t totalBytes_ = 0;
  size_t inUseBytes_ = 0;
  uint64_t badReleases_ = 0;
  std::vector<Block> blocks_;                 // index = id - 1
  std::vector<std::vector<uint32_t>> free_;  // by size class: ids of free blocks
  std::map<uintptr_t, uint32_t> byAddress_;  // block start -> id
};

}  // namespace threefs
