#define _GNU_SOURCE
#include "cshim.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <stdio.h>
#include <linux/openat2.h>

#define CSHIM_MAX_BATCH 64

static unsigned fill(struct mmsghdr *m, struct iovec *iov, cshim_dgram *d, unsigned n, int for_recv) {
    if (n > CSHIM_MAX_BATCH) n = CSHIM_MAX_BATCH;
    memset(m, 0, sizeof(*m) * n);
    for (unsigned i = 0; i < n; i++) {
        iov[i].iov_base = d[i].buf;
        iov[i].iov_len = for_recv ? d[i].cap : d[i].len;
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
        m[i].msg_hdr.msg_name = &d[i].addr;
        m[i].msg_hdr.msg_namelen = for_recv ? sizeof(d[i].addr) : d[i].addrlen;
    }
    return n;
}

int cshim_recv_batch(int fd, cshim_dgram *d, unsigned n) {
    struct mmsghdr m[CSHIM_MAX_BATCH];
    struct iovec iov[CSHIM_MAX_BATCH];
    n = fill(m, iov, d, n, 1);
    int r;
    do { r = recvmmsg(fd, m, n, MSG_DONTWAIT, NULL); } while (r < 0 && errno == EINTR);
    for (int i = 0; i < r; i++) {
        d[i].len = m[i].msg_len;
        d[i].addrlen = m[i].msg_hdr.msg_namelen;
        d[i].flags = m[i].msg_hdr.msg_flags;
    }
    return r;
}

int cshim_send_batch(int fd, cshim_dgram *d, unsigned n) {
    struct mmsghdr m[CSHIM_MAX_BATCH];
    struct iovec iov[CSHIM_MAX_BATCH];
    n = fill(m, iov, d, n, 0);
    int r;
    do { r = sendmmsg(fd, m, n, MSG_DONTWAIT); } while (r < 0 && errno == EINTR);
    return r;
}

long cshim_gettid(void) { return (long)syscall(SYS_gettid); }

const int cshim_O_PATH = O_PATH;
const unsigned cshim_RENAME_NOREPLACE = RENAME_NOREPLACE;
const unsigned cshim_RENAME_EXCHANGE = RENAME_EXCHANGE;

int cshim_openat2(int dirfd, const char *path, int flags, int mode, int beneath_only) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(unsigned)flags;
    // The kernel refuses a mode unless the call can create a file.
    how.mode = ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) ? (uint64_t)mode : 0;
    how.resolve = RESOLVE_NO_MAGICLINKS | (beneath_only ? RESOLVE_BENEATH : 0);
    long r;
    // EAGAIN: the kernel asks for a retry when a rename raced with a ".." step (of a symlink's
    // target); bounded, so that a stream of renames cannot hold the loop.
    int tries = 0;
    do { r = syscall(SYS_openat2, dirfd, path, &how, sizeof how); }
    while (r < 0 && (errno == EINTR || (errno == EAGAIN && ++tries < 64)));
    return (int)r;
}

int cshim_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned flags) {
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
}

int cshim_sync_file_range_write(int fd, long long offset, long long nbytes) {
    int r;
    do { r = sync_file_range(fd, (off_t)offset, (off_t)nbytes, SYNC_FILE_RANGE_WRITE); } while (r < 0 && errno == EINTR);
    return r;
}

const char *cshim_readdir_name(DIR *dir) {
    errno = 0;
    struct dirent *e = readdir(dir);
    return e ? e->d_name : NULL;
}
