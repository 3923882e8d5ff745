#ifndef CLAWCHAT_CSHIM_H
#define CLAWCHAT_CSHIM_H
// Socket calls that Swift's Glibc module cannot see because it is built without _GNU_SOURCE.
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/// One datagram of a batch: `buf`/`cap` in, `len`/`addr`/`addrlen` filled by a receive.
typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int flags; /* MSG_TRUNC when the datagram did not fit */
} cshim_dgram;

/// recvmmsg(MSG_DONTWAIT) into up to `n` datagrams. Returns the count, or -1 with errno set.
int cshim_recv_batch(int fd, cshim_dgram *d, unsigned n);
/// sendmmsg of up to `n` datagrams (each to its own addr). Returns how many were sent, or -1.
int cshim_send_batch(int fd, cshim_dgram *d, unsigned n);
/// Thread id of the caller, for asserting that loop-confined objects stay on their thread.
long cshim_gettid(void);

// File-system calls for the ClawFiles sandbox.
#include <dirent.h>

/// O_PATH and the renameat2 flags, which need _GNU_SOURCE to be seen.
extern const int cshim_O_PATH;
extern const unsigned cshim_RENAME_NOREPLACE;
extern const unsigned cshim_RENAME_EXCHANGE;
/// openat2(dirfd, path, {flags, mode, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS}): nothing outside
/// `dirfd` is reached, also through symlinks (without `beneath_only`, only magic links are refused). Returns the fd, or -1 with errno (ENOSYS where the
/// kernel lacks openat2, EXDEV when the path leads outside). Retries on EINTR and (a while) EAGAIN.
int cshim_openat2(int dirfd, const char *path, int flags, int mode, int beneath_only);
/// renameat2(2) through the system call. Returns 0, or -1 with errno.
int cshim_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned flags);
/// sync_file_range(SYNC_FILE_RANGE_WRITE): starts writeback of the range without waiting for it.
int cshim_sync_file_range_write(int fd, long long offset, long long nbytes);
/// The next entry's name of `dir`, or NULL at the end (errno 0) or on an error (errno set).
const char *cshim_readdir_name(DIR *dir);
#endif
