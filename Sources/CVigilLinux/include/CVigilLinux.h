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
#include <spawn.h>
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
#include <sys/statfs.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <linux/netlink.h>
#include <linux/connector.h>
#include <linux/cn_proc.h>
#include <linux/sock_diag.h>
#include <linux/inet_diag.h>
#include <linux/genetlink.h>
#include <linux/taskstats.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/capability.h>
#include <zlib.h>
#include <hs/hs.h>
// PCRE2 for named groups of log lines that matched (cold path). The header is width-generic; Swift sees
// the 8-bit `_8` functions only when the width is fixed before the include.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
// libcurl's easy interface for webhook and Alertmanager delivery, and libcrypto's one-shot HMAC for webhook
// signatures (Debian: libcurl4-openssl-dev, libssl-dev).
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

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

// MARK: - Netlink and the process events connector (see `man 7 netlink`, linux/cn_proc.h)

/// `NLMSG_HDRLEN`: the aligned size of `struct nlmsghdr` (16).
static inline size_t CVigilLinux_nlmsg_hdrlen(void) { return NLMSG_HDRLEN; }

/// `NLMSG_ALIGN(length)`: rounds a message length up to the 4-byte netlink alignment.
static inline size_t CVigilLinux_nlmsg_align(size_t length) { return NLMSG_ALIGN(length); }

/// `NLMSG_OK(message, remaining)`: whether a whole message starts at `message` within `remaining` bytes.
static inline int CVigilLinux_nlmsg_ok(const struct nlmsghdr *message, int remaining) {
    return NLMSG_OK(message, remaining);
}

/// `NLMSG_NEXT(message, remaining)`: the message after `message`; subtracts its aligned length from `*remaining`.
static inline const struct nlmsghdr *CVigilLinux_nlmsg_next(const struct nlmsghdr *message, int *remaining) {
    int left = *remaining;
    const struct nlmsghdr *next = NLMSG_NEXT((struct nlmsghdr *)message, left);
    *remaining = left;
    return next;
}

/// `NLMSG_DATA(message)`: the payload after the header.
static inline const void *CVigilLinux_nlmsg_data(const struct nlmsghdr *message) {
    return NLMSG_DATA((struct nlmsghdr *)message);
}

/// `cn_msg.data`: the connector payload (a flexible array member Swift cannot see).
static inline const void *CVigilLinux_cn_msg_data(const struct cn_msg *message) { return message->data; }

/// `sizeof(struct cn_msg)`: the connector header before `data` (20).
static inline size_t CVigilLinux_cn_msg_size(void) { return sizeof(struct cn_msg); }

/// `sizeof(struct proc_event)` as these headers define it (40).
static inline size_t CVigilLinux_proc_event_size(void) { return sizeof(struct proc_event); }

/// Writes the message that subscribes a bound `NETLINK_CONNECTOR` socket to process events, or ends the
/// subscription: `nlmsghdr` (type `NLMSG_DONE`) + `cn_msg` (id `CN_IDX_PROC`/`CN_VAL_PROC`) + the
/// `enum proc_cn_mcast_op` (`PROC_CN_MCAST_LISTEN` or `PROC_CN_MCAST_IGNORE`). Returns the bytes written,
/// or 0 when `capacity` is too small. See linux/cn_proc.h and the kernel's drivers/connector/cn_proc.c.
size_t CVigilLinux_proc_cn_mcast_message(void *buffer, size_t capacity, uint32_t operation, uint32_t sequence);

// MARK: - Task statistics over generic netlink (see linux/taskstats.h, Documentation/accounting/taskstats.rst)

/// Writes a generic netlink `CTRL_CMD_GETFAMILY` request for the family `name` (e.g. "TASKSTATS"). Returns
/// the bytes written, or 0 when `capacity` is too small.
size_t CVigilLinux_genl_family_request(void *buffer, size_t capacity, const char *name, uint32_t sequence);

/// Reads the answer to a `CTRL_CMD_GETFAMILY` request: the family's id (> 0), `-errno` from an
/// `NLMSG_ERROR`, or 0 when the datagram holds neither (malformed or another message).
int CVigilLinux_genl_family_id(const void *buffer, size_t length);

