#define _GNU_SOURCE 1
#include "CVigilLinux.h"
#include <stdarg.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <sys/vfs.h>

// Layouts that Vigil decodes from kernel bytes (S5). A mismatch is a build error, not a wrong alert.
_Static_assert(sizeof(struct inotify_event) == 16, "struct inotify_event header is 16 bytes");
_Static_assert(offsetof(struct inotify_event, wd) == 0, "inotify_event.wd at 0");
_Static_assert(offsetof(struct inotify_event, mask) == 4, "inotify_event.mask at 4");
_Static_assert(offsetof(struct inotify_event, cookie) == 8, "inotify_event.cookie at 8");
_Static_assert(offsetof(struct inotify_event, len) == 12, "inotify_event.len at 12");
_Static_assert(sizeof(struct nlmsghdr) == 16, "struct nlmsghdr is 16 bytes");
_Static_assert(sizeof(struct cn_msg) == 20, "struct cn_msg header is 20 bytes");

int CVigilLinux_set_thread_name(const char *name) {
    char buffer[16];
    strncpy(buffer, name, sizeof(buffer) - 1);
    buffer[sizeof(buffer) - 1] = 0;
    return pthread_setname_np(pthread_self(), buffer);
}

int CVigilLinux_set_lease(int fd, int type) { return fcntl(fd, F_SETLEASE, type); }

int CVigilLinux_open(const char *path, int flags, unsigned int mode) { return open(path, flags, (mode_t)mode); }

int CVigilLinux_block_signals(const int *signals, int count, sigset_t *out_set) {
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < count; i++) sigaddset(&set, signals[i]);
    if (out_set) *out_set = set;
    return pthread_sigmask(SIG_BLOCK, &set, (sigset_t *)0);
}

int CVigilLinux_pidfd_open(int pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int CVigilLinux_filesystem_magic(const char *path, unsigned long *magic) {
    struct statfs info;
    if (statfs(path, &info) != 0) return -1;
    *magic = (unsigned long)info.f_type;
    return 0;
}
