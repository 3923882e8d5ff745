#define _GNU_SOURCE
#include "cshim.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <netinet/in.h>
#include <linux/errqueue.h>

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

int cshim_enable_recverr(int fd, int ipv6) {
    int on = 1;
    if (ipv6) return setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on);
    return setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
}

int cshim_drain_errqueue(int fd, int *err_out) {
    char data[64], control[512];
    struct sockaddr_storage from;
    struct iovec iov = { data, sizeof data };
    struct msghdr h;
    memset(&h, 0, sizeof h);
    h.msg_name = &from; h.msg_namelen = sizeof from;
    h.msg_iov = &iov; h.msg_iovlen = 1;
    h.msg_control = control; h.msg_controllen = sizeof control;
    ssize_t r = recvmsg(fd, &h, MSG_ERRQUEUE | MSG_DONTWAIT);
    if (r < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    *err_out = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c)) {
        if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
            (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
            struct sock_extended_err e;
            memcpy(&e, CMSG_DATA(c), sizeof e);
            *err_out = (int)e.ee_errno;
        }
    }
    return 1;
}

long cshim_gettid(void) { return (long)syscall(SYS_gettid); }
