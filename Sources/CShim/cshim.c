#define _GNU_SOURCE
#include "cshim.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

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
