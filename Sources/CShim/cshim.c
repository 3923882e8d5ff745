#define _GNU_SOURCE
#include "cshim.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <stdio.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <netinet/udp.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define CSHIM_MAX_BATCH 64
/// Datagrams looked at per sendmmsg call (a GSO message carries up to CSHIM_GSO_MAX_SEGMENTS).
#define CSHIM_MAX_QUEUE 256
/// Every kernel with UDP_SEGMENT takes at least 64 segments per message (UDP_MAX_SEGMENTS).
#define CSHIM_GSO_MAX_SEGMENTS 64
/// What one UDP message may carry: 65535 less the largest IPv4 header and the UDP header.
#define CSHIM_GSO_MAX_BYTES (65535 - 60 - 8)

/// One control message: UDP_SEGMENT (uint16) on sends, UDP_GRO (int) on receives.
typedef union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
} cshim_control;

int cshim_recv_batch(int fd, cshim_dgram *d, unsigned n) {
    struct mmsghdr m[CSHIM_MAX_BATCH];
    struct iovec iov[CSHIM_MAX_BATCH];
    cshim_control ctl[CSHIM_MAX_BATCH];
    if (n > CSHIM_MAX_BATCH) n = CSHIM_MAX_BATCH;
    memset(m, 0, sizeof(*m) * n);
    for (unsigned i = 0; i < n; i++) {
        iov[i].iov_base = d[i].buf;
        iov[i].iov_len = d[i].cap;
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
        m[i].msg_hdr.msg_name = &d[i].addr;
        m[i].msg_hdr.msg_namelen = sizeof(d[i].addr);
        m[i].msg_hdr.msg_control = ctl[i].buf;
        m[i].msg_hdr.msg_controllen = sizeof(ctl[i].buf);
    }
    int r;
    do { r = recvmmsg(fd, m, n, MSG_DONTWAIT, NULL); } while (r < 0 && errno == EINTR);
    for (int i = 0; i < r; i++) {
        d[i].len = m[i].msg_len;
        d[i].addrlen = m[i].msg_hdr.msg_namelen;
        d[i].flags = m[i].msg_hdr.msg_flags;
        d[i].segment = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m[i].msg_hdr); c; c = CMSG_NXTHDR(&m[i].msg_hdr, c)) {
            if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
                int size;
                memcpy(&size, CMSG_DATA(c), sizeof size);
                d[i].segment = size;
            }
        }
    }
    return r;
}

static int same_destination(const cshim_dgram *a, const cshim_dgram *b) {
    return a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

/// How many datagrams from `d[0]` on (at most `n`) can go as one UDP_SEGMENT message.
static unsigned gso_run(const cshim_dgram *d, unsigned n) {
    size_t segment = d[0].len, total = segment;
    unsigned k = 1;
    if (segment == 0) return 1;
    while (k < n && k < CSHIM_GSO_MAX_SEGMENTS && same_destination(&d[0], &d[k])
           && d[k].len > 0 && d[k].len <= segment && total + d[k].len <= CSHIM_GSO_MAX_BYTES) {
        total += d[k].len;
        k++;
        if (d[k - 1].len < segment) break;   /* a shorter datagram ends the run */
    }
    return k;
}

void cshim_send_queue(int fd, const cshim_dgram *d, unsigned n, int gso, cshim_send_report *report) {
    memset(report, 0, sizeof *report);
    struct mmsghdr m[CSHIM_MAX_BATCH];
    struct iovec iov[CSHIM_MAX_QUEUE];
    cshim_control ctl[CSHIM_MAX_BATCH];
    unsigned first[CSHIM_MAX_BATCH], count[CSHIM_MAX_BATCH];
    unsigned i = 0;
    while (i < n) {
        /* Lay out messages for d[i...]: each one datagram, or a run of them with UDP_SEGMENT. */
        unsigned msgs = 0, j = i;
        while (j < n && msgs < CSHIM_MAX_BATCH && j - i < CSHIM_MAX_QUEUE) {
            unsigned room = CSHIM_MAX_QUEUE - (j - i);
            unsigned k = gso ? gso_run(&d[j], n - j < room ? n - j : room) : 1;
            struct msghdr *h = &m[msgs].msg_hdr;
            memset(&m[msgs], 0, sizeof m[msgs]);
            for (unsigned t = 0; t < k; t++) {
                iov[j - i + t].iov_base = d[j + t].buf;
                iov[j - i + t].iov_len = d[j + t].len;
            }
            h->msg_iov = &iov[j - i];
            h->msg_iovlen = k;
            h->msg_name = d[j].addrlen ? (void *)&d[j].addr : NULL;
            h->msg_namelen = d[j].addrlen;
            if (k > 1) {
                uint16_t segment = (uint16_t)d[j].len;
                memset(&ctl[msgs], 0, sizeof ctl[msgs]);
                h->msg_control = ctl[msgs].buf;
                h->msg_controllen = CMSG_SPACE(sizeof segment);
                struct cmsghdr *c = CMSG_FIRSTHDR(h);
                c->cmsg_level = SOL_UDP;
                c->cmsg_type = UDP_SEGMENT;
                c->cmsg_len = CMSG_LEN(sizeof segment);
                memcpy(CMSG_DATA(c), &segment, sizeof segment);
            }
            first[msgs] = j;
            count[msgs] = k;
            msgs++;
            j += k;
        }
        int r;
        do { r = sendmmsg(fd, m, msgs, MSG_DONTWAIT); } while (r < 0 && errno == EINTR);
        report->calls++;
        if (r > 0) {
            for (int t = 0; t < r; t++) {
                report->sent += count[t];
                if (count[t] > 1) report->gso_messages++;
            }
            i = first[r - 1] + count[r - 1];
            continue;
        }
        /* The first message failed (sendmmsg reports a later failure by sending fewer). */
        int e = r < 0 ? errno : EAGAIN;
        if (count[0] > 1 && (e == EIO || e == EINVAL || e == EMSGSIZE || e == EOPNOTSUPP || e == ENOPROTOOPT)) {
            /* No segmentation offload on this path: send the same datagrams one by one. */
            gso = 0;
            report->gso_refused = 1;
            continue;
        }
        report->last_errno = e;
        if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) {
            report->would_block += n - i;   /* the buffer is full: the rest would fail as well */
            return;
        }
        report->failed += count[0];
        i += count[0];
    }
}

int cshim_udp_gso_supported(int fd) {
    int size = 0;
    socklen_t len = sizeof size;
    return getsockopt(fd, SOL_UDP, UDP_SEGMENT, &size, &len) == 0;
}

int cshim_udp_enable_gro(int fd) {
    int on = 1;
    return setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on);
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
