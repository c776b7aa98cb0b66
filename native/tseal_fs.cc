// linkFd(fd, path): gives an anonymous O_TMPFILE file a name, so an output can be written where
// a crash leaves nothing behind (the kernel frees a nameless file with its last descriptor) and
// still appear complete, atomically, when it is done. Node has no linkat(); link() does not
// follow /proc/self/fd/N, so this is the one system call TensorSeal needs from C.
//
//   linkFd(fd, path) -> undefined; throws an Error whose code is the errno name (EEXIST, ENOENT,
//   EXDEV, ...) when linkat(2) fails. It never replaces an existing path (EEXIST).
#include <node_api.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

const char* ErrnoName(int err) {
  switch (err) {
    case EEXIST: return "EEXIST";
    case ENOENT: return "ENOENT";
    case EXDEV: return "EXDEV";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case EMLINK: return "EMLINK";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOTDIR: return "ENOTDIR";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    default: return "EIO";
  }
}

napi_value LinkFd(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  int32_t fd = -1;
  if (argc != 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, nullptr, "linkFd expects (fd, path)");
    return nullptr;
  }
  size_t length = 0;
  if (napi_get_value_string_utf8(env, argv[1], nullptr, 0, &length) != napi_ok ||
      length == 0 || length >= PATH_MAX) {
    napi_throw_type_error(env, nullptr, "linkFd expects a non-empty path");
    return nullptr;
  }
  std::string path(length, '\0');
  napi_get_value_string_utf8(env, argv[1], &path[0], length + 1, &length);
  if (std::strlen(path.c_str()) != length) {
    napi_throw_type_error(env, nullptr, "linkFd: the path contains a NUL byte");
    return nullptr;
  }
  char self[64];
  std::snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
  // AT_SYMLINK_FOLLOW through /proc works without privileges (AT_EMPTY_PATH would need
  // CAP_DAC_READ_SEARCH).
  if (linkat(AT_FDCWD, self, AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) != 0) {
    const int err = errno;
    char msg[96];
    std::snprintf(msg, sizeof msg, "linkat: %s", std::strerror(err));
    napi_throw_error(env, ErrnoName(err), msg);
    return nullptr;
  }
  return nullptr;
}

}  // namespace

napi_value TsealLinkFd(napi_env env, napi_callback_info info) { return LinkFd(env, info); }
