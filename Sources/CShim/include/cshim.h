#ifndef CLAWCHAT_CSHIM_H
#define CLAWCHAT_CSHIM_H
// Socket calls that Swift's Glibc module cannot see because it is built without _GNU_SOURCE.
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/// One datagram of a batch: `buf`/`cap` in, `len`/`addr`/`addrlen` filled by a receive. For a
/// send, `addrlen` 0 means the connected peer.
typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int flags; /* MSG_TRUNC when the datagram did not fit */
    /* Receive with UDP_GRO on: the kernel coalesced datagrams of this size into `buf` (the last
       may be shorter); 0 when `buf` holds one datagram. */
    int segment;
} cshim_dgram;

/// recvmmsg(MSG_DONTWAIT) into up to `n` datagrams. Returns the count, or -1 with errno set.
int cshim_recv_batch(int fd, cshim_dgram *d, unsigned n);
/// What `cshim_send_queue` did, in datagrams (a GSO message counts as its segments).
typedef struct {
    unsigned sent;
    /// Dropped because the socket buffer was full (EAGAIN, ENOBUFS): the rest of the queue.
    unsigned would_block;
    /// Dropped because the kernel refused them (no route, ICMP error, ...).
    unsigned failed;
    /// errno of the last drop, 0 if none.
    int last_errno;
    /// sendmmsg calls made, and messages that carried several datagrams as one UDP_SEGMENT send.
    unsigned calls;
    unsigned gso_messages;
    /// The kernel refused UDP_SEGMENT (EIO, EINVAL, ...); the datagrams went without it, and the
    /// caller should not ask again on this socket.
    int gso_refused;
} cshim_send_report;

/// Sends `d[0..<n]` in order with as few sendmmsg calls as it can. With `gso`, each run of
/// consecutive datagrams to the same address with the same length (the run's last may be
/// shorter) goes as one message with a UDP_SEGMENT control message: the kernel cuts it into the
/// same datagrams again (at most 64 of them and 64 KB). Never blocks.
void cshim_send_queue(int fd, const cshim_dgram *d, unsigned n, int gso, cshim_send_report *report);
/// Whether the kernel knows UDP_SEGMENT on this socket (Linux 4.18 and later).
int cshim_udp_gso_supported(int fd);
/// Asks for UDP_GRO (Linux 5.0 and later): coalesced datagrams then arrive as one buffer with
/// their size in `segment`. Returns 0, or -1 with errno.
int cshim_udp_enable_gro(int fd);
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