/// Writes a `TASKSTATS_CMD_GET` request with `TASKSTATS_CMD_ATTR_REGISTER_CPUMASK` = `cpumask` (the
/// kernel's list form, "0-3"), asking for an acknowledgement (`NLM_F_ACK`). Once the kernel accepts it,
/// every task that exits on those CPUs is sent to this socket as a `TASKSTATS_CMD_NEW` message. Returns the
/// bytes written, or 0 when `capacity` is too small.
size_t CVigilLinux_taskstats_register_request(
    void *buffer, size_t capacity, uint16_t family, const char *cpumask, uint32_t sequence);

/// Reads a netlink acknowledgement: 0 for success, `-errno` for a refusal, 1 when the datagram holds no
/// `NLMSG_ERROR` message.
int CVigilLinux_netlink_ack(const void *buffer, size_t length);

/// What Vigil keeps of one exiting task's `struct taskstats` (fields the kernel's version lacks are 0).
typedef struct {
    uint32_t pid;          ///< the task (thread) id, in the initial pid namespace
    uint32_t tgid;         ///< its thread group (process) id; 0 before struct version 12
    uint32_t ppid;         ///< ac_ppid
    uint32_t uid;          ///< ac_uid (real uid)
    uint64_t exe_dev;      ///< ac_exe_dev (0 before version 12, and for a kernel thread)
    uint64_t exe_inode;    ///< ac_exe_inode
    char comm[TS_COMM_LEN];  ///< ac_comm, NUL-terminated
} CVigilTaskExit;

/// Reads the next per-task record (`TASKSTATS_TYPE_AGGR_PID`) of a taskstats datagram, from `*offset` (0
/// at first) and moves `*offset` past it. Returns 1 with `*out` filled, 0 at the end of the datagram, -1
/// for a malformed message (the rest of the datagram is skipped). Thread group totals
/// (`TASKSTATS_TYPE_AGGR_TGID`) and other messages are skipped. `family` is the TASKSTATS family's id.
int CVigilLinux_taskstats_next(
    const void *buffer, size_t length, uint16_t family, size_t *offset, CVigilTaskExit *out);

// MARK: - Socket diagnostics (see `man 7 sock_diag`, linux/inet_diag.h)

/// Writes a `SOCK_DIAG_BY_FAMILY` dump request (`NLM_F_REQUEST | NLM_F_DUMP`) for one address family and
/// protocol: `nlmsghdr` + `struct inet_diag_req_v2` with `idiag_states` = `states` (a bitmask of
/// `1 << TCP_*` states) and no extensions. Returns the bytes written, or 0 when `capacity` is too small.
size_t CVigilLinux_inet_diag_request(
    void *buffer, size_t capacity, uint8_t family, uint8_t protocol, uint32_t states, uint32_t sequence);

/// `sizeof(struct inet_diag_msg)`: one socket in a dump answer, before its attributes (72).
static inline size_t CVigilLinux_inet_diag_msg_size(void) { return sizeof(struct inet_diag_msg); }

/// `sizeof(struct nlmsgerr)`: the payload of an `NLMSG_ERROR` message (20 with the echoed header).
static inline size_t CVigilLinux_nlmsgerr_size(void) { return sizeof(struct nlmsgerr); }

/// `setsockopt(fd, level, name, &value, sizeof(int))`: returns 0, or -1 with errno.
int CVigilLinux_setsockopt_int(int fd, int level, int name, int value);

/// `getsockopt(fd, level, name, &value, &length)` for an int option: returns 0, or -1 with errno.
int CVigilLinux_getsockopt_int(int fd, int level, int name, int *value);

/// `posix_spawn_file_actions_addchdir_np(3)` (glibc 2.29): the child changes directory before exec.
/// Swift's Glibc module does not show it (it is a GNU extension).
int CVigilLinux_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);

/// `gettid(2)`: the calling thread's id (the kernel's `task->pid`; `process_pid` in process events).
int CVigilLinux_gettid(void);

