// Shared memory between processes of one host, as a memfd sealed against shrinking: the creator
// sizes and seals it, and whoever maps it (a FUSE daemon mapping a program's ring, a storage
// server mapping a client's read region) can never fault on a page cut away under it, which would
// be a SIGBUS in the mapping process. Both ends live here so the creation and the checks agree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace threefs {

// A mapped memfd; the caller owns both the descriptor and the mapping.
struct SealedMemfd {
  int fd = -1;
  uint8_t* base = nullptr;
  size_t bytes = 0;
};

// Creates a memfd of `bytes` bytes, sealed against shrinking, growing and further sealing, and
// maps it shared. Throws std::runtime_error with the failing call's errno text.
SealedMemfd CreateSealedMemfd(const char* name, size_t bytes);

// Opens the file at `path` (another process's memfd, /proc/<pid>/fd/<n>) and maps it shared,
// after checking that it is a regular file of exactly `bytes` bytes carrying every seal of
// `required_seals` (F_SEAL_* bits). Throws std::runtime_error saying which check failed.
SealedMemfd MapSealedFile(const std::string& path, size_t bytes, int required_seals);

// Unmaps and closes; a default-constructed value is ignored.
void ReleaseSealedMemfd(const SealedMemfd& memfd);

}  // namespace threefs
