#include "sealed_memfd.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace threefs {

namespace {

std::runtime_error SysError(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

// Maps `fd` shared, or closes it and throws.
uint8_t* MapOrClose(int fd, size_t bytes, const std::string& what) {
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    const std::runtime_error err = SysError("mmap of " + what);
    close(fd);
    throw err;
  }
  return static_cast<uint8_t*>(base);
}

}  // namespace

SealedMemfd CreateSealedMemfd(const char* name, size_t bytes) {
  const int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) throw SysError("memfd_create");
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    const std::runtime_error err = SysError("sizing and sealing the memfd");
    close(fd);
    throw err;
  }
  return {fd, MapOrClose(fd, bytes, "the memfd"), bytes};
}

SealedMemfd MapSealedFile(const std::string& path, size_t bytes, int required_seals) {
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) throw SysError("open " + path);
  auto refuse = [fd](const std::string& why) {
    close(fd);
    return std::runtime_error(why);
  };
  struct stat st {};
  if (fstat(fd, &st) != 0) throw refuse("fstat of " + path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw refuse(path + " is not a memfd");
  const int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & required_seals) != required_seals)
    throw refuse(path + " is not sealed against shrinking (F_SEAL_SHRINK" +
                 std::string((required_seals & F_SEAL_SEAL) != 0 ? "|F_SEAL_SEAL" : "") + ")");
  if (static_cast<uint64_t>(st.st_size) != bytes)
    throw refuse(path + " is not a region of " + std::to_string(bytes) + " bytes (it has " +
                 std::to_string(st.st_size) + ")");
  return {fd, MapOrClose(fd, bytes, path), bytes};
}

void ReleaseSealedMemfd(const SealedMemfd& memfd) {
  if (memfd.base != nullptr) munmap(memfd.base, memfd.bytes);
  if (memfd.fd >= 0) close(memfd.fd);
}

}  // namespace threefs