/// `unshare(CLONE_NEWNET)`: moves the calling *thread* into a new network namespace (needs CAP_SYS_ADMIN).
/// Swift's Glibc module shows neither `unshare` nor the `CLONE_NEW*` flags. See `man 2 unshare`.
int CVigilLinux_unshare_network(void);

// MARK: - Rotation: renames that never replace, birth times, kernel-side copies

/// `renameat2(olddirfd, oldname, newdirfd, newname, RENAME_NOREPLACE)` (Linux 3.15): fails with EEXIST instead
/// of replacing `newname`, atomically (a check before a plain rename would race). -1 with errno: EXDEV
/// across filesystems, EINVAL where the filesystem lacks the flag. Called through syscall(2): glibc shows
/// its wrapper only under _GNU_SOURCE. See `man 2 rename`.
int CVigilLinux_rename_noreplace(int olddirfd, const char *oldname, int newdirfd, const char *newname);

/// `statx(dirfd, name, AT_SYMLINK_NOFOLLOW, STATX_BTIME)`: the file's birth (creation) time. Returns 1 with
/// `*seconds` and `*nanoseconds` set, 0 when the filesystem does not record it, -1 with errno. See `man 2 statx`.
int CVigilLinux_birth_time(int dirfd, const char *name, int64_t *seconds, uint32_t *nanoseconds);

/// `copy_file_range(in, NULL, out, NULL, length, 0)` (Linux 4.5): copies up to `length` bytes between the two
/// descriptors' file positions inside the kernel. Returns the bytes copied (0 at end of input), or -1 with
/// errno (EXDEV, EINVAL, ENOSYS, EOPNOTSUPP where it cannot: the caller falls back to read/write).
long CVigilLinux_copy_file_range(int in, int out, size_t length);

// MARK: - openat2 (see `man 2 openat2`; Linux 5.6, no glibc wrapper on Debian 12)

/// `openat2(dirfd, path, {flags, mode, resolve})`: -1 with errno on failure (ENOSYS before Linux 5.6; EXDEV
/// or ELOOP when the path leaves `dirfd` or crosses a symlink under RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS).
static inline int CVigilLinux_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = flags;
    how.mode = mode;
    how.resolve = resolve;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}
static inline uint64_t CVigilLinux_resolve_beneath(void) { return RESOLVE_BENEATH; }
/// `O_PATH` and `AT_EMPTY_PATH` are behind _GNU_SOURCE in glibc's headers: the kernel's values (the same on
/// x86_64 and arm64).
static inline int CVigilLinux_o_path(void) {
#ifdef O_PATH
    return O_PATH;
#else
    return 010000000;
#endif
}
static inline int CVigilLinux_at_empty_path(void) {
#ifdef AT_EMPTY_PATH
    return AT_EMPTY_PATH;
#else
    return 0x1000;
#endif
}
static inline uint64_t CVigilLinux_resolve_no_symlinks(void) { return RESOLVE_NO_SYMLINKS; }
static inline uint64_t CVigilLinux_resolve_no_magiclinks(void) { return RESOLVE_NO_MAGICLINKS; }

// MARK: - zlib and unnamed files (gzip rotation; see zlib.h and `man 2 open`)

/// `deflateInit2(stream, level, Z_DEFLATED, windowBits, memLevel, strategy)`. The zlib name is a macro that
/// passes `ZLIB_VERSION` and `sizeof(z_stream)` to `deflateInit2_`, which Swift cannot call. `windowBits`
/// 16 + 15 writes a gzip wrapper (RFC 1952) around a 32 KiB-window deflate stream.
int CVigilLinux_deflateInit2(z_streamp stream, int level, int windowBits, int memLevel, int strategy);

/// `O_TMPFILE` (glibc shows it only under _GNU_SOURCE): with `O_WRONLY`, `openat(dirfd, ".", …)` creates an
/// unnamed regular file in that directory, which `linkat` can give a name later (Linux 3.11).
int CVigilLinux_o_tmpfile(void);

// MARK: - PCRE2 (see `man 3 pcre2api`)

