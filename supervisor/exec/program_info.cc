#include "supervisor/exec/program_info.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace fault::exec {
namespace {

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

// Reads exactly n bytes at offset, or fails.
bool ReadAt(int fd, void* buf, size_t n, off_t offset) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, static_cast<char*>(buf) + done, n - done, offset + done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    done += static_cast<size_t>(r);
  }
  return true;
}

template <typename Ehdr, typename Phdr>
absl::StatusOr<Linkage> ScanProgramHeaders(int fd, const std::string& path) {
  Ehdr eh;
  if (!ReadAt(fd, &eh, sizeof eh, 0)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": truncated ELF header"));
  }
  if (eh.e_phentsize != sizeof(Phdr) || eh.e_phnum > 4096) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": unexpected ELF program headers"));
  }
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Phdr ph;
    if (!ReadAt(fd, &ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * sizeof(Phdr)))) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": truncated ELF program headers"));
    }
    if (ph.p_type == PT_INTERP) return Linkage::kDynamic;
  }
  return Linkage::kStatic;
}

}  // namespace

absl::StatusOr<std::string> ResolveProgram(const std::string& name, const std::string& path_env) {
  if (name.empty()) return absl::InvalidArgumentError("empty program name");
  if (name.find('/') != std::string::npos) {
    if (IsExecutableFile(name)) return name;
    return absl::NotFoundError(absl::StrCat(name, ": not an executable file"));
  }
  for (absl::string_view dir : absl::StrSplit(path_env, ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", name);
    if (IsExecutableFile(candidate)) return candidate;
  }
  return absl::NotFoundError(absl::StrCat(name, ": command not found in PATH"));
}

absl::StatusOr<Linkage> ProgramLinkage(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat(path, ": ", strerror(errno)));
  }
  unsigned char ident[EI_NIDENT] = {};
  absl::StatusOr<Linkage> result;
  if (!ReadAt(fd, ident, 2, 0)) {
    result = absl::InvalidArgumentError(absl::StrCat(path, ": empty file"));
  } else if (ident[0] == '#' && ident[1] == '!') {
    result = Linkage::kScript;
  } else if (!ReadAt(fd, ident, EI_NIDENT, 0) || memcmp(ident, ELFMAG, SELFMAG) != 0) {
    result = absl::InvalidArgumentError(absl::StrCat(path, ": not an ELF file or script"));
  } else if (ident[EI_CLASS] == ELFCLASS64) {
    result = ScanProgramHeaders<Elf64_Ehdr, Elf64_Phdr>(fd, path);
  } else {
    result = ScanProgramHeaders<Elf32_Ehdr, Elf32_Phdr>(fd, path);
  }
  close(fd);
  return result;
}

namespace {

// True when the ELF at `fd` has a section named `.go.buildinfo` or
// `.note.go.buildid` (every Go toolchain since 1.13 writes one of them).
template <typename Ehdr, typename Shdr>
bool HasGoSection(int fd) {
  Ehdr eh;
  if (!ReadAt(fd, &eh, sizeof(eh), 0) || eh.e_shentsize != sizeof(Shdr) ||
      eh.e_shnum == 0 || eh.e_shnum > 4096 || eh.e_shstrndx >= eh.e_shnum) {
    return false;
  }
  std::vector<Shdr> sh(eh.e_shnum);
  if (!ReadAt(fd, sh.data(), sizeof(Shdr) * sh.size(), eh.e_shoff)) return false;
  const Shdr& names = sh[eh.e_shstrndx];
  if (names.sh_size == 0 || names.sh_size > (1u << 20)) return false;
  std::string strtab(names.sh_size, '\0');
  if (!ReadAt(fd, strtab.data(), strtab.size(), names.sh_offset)) return false;
  for (const Shdr& s : sh) {
    if (s.sh_name >= strtab.size()) continue;
    const char* name = strtab.c_str() + s.sh_name;
    if (strcmp(name, ".go.buildinfo") == 0 || strcmp(name, ".note.go.buildid") == 0)
      return true;
  }
  return false;
}

}  // namespace

