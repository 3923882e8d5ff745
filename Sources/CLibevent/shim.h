// libevent's event-config.h defines _GNU_SOURCE; include the system headers first so that every
// Swift module sees the same fd_set (see shared/reference/swift-c-notes.md, pitfall 1).
#include <features.h>
#include <sys/types.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <sys/select.h>
#include <netdb.h>
#include <event2/event.h>
