// CVigilLinux: the C side of Vigil. Kernel headers Swift's Glibc module does not carry, macros turned
// into functions, and layout assertions for every structure Vigil reads straight from kernel bytes.
#ifndef CVIGILLINUX_H
#define CVIGILLINUX_H

#ifndef __linux__
#error "Vigil watches Linux kernel interfaces (inotify, netlink, PSI) and builds only on Linux."
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <linux/netlink.h>
#include <linux/connector.h>
#include <linux/cn_proc.h>
#include <sys/capability.h>
#include <zlib.h>
#include <hs/hs.h>

/// The name that follows a `struct inotify_event` (a flexible array member Swift cannot see).
/// Returns NULL when `len` is 0 (an event about the watched directory itself). See `man 7 inotify`.
static inline const char *CVigilLinux_inotify_event_name(const struct inotify_event *event) {
    return event->len > 0 ? event->name : (const char *)0;
}

/// `sizeof(struct inotify_event)`: the fixed header before the name.
static inline size_t CVigilLinux_inotify_event_size(void) { return sizeof(struct inotify_event); }

/// The largest single inotify record: header plus NAME_MAX + 1 bytes of name.
static inline size_t CVigilLinux_inotify_max_record(void) { return sizeof(struct inotify_event) + 256; }

/// `pthread_setname_np` for the calling thread (names show in `top -H` and /proc/PID/task/TID/comm).
int CVigilLinux_set_thread_name(const char *name);

/// `fcntl(fd, F_SETLEASE, type)`: `type` is F_RDLCK or F_UNLCK. Swift cannot call variadic `fcntl`.
int CVigilLinux_set_lease(int fd, int type);

/// `open(path, flags, mode)`: Swift cannot call the variadic `open` with a mode.
int CVigilLinux_open(const char *path, int flags, unsigned int mode);

/// Block every signal in the calling thread's mask except those that report faults, so that
/// the main thread alone receives SIGTERM/SIGINT/SIGHUP through a signalfd.
int CVigilLinux_block_signals(const int *signals, int count, sigset_t *out_set);

/// `pidfd_open(2)`: a descriptor that becomes readable when the process exits (-1 with errno before 5.3).
int CVigilLinux_pidfd_open(int pid);

/// `statfs(path)->f_type` (the filesystem's magic number, see `man 2 statfs`); -1 with errno on failure.
int CVigilLinux_filesystem_magic(const char *path, unsigned long *magic);

#endif