namespace {

template <typename Ehdr, typename Shdr, typename Dyn>
absl::StatusOr<std::vector<std::string>> ScanNeeded(int fd, const std::string& path) {
  auto malformed = [&](const char* why) -> absl::Status {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", why));
  };
  Ehdr eh;
  if (!ReadAt(fd, &eh, sizeof(eh), 0)) return malformed("truncated ELF header");
  std::vector<std::string> out;
  if (eh.e_shnum == 0) return out;  // no section headers (sstrip): nothing to read
  if (eh.e_shentsize != sizeof(Shdr) || eh.e_shnum > 4096) {
    return malformed("unexpected ELF section headers");
  }
  std::vector<Shdr> sh(eh.e_shnum);
  if (!ReadAt(fd, sh.data(), sizeof(Shdr) * sh.size(), eh.e_shoff)) {
    return malformed("truncated ELF section headers");
  }
  for (const Shdr& dyn : sh) {
    if (dyn.sh_type != SHT_DYNAMIC) continue;
    if (dyn.sh_link >= sh.size() || dyn.sh_size > (1u << 20)) {
      return malformed("unexpected .dynamic section");
    }
    const Shdr& str = sh[dyn.sh_link];
    if (str.sh_size > (1u << 24)) return malformed("unexpected dynamic string table");
    std::vector<Dyn> entries(dyn.sh_size / sizeof(Dyn));
    std::string strtab(str.sh_size, '\0');
    if (!ReadAt(fd, entries.data(), entries.size() * sizeof(Dyn), dyn.sh_offset) ||
        !ReadAt(fd, strtab.data(), strtab.size(), str.sh_offset)) {
      return malformed("truncated dynamic section");
    }
    for (const Dyn& d : entries) {
      if (d.d_tag == DT_NULL) break;
      if (d.d_tag != DT_NEEDED) continue;
      if (d.d_un.d_val >= strtab.size()) return malformed("DT_NEEDED outside its string table");
      out.emplace_back(strtab.c_str() + d.d_un.d_val);
    }
    break;
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> NeededLibraries(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat(path, ": ", strerror(errno)));
  unsigned char ident[EI_NIDENT] = {};
  absl::StatusOr<std::vector<std::string>> result;
  if (ReadAt(fd, ident, 2, 0) && ident[0] == '#' && ident[1] == '!') {
    result = std::vector<std::string>{};
  } else if (!ReadAt(fd, ident, EI_NIDENT, 0) || memcmp(ident, ELFMAG, SELFMAG) != 0) {
    result = absl::InvalidArgumentError(absl::StrCat(path, ": not an ELF file or script"));
  } else if (ident[EI_CLASS] == ELFCLASS64) {
    result = ScanNeeded<Elf64_Ehdr, Elf64_Shdr, Elf64_Dyn>(fd, path);
  } else {
    result = ScanNeeded<Elf32_Ehdr, Elf32_Shdr, Elf32_Dyn>(fd, path);
  }
  close(fd);
  return result;
}

bool NeedsLiburing(const std::string& path) {
  absl::StatusOr<std::vector<std::string>> needed = NeededLibraries(path);
  if (!needed.ok()) return false;
  for (const std::string& lib : *needed) {
    if (absl::StartsWith(lib, "liburing.so")) return true;
  }
  return false;
}

bool IsGoProgram(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  unsigned char ident[EI_NIDENT] = {};
  bool go = false;
  if (ReadAt(fd, ident, EI_NIDENT, 0) && memcmp(ident, ELFMAG, SELFMAG) == 0) {
    go = ident[EI_CLASS] == ELFCLASS64 ? HasGoSection<Elf64_Ehdr, Elf64_Shdr>(fd)
                                       : HasGoSection<Elf32_Ehdr, Elf32_Shdr>(fd);
  }
  close(fd);
  return go;
}

absl::StatusOr<ExecPrivileges> ReadExecPrivileges(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("stat ", path));
  }
  ExecPrivileges p;
  p.setuid = (st.st_mode & S_ISUID) != 0;
  p.owner = st.st_uid;
  // Set-group-ID without group execute marks mandatory locking, not a
  // group change on execve.
  p.setgid = (st.st_mode & S_ISGID) != 0 && (st.st_mode & S_IXGRP) != 0;
  p.group = st.st_gid;
  // Only whether the attribute exists matters; ENODATA (none) and
  // ENOTSUP (a file system without xattrs) both mean no capabilities.
  p.file_capabilities = getxattr(path.c_str(), "security.capability", nullptr, 0) > 0;
  struct statvfs fs;
  p.nosuid_mount = statvfs(path.c_str(), &fs) == 0 && (fs.f_flag & ST_NOSUID) != 0;
  return p;
}

std::string PrivilegesLostUnderNoNewPrivs(const ExecPrivileges& p, uid_t euid,
                                          gid_t egid) {
  std::vector<std::string> lost;
  if (p.nosuid_mount) return "";
  if (p.setuid && p.owner != euid) {
    lost.push_back(absl::StrCat("is set-user-ID (owner uid ", p.owner, ")"));
  }
  if (p.setgid && p.group != egid) {
    lost.push_back(absl::StrCat("is set-group-ID (group gid ", p.group, ")"));
  }
  if (p.file_capabilities && euid != 0) lost.push_back("has file capabilities");
  return absl::StrJoin(lost, " and ");
}

}  // namespace fault::exec
