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
#endif