/// `PCRE2_UNSET`/`PCRE2_ZERO_TERMINATED` (`~(PCRE2_SIZE)0`): an ovector entry of a group that did not take part
/// in the match. Swift does not import the cast macro.
static inline size_t CVigilLinux_pcre2_unset(void) { return PCRE2_UNSET; }

/// `pcre2_compile_8(pattern, length, options, …)` with the default compile context. Returns NULL with
/// `*error_code` and `*error_offset` (a byte offset into `pattern`) set when the pattern is refused.
static inline pcre2_code_8 *CVigilLinux_pcre2_compile(
    const uint8_t *pattern, size_t length, uint32_t options, int *error_code, size_t *error_offset) {
    return pcre2_compile_8(pattern, length, options, error_code, error_offset, (pcre2_compile_context_8 *)0);
}

// MARK: - libcurl (see `man 3 libcurl-easy`, `man 3 curl_easy_setopt`)
//
// `curl_easy_setopt` and `curl_easy_getinfo` are variadic, which Swift cannot call: one typed wrapper per
// argument type. The option must take that type (curl reads the wrong width otherwise, silently).

/// `curl_global_init(CURL_GLOBAL_DEFAULT)`, once per process through `pthread_once`: curl's global init is
/// not thread-safe, and `curl_easy_init` would otherwise run it lazily on whichever thread comes first.
/// Returns its result (the first call's, on every later call).
CURLcode CVigilLinux_curl_global_init(void);

/// `curl_easy_setopt(handle, option, (long)value)` for options that take a `long` (flags, milliseconds).
CURLcode CVigilLinux_curl_setopt_long(CURL *handle, CURLoption option, long value);

/// `curl_easy_setopt(handle, option, (curl_off_t)value)` for the `_LARGE` options (`POSTFIELDSIZE_LARGE`).
CURLcode CVigilLinux_curl_setopt_off(CURL *handle, CURLoption option, int64_t value);

/// `curl_easy_setopt(handle, option, value)` for options that take a pointer curl keeps, not copies
/// (`POSTFIELDS`, `HTTPHEADER`, `ERRORBUFFER`): it must stay valid until the transfer ends.
CURLcode CVigilLinux_curl_setopt_ptr(CURL *handle, CURLoption option, const void *value);

/// `curl_easy_setopt(handle, option, value)` for string options curl copies (`URL`, `USERAGENT`,
/// `PROTOCOLS_STR`).
CURLcode CVigilLinux_curl_setopt_string(CURL *handle, CURLoption option, const char *value);

/// The body callback, `CURLOPT_WRITEFUNCTION`: returning less than `size * count` aborts the transfer.
typedef size_t (*CVigilLinux_curl_write_function)(char *data, size_t size, size_t count, void *context);

/// `curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback)` and `CURLOPT_WRITEDATA` = `context`.
CURLcode CVigilLinux_curl_setopt_write_callback(CURL *handle, CVigilLinux_curl_write_function callback, void *context);

/// `curl_easy_getinfo(handle, info, &long)` (`CURLINFO_RESPONSE_CODE`).
CURLcode CVigilLinux_curl_getinfo_long(CURL *handle, CURLINFO info, long *value);

/// `curl_easy_getinfo(handle, info, &char *)` (`CURLINFO_REDIRECT_URL`): the string belongs to the handle and
/// lives until its next transfer; NULL when there is none.
CURLcode CVigilLinux_curl_getinfo_string(CURL *handle, CURLINFO info, const char **value);

/// `CURL_ERROR_SIZE`: the size of the buffer `CURLOPT_ERRORBUFFER` takes (256).
static inline size_t CVigilLinux_curl_error_size(void) { return CURL_ERROR_SIZE; }

// MARK: - HMAC (see `man 3 HMAC`)

/// `HMAC(EVP_sha256(), key, key_length, message, length, out, &32)`: writes 32 bytes to `out`. Returns 1, or
/// 0 when libcrypto failed (a key longer than INT_MAX).
int CVigilLinux_hmac_sha256(const void *key, size_t key_length, const void *message, size_t length, uint8_t *out);

#endif
