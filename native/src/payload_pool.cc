#include "payload_pool.h"

#include <cstdlib>

namespace threefs {

PayloadPool::~PayloadPool() {
  // Memory of a block whose ArrayBuffer exists belongs to that ArrayBuffer's finalizer.
  for (Block& block : blocks_) {
    if (block.handle == nullptr) std::free(block.data);
  }
}

int PayloadPool::ClassOf(size_t length) {
  if (length > kMaxBlock) return -1;
  int cls = 0;
  size_t size = kMinBlock;
  while (size < length) {
    size <<= 1;
    cls++;
  }
  return cls;
}

PayloadPool::Block* PayloadPool::Acquire(size_t length) {
  if (length < kMinBlock) return nullptr;
  const int cls = ClassOf(length);
  if (cls < 0) return nullptr;
  if (free_.size() <= static_cast<size_t>(cls)) free_.resize(static_cast<size_t>(cls) + 1);
  auto& list = free_[static_cast<size_t>(cls)];
  Block* block = nullptr;
  while (block == nullptr && !list.empty()) {
    Block* candidate = &blocks_[list.back() - 1];
    list.pop_back();
    candidate->isFree = false;
    inUseBytes_ += candidate->capacity;
    // Held while free: a send of a view whose block was already released (a bug, counted in
    // Hold). It stays out of the free list until that send is done (MaybeFree puts it back).
    if (candidate->holds == 0) block = candidate;
  }
  if (block == nullptr) {
    const size_t capacity = kMinBlock << cls;
    if (totalBytes_ + capacity > limitBytes_) return nullptr;
    // Page-aligned (capacity is a power of two >= 64 KiB), so O_DIRECT can read straight into a
    // block: the chunk engine's read pool is this class too.
    auto* data = static_cast<uint8_t*>(std::aligned_alloc(kAlign, capacity));
    if (data == nullptr) return nullptr;
    const auto id = static_cast<uint32_t>(blocks_.size() + 1);
    blocks_.push_back(Block{id, data, capacity, false, nullptr});
    byAddress_[reinterpret_cast<uintptr_t>(data)] = id;
    totalBytes_ += capacity;
    inUseBytes_ += capacity;
    block = &blocks_.back();
  }
  block->inUse = true;
  return block;
}

PayloadPool::Block* PayloadPool::Find(uint32_t id) {
  if (id == 0 || id > blocks_.size()) return nullptr;
  return &blocks_[id - 1];
}

void PayloadPool::Release(uint32_t id) {
  Block* block = Find(id);
  if (block == nullptr || !block->inUse || block->data == nullptr) {
    badReleases_++;
    return;
  }
  block->inUse = false;
  MaybeFree(block);
}

void PayloadPool::Unhold(uint32_t id) {
  Block* block = Find(id);
  if (block == nullptr) return;  // drained at shutdown
  if (block->holds == 0) {
    badReleases_++;  // an unhold without a hold: a bug, counted like a bad release
    return;
  }
  block->holds--;
  MaybeFree(block);
}

void PayloadPool::Hold(Block* block) {
  if (block->isFree) badReleases_++;  // a send of a view JS already released: a bug
  block->holds++;
}

void PayloadPool::MaybeFree(Block* block) {
  if (block->isFree || block->inUse || block->holds > 0) return;
  block->isFree = true;
  inUseBytes_ -= block->capacity;
  free_[static_cast<size_t>(ClassOf(block->capacity))].push_back(block->id);
}

PayloadPool::Block* PayloadPool::Containing(const uint8_t* data, size_t length) {
  const auto at = reinterpret_cast<uintptr_t>(data);
  auto it = byAddress_.upper_bound(at);
  if (it == byAddress_.begin()) return nullptr;
  --it;
  Block* block = Find(it->second);
  if (block == nullptr || at + length > it->first + block->capacity) return nullptr;
  return block;
}

std::vector<PayloadPool::Block> PayloadPool::Drain() {
  std::vector<Block> drained;
  drained.swap(blocks_);
  free_.clear();
  byAddress_.clear();
  totalBytes_ = inUseBytes_ = 0;
  return drained;
}

}  // namespace threefs
