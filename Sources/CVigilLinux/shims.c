#define _GNU_SOURCE 1
#include "CVigilLinux.h"
#include <stdarg.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sched.h>
#include <stdio.h>
#include <limits.h>
#include <netinet/tcp.h>

// Layouts that Vigil decodes from kernel bytes (S5). A mismatch is a build error, not a wrong alert.
_Static_assert(sizeof(struct inotify_event) == 16, "struct inotify_event header is 16 bytes");
_Static_assert(offsetof(struct inotify_event, wd) == 0, "inotify_event.wd at 0");
_Static_assert(offsetof(struct inotify_event, mask) == 4, "inotify_event.mask at 4");
_Static_assert(offsetof(struct inotify_event, cookie) == 8, "inotify_event.cookie at 8");
_Static_assert(offsetof(struct inotify_event, len) == 12, "inotify_event.len at 12");
_Static_assert(sizeof(struct nlmsghdr) == 16, "struct nlmsghdr is 16 bytes");
_Static_assert(sizeof(struct cn_msg) == 20, "struct cn_msg header is 20 bytes");

// The process events connector (linux/cn_proc.h). VigilCore's ProcEventDecoder reads these offsets from
// raw bytes (it cannot import this module); each one it reads is pinned here. Offsets are from the start
// of `struct proc_event`, which follows `nlmsghdr` (16 bytes) and `cn_msg` (20 bytes) in a datagram.
_Static_assert(NLMSG_HDRLEN == 16, "NLMSG_HDRLEN is 16");
_Static_assert(offsetof(struct nlmsghdr, nlmsg_len) == 0, "nlmsghdr.nlmsg_len at 0");
_Static_assert(offsetof(struct nlmsghdr, nlmsg_type) == 4, "nlmsghdr.nlmsg_type at 4");
_Static_assert(offsetof(struct nlmsghdr, nlmsg_flags) == 6, "nlmsghdr.nlmsg_flags at 6");
_Static_assert(offsetof(struct nlmsghdr, nlmsg_seq) == 8, "nlmsghdr.nlmsg_seq at 8");
_Static_assert(offsetof(struct nlmsghdr, nlmsg_pid) == 12, "nlmsghdr.nlmsg_pid at 12");
_Static_assert(NLMSG_NOOP == 1 && NLMSG_ERROR == 2 && NLMSG_DONE == 3 && NLMSG_OVERRUN == 4, "nlmsg types");
_Static_assert(offsetof(struct cn_msg, id.idx) == 0, "cn_msg.id.idx at 0");
_Static_assert(offsetof(struct cn_msg, id.val) == 4, "cn_msg.id.val at 4");
_Static_assert(offsetof(struct cn_msg, seq) == 8, "cn_msg.seq at 8");
_Static_assert(offsetof(struct cn_msg, ack) == 12, "cn_msg.ack at 12");
_Static_assert(offsetof(struct cn_msg, len) == 16, "cn_msg.len at 16 (u16)");
_Static_assert(offsetof(struct cn_msg, flags) == 18, "cn_msg.flags at 18 (u16)");
_Static_assert(offsetof(struct cn_msg, data) == 20, "cn_msg.data at 20");
_Static_assert(CN_IDX_PROC == 1 && CN_VAL_PROC == 1, "CN_IDX_PROC/CN_VAL_PROC are 1/1");
_Static_assert(PROC_CN_MCAST_LISTEN == 1 && PROC_CN_MCAST_IGNORE == 2, "proc_cn_mcast_op values");
_Static_assert(sizeof(enum proc_cn_mcast_op) == 4, "proc_cn_mcast_op is 4 bytes");

_Static_assert(PROC_EVENT_NONE == 0x0, "PROC_EVENT_NONE");
_Static_assert(PROC_EVENT_FORK == 0x1, "PROC_EVENT_FORK");
_Static_assert(PROC_EVENT_EXEC == 0x2, "PROC_EVENT_EXEC");
_Static_assert(PROC_EVENT_UID == 0x4, "PROC_EVENT_UID");
_Static_assert(PROC_EVENT_GID == 0x40, "PROC_EVENT_GID");
_Static_assert(PROC_EVENT_SID == 0x80, "PROC_EVENT_SID");
_Static_assert(PROC_EVENT_PTRACE == 0x100, "PROC_EVENT_PTRACE");
_Static_assert(PROC_EVENT_COMM == 0x200, "PROC_EVENT_COMM");
_Static_assert(PROC_EVENT_COREDUMP == 0x40000000, "PROC_EVENT_COREDUMP");
_Static_assert(PROC_EVENT_EXIT == 0x80000000u, "PROC_EVENT_EXIT");

_Static_assert(sizeof(struct proc_event) == 40, "struct proc_event is 40 bytes");
_Static_assert(offsetof(struct proc_event, what) == 0, "proc_event.what at 0");
_Static_assert(sizeof(((struct proc_event *)0)->what) == 4, "proc_event.what is 4 bytes");
_Static_assert(offsetof(struct proc_event, cpu) == 4, "proc_event.cpu at 4");
_Static_assert(offsetof(struct proc_event, timestamp_ns) == 8, "proc_event.timestamp_ns at 8");
_Static_assert(offsetof(struct proc_event, event_data) == 16, "proc_event.event_data at 16");
_Static_assert(offsetof(struct proc_event, event_data.ack.err) == 16, "ack.err at 16");
_Static_assert(offsetof(struct proc_event, event_data.fork.parent_pid) == 16, "fork.parent_pid at 16");
_Static_assert(offsetof(struct proc_event, event_data.fork.parent_tgid) == 20, "fork.parent_tgid at 20");
_Static_assert(offsetof(struct proc_event, event_data.fork.child_pid) == 24, "fork.child_pid at 24");
_Static_assert(offsetof(struct proc_event, event_data.fork.child_tgid) == 28, "fork.child_tgid at 28");
_Static_assert(offsetof(struct proc_event, event_data.exec.process_pid) == 16, "exec.process_pid at 16");
_Static_assert(offsetof(struct proc_event, event_data.exec.process_tgid) == 20, "exec.process_tgid at 20");
_Static_assert(offsetof(struct proc_event, event_data.id.process_pid) == 16, "id.process_pid at 16");
_Static_assert(offsetof(struct proc_event, event_data.id.process_tgid) == 20, "id.process_tgid at 20");
_Static_assert(offsetof(struct proc_event, event_data.id.r.ruid) == 24, "id.r.ruid at 24");
_Static_assert(offsetof(struct proc_event, event_data.id.r.rgid) == 24, "id.r.rgid at 24");
_Static_assert(offsetof(struct proc_event, event_data.id.e.euid) == 28, "id.e.euid at 28");
_Static_assert(offsetof(struct proc_event, event_data.id.e.egid) == 28, "id.e.egid at 28");
_Static_assert(offsetof(struct proc_event, event_data.sid.process_pid) == 16, "sid.process_pid at 16");
_Static_assert(offsetof(struct proc_event, event_data.sid.process_tgid) == 20, "sid.process_tgid at 20");
_Static_assert(offsetof(struct proc_event, event_data.ptrace.process_pid) == 16, "ptrace.process_pid at 16");
_Static_assert(offsetof(struct proc_event, event_data.ptrace.process_tgid) == 20, "ptrace.process_tgid at 20");
_Static_assert(offsetof(struct proc_event, event_data.ptrace.tracer_pid) == 24, "ptrace.tracer_pid at 24");
_Static_assert(offsetof(struct proc_event, event_data.ptrace.tracer_tgid) == 28, "ptrace.tracer_tgid at 28");
_Static_assert(offsetof(struct proc_event, event_data.comm.process_pid) == 16, "comm.process_pid at 16");
_Static_assert(offsetof(struct proc_event, event_data.comm.process_tgid) == 20, "comm.process_tgid at 20");
_Static_assert(offsetof(struct proc_event, event_data.comm.comm) == 24, "comm.comm at 24");
_Static_assert(sizeof(((struct proc_event *)0)->event_data.comm.comm) == 16, "comm.comm is 16 bytes");
_Static_assert(offsetof(struct proc_event, event_data.coredump.process_pid) == 16, "coredump.process_pid at 16");
_Static_assert(offsetof(struct proc_event, event_data.coredump.process_tgid) == 20, "coredump.process_tgid at 20");
_Static_assert(offsetof(struct proc_event, event_data.coredump.parent_pid) == 24, "coredump.parent_pid at 24");
_Static_assert(offsetof(struct proc_event, event_data.coredump.parent_tgid) == 28, "coredump.parent_tgid at 28");
_Static_assert(offsetof(struct proc_event, event_data.exit.process_pid) == 16, "exit.process_pid at 16");
_Static_assert(offsetof(struct proc_event, event_data.exit.process_tgid) == 20, "exit.process_tgid at 20");
_Static_assert(offsetof(struct proc_event, event_data.exit.exit_code) == 24, "exit.exit_code at 24");
_Static_assert(offsetof(struct proc_event, event_data.exit.exit_signal) == 28, "exit.exit_signal at 28");
_Static_assert(offsetof(struct proc_event, event_data.exit.parent_pid) == 32, "exit.parent_pid at 32");
_Static_assert(offsetof(struct proc_event, event_data.exit.parent_tgid) == 36, "exit.parent_tgid at 36");

// Socket diagnostics (linux/inet_diag.h). SocketDiag reads `struct inet_diag_msg` from dump answers and
// `struct nlmsgerr` from error answers; each field it reads is pinned here.
_Static_assert(SOCK_DIAG_BY_FAMILY == 20, "SOCK_DIAG_BY_FAMILY is 20");
_Static_assert(TCP_CLOSE == 7 && TCP_LISTEN == 10, "TCP_CLOSE/TCP_LISTEN states (SocketDiag's state masks)");
_Static_assert(sizeof(struct inet_diag_req_v2) == 56, "struct inet_diag_req_v2 is 56 bytes");
_Static_assert(sizeof(struct inet_diag_sockid) == 48, "struct inet_diag_sockid is 48 bytes");
_Static_assert(sizeof(struct inet_diag_msg) == 72, "struct inet_diag_msg is 72 bytes");
_Static_assert(offsetof(struct inet_diag_msg, idiag_family) == 0, "inet_diag_msg.idiag_family at 0");
_Static_assert(offsetof(struct inet_diag_msg, idiag_state) == 1, "inet_diag_msg.idiag_state at 1");
_Static_assert(offsetof(struct inet_diag_msg, id.idiag_sport) == 4, "inet_diag_msg.id.idiag_sport at 4");
_Static_assert(offsetof(struct inet_diag_msg, id.idiag_dport) == 6, "inet_diag_msg.id.idiag_dport at 6");
_Static_assert(offsetof(struct inet_diag_msg, id.idiag_src) == 8, "inet_diag_msg.id.idiag_src at 8");
_Static_assert(sizeof(((struct inet_diag_msg *)0)->id.idiag_src) == 16, "idiag_src is 16 bytes");
_Static_assert(offsetof(struct inet_diag_msg, id.idiag_dst) == 24, "inet_diag_msg.id.idiag_dst at 24");
_Static_assert(offsetof(struct inet_diag_msg, idiag_uid) == 64, "inet_diag_msg.idiag_uid at 64");
_Static_assert(offsetof(struct inet_diag_msg, idiag_inode) == 68, "inet_diag_msg.idiag_inode at 68");
_Static_assert(sizeof(((struct inet_diag_msg *)0)->idiag_inode) == 4, "idiag_inode is 32 bits");
_Static_assert(offsetof(struct nlmsgerr, error) == 0, "nlmsgerr.error at 0");

size_t CVigilLinux_inet_diag_request(
    void *buffer, size_t capacity, uint8_t family, uint8_t protocol, uint32_t states, uint32_t sequence) {
    const size_t length = NLMSG_LENGTH(sizeof(struct inet_diag_req_v2));
    if (buffer == NULL || capacity < length) return 0;
    memset(buffer, 0, length);
    struct nlmsghdr *header = (struct nlmsghdr *)buffer;
    header->nlmsg_len = (uint32_t)length;
    header->nlmsg_type = SOCK_DIAG_BY_FAMILY;
    header->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    header->nlmsg_seq = sequence;
    header->nlmsg_pid = 0;
    struct inet_diag_req_v2 *request = (struct inet_diag_req_v2 *)NLMSG_DATA(header);
    request->sdiag_family = family;
    request->sdiag_protocol = protocol;
    request->idiag_ext = 0;
    request->idiag_states = states;
    // id left zero: with NLM_F_DUMP the kernel ignores it unless a bytecode filter is attached.
    return length;
}

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

int CVigilLinux_rename_noreplace(int olddirfd, const char *oldname, int newdirfd, const char *newname) {
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, olddirfd, oldname, newdirfd, newname, RENAME_NOREPLACE);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int CVigilLinux_birth_time(int dirfd, const char *name, int64_t *seconds, uint32_t *nanoseconds) {
    struct statx info;
    if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_STATX_SYNC_AS_STAT, STATX_BTIME, &info) != 0) return -1;
    if (!(info.stx_mask & STATX_BTIME)) return 0;
    *seconds = (int64_t)info.stx_btime.tv_sec;
    *nanoseconds = info.stx_btime.tv_nsec;
    return 1;
}

long CVigilLinux_copy_file_range(int in, int out, size_t length) {
    return (long)copy_file_range(in, (loff_t *)0, out, (loff_t *)0, length, 0);
}

size_t CVigilLinux_proc_cn_mcast_message(void *buffer, size_t capacity, uint32_t operation, uint32_t sequence) {
    const size_t length = NLMSG_LENGTH(sizeof(struct cn_msg) + sizeof(enum proc_cn_mcast_op));
    if (buffer == NULL || capacity < length) return 0;
    memset(buffer, 0, length);
    struct nlmsghdr *header = (struct nlmsghdr *)buffer;
    header->nlmsg_len = (uint32_t)length;
    header->nlmsg_type = NLMSG_DONE;  // the connector carries every message as one NLMSG_DONE
    header->nlmsg_flags = 0;
    header->nlmsg_seq = sequence;
    header->nlmsg_pid = 0;  // the kernel does not route by it; 0 lets it fill in our port id
    struct cn_msg *message = (struct cn_msg *)NLMSG_DATA(header);
    message->id.idx = CN_IDX_PROC;
    message->id.val = CN_VAL_PROC;
    message->seq = sequence;
    message->ack = 0;
    message->len = (uint16_t)sizeof(enum proc_cn_mcast_op);
    enum proc_cn_mcast_op op = (enum proc_cn_mcast_op)operation;
    memcpy(message->data, &op, sizeof(op));
    return length;
}

int CVigilLinux_setsockopt_int(int fd, int level, int name, int value) {
    return setsockopt(fd, level, name, &value, (socklen_t)sizeof(value));
}

int CVigilLinux_getsockopt_int(int fd, int level, int name, int *value) {
    socklen_t length = (socklen_t)sizeof(*value);
    return getsockopt(fd, level, name, value, &length);
}

int CVigilLinux_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

int CVigilLinux_gettid(void) { return (int)syscall(SYS_gettid); }

int CVigilLinux_unshare_network(void) { return unshare(CLONE_NEWNET); }

int CVigilLinux_deflateInit2(z_streamp stream, int level, int windowBits, int memLevel, int strategy) {
    return deflateInit2(stream, level, Z_DEFLATED, windowBits, memLevel, strategy);
}

int CVigilLinux_o_tmpfile(void) { return O_TMPFILE; }

// libcurl: curl_global_init once per process, and typed setopt/getinfo (see CVigilLinux.h).
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_OK;

static void curl_init_once(void) { curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT); }

CURLcode CVigilLinux_curl_global_init(void) {
    pthread_once(&curl_once, curl_init_once);
    return curl_init_result;
}

CURLcode CVigilLinux_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode CVigilLinux_curl_setopt_off(CURL *handle, CURLoption option, int64_t value) {
    return curl_easy_setopt(handle, option, (curl_off_t)value);
}

CURLcode CVigilLinux_curl_setopt_ptr(CURL *handle, CURLoption option, const void *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode CVigilLinux_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode CVigilLinux_curl_setopt_write_callback(CURL *handle, CVigilLinux_curl_write_function callback, void *context) {
    CURLcode result = curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback);
    if (result != CURLE_OK) return result;
    return curl_easy_setopt(handle, CURLOPT_WRITEDATA, context);
}

CURLcode CVigilLinux_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode CVigilLinux_curl_getinfo_string(CURL *handle, CURLINFO info, const char **value) {
    char *text = NULL;
    CURLcode result = curl_easy_getinfo(handle, info, &text);
    *value = text;
    return result;
}

int CVigilLinux_hmac_sha256(const void *key, size_t key_length, const void *message, size_t length, uint8_t *out) {
    if (key_length > INT_MAX) return 0;
    unsigned int written = 0;
    // A NULL key with length 0 is an empty key; libcrypto wants a non-NULL pointer for it.
    static const unsigned char empty = 0;
    const void *k = key_length > 0 ? key : &empty;
    const unsigned char *m = length > 0 ? (const unsigned char *)message : &empty;
    if (HMAC(EVP_sha256(), k, (int)key_length, m, length, out, &written) == NULL) return 0;
    return written == 32 ? 1 : 0;
}

// MARK: - Task statistics over generic netlink

/// Appends one netlink attribute at `*used` (aligned); false when it does not fit.
static int vigil_put_attr(void *buffer, size_t capacity, size_t *used, uint16_t type, const void *data, size_t size) {
    const size_t length = NLA_HDRLEN + size;
    if (*used + NLA_ALIGN(length) > capacity) return 0;
    struct nlattr *attr = (struct nlattr *)((char *)buffer + *used);
    attr->nla_len = (uint16_t)length;
    attr->nla_type = type;
    memcpy((char *)attr + NLA_HDRLEN, data, size);
    memset((char *)attr + length, 0, NLA_ALIGN(length) - length);
    *used += NLA_ALIGN(length);
    return 1;
}

/// Writes nlmsghdr + genlmsghdr + one string attribute.
static size_t vigil_genl_request(
    void *buffer, size_t capacity, uint16_t type, uint16_t flags, uint8_t command, uint16_t attribute,
    const char *text, uint32_t sequence) {
    const size_t header = NLMSG_HDRLEN + GENL_HDRLEN;
    if (buffer == NULL || text == NULL || capacity < header) return 0;
    memset(buffer, 0, header);
    size_t used = header;
    if (!vigil_put_attr(buffer, capacity, &used, attribute, text, strlen(text) + 1)) return 0;
    struct nlmsghdr *message = (struct nlmsghdr *)buffer;
    message->nlmsg_len = (uint32_t)used;
    message->nlmsg_type = type;
    message->nlmsg_flags = flags;
    message->nlmsg_seq = sequence;
    message->nlmsg_pid = 0;
    struct genlmsghdr *genl = (struct genlmsghdr *)NLMSG_DATA(message);
    genl->cmd = command;
    genl->version = 1;
    return used;
}

size_t CVigilLinux_genl_family_request(void *buffer, size_t capacity, const char *name, uint32_t sequence) {
    return vigil_genl_request(
        buffer, capacity, GENL_ID_CTRL, NLM_F_REQUEST, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_NAME, name, sequence);
}

size_t CVigilLinux_taskstats_register_request(
    void *buffer, size_t capacity, uint16_t family, const char *cpumask, uint32_t sequence) {
    return vigil_genl_request(
        buffer, capacity, family, NLM_F_REQUEST | NLM_F_ACK, TASKSTATS_CMD_GET, TASKSTATS_CMD_ATTR_REGISTER_CPUMASK,
        cpumask, sequence);
}

/// The error code of an `NLMSG_ERROR` message: 0 (an acknowledgement) or -errno; 1 when it is cut short.
static int vigil_nlmsg_error(const struct nlmsghdr *message) {
    if (message->nlmsg_len < NLMSG_LENGTH(sizeof(int))) return 1;
    int error;
    memcpy(&error, NLMSG_DATA(message), sizeof(error));
    return error;
}

int CVigilLinux_netlink_ack(const void *buffer, size_t length) {
    const struct nlmsghdr *message = (const struct nlmsghdr *)buffer;
    int remaining = (int)length;
    for (; NLMSG_OK(message, remaining); message = NLMSG_NEXT(message, remaining)) {
        if (message->nlmsg_type == NLMSG_ERROR) return vigil_nlmsg_error(message);
    }
    return 1;
}

int CVigilLinux_genl_family_id(const void *buffer, size_t length) {
    const struct nlmsghdr *message = (const struct nlmsghdr *)buffer;
    int remaining = (int)length;
    for (; NLMSG_OK(message, remaining); message = NLMSG_NEXT(message, remaining)) {
        if (message->nlmsg_type == NLMSG_ERROR) {
            const int error = vigil_nlmsg_error(message);
            return error < 0 ? error : 0;
        }
        if (message->nlmsg_type != GENL_ID_CTRL || message->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN)) continue;
        const char *attributes = (const char *)NLMSG_DATA(message) + GENL_HDRLEN;
        size_t left = message->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
        while (left >= NLA_HDRLEN) {
            struct nlattr attr;
            memcpy(&attr, attributes, sizeof(attr));
            if (attr.nla_len < NLA_HDRLEN || attr.nla_len > left) break;
            if ((attr.nla_type & NLA_TYPE_MASK) == CTRL_ATTR_FAMILY_ID && attr.nla_len >= NLA_HDRLEN + 2) {
                uint16_t id;
                memcpy(&id, attributes + NLA_HDRLEN, sizeof(id));
                return id;
            }
            size_t step = NLA_ALIGN(attr.nla_len);
            if (step > left) break;
            attributes += step;
            left -= step;
        }
    }
    return 0;
}

/// Copies `field` of a `struct taskstats` of `size` bytes when the kernel's version has it.
#define VIGIL_TS_FIELD(stats, size, field, out)                                           \
    do {                                                                                  \
        if ((size) >= offsetof(struct taskstats, field) + sizeof(((struct taskstats *)0)->field)) \
            memcpy(&(out), (const char *)(stats) + offsetof(struct taskstats, field),     \
                   sizeof(((struct taskstats *)0)->field));                               \
    } while (0)

/// Fills `out` from one `TASKSTATS_TYPE_AGGR_PID` nest (`data`, `size` bytes); 1 when it held stats.
static int vigil_taskstats_nest(const char *data, size_t size, CVigilTaskExit *out) {
    memset(out, 0, sizeof(*out));
    int haveStats = 0;
    while (size >= NLA_HDRLEN) {
        struct nlattr attr;
        memcpy(&attr, data, sizeof(attr));
        if (attr.nla_len < NLA_HDRLEN || attr.nla_len > size) return -1;
        const char *payload = data + NLA_HDRLEN;
        const size_t payloadSize = attr.nla_len - NLA_HDRLEN;
        switch (attr.nla_type & NLA_TYPE_MASK) {
        case TASKSTATS_TYPE_PID:
            if (payloadSize >= sizeof(uint32_t)) memcpy(&out->pid, payload, sizeof(uint32_t));
            break;
        case TASKSTATS_TYPE_STATS: {
            uint32_t pid = 0;
            VIGIL_TS_FIELD(payload, payloadSize, ac_pid, pid);
            VIGIL_TS_FIELD(payload, payloadSize, ac_tgid, out->tgid);
            VIGIL_TS_FIELD(payload, payloadSize, ac_ppid, out->ppid);
            VIGIL_TS_FIELD(payload, payloadSize, ac_uid, out->uid);
            VIGIL_TS_FIELD(payload, payloadSize, ac_exe_dev, out->exe_dev);
            VIGIL_TS_FIELD(payload, payloadSize, ac_exe_inode, out->exe_inode);
            if (payloadSize >= offsetof(struct taskstats, ac_comm) + TS_COMM_LEN) {
                memcpy(out->comm, payload + offsetof(struct taskstats, ac_comm), TS_COMM_LEN);
            }
            out->comm[TS_COMM_LEN - 1] = 0;
            if (out->pid == 0) out->pid = pid;
            haveStats = 1;
            break;
        }
        default:
            break;
        }
        size_t step = NLA_ALIGN(attr.nla_len);
        if (step >= size) break;
        data += step;
        size -= step;
    }
    return haveStats;
}

int CVigilLinux_taskstats_next(
    const void *buffer, size_t length, uint16_t family, size_t *offset, CVigilTaskExit *out) {
    // *offset walks the datagram's attribute stream: messages, then the attributes inside each.
    const char *base = (const char *)buffer;
    while (*offset + NLMSG_HDRLEN <= length) {
        struct nlmsghdr message;
        memcpy(&message, base + *offset, sizeof(message));
        if (message.nlmsg_len < NLMSG_HDRLEN || *offset + message.nlmsg_len > length) {
            *offset = length;
            return -1;
        }
        const size_t end = *offset + message.nlmsg_len;
        const size_t next = *offset + NLMSG_ALIGN(message.nlmsg_len);
        if (message.nlmsg_type != family || message.nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN)) {
            *offset = next;
            continue;
        }
        const char *attributes = base + *offset + NLMSG_LENGTH(GENL_HDRLEN);
        size_t left = end - (*offset + NLMSG_LENGTH(GENL_HDRLEN));
        int found = 0;
        while (left >= NLA_HDRLEN) {
            struct nlattr attr;
            memcpy(&attr, attributes, sizeof(attr));
            if (attr.nla_len < NLA_HDRLEN || attr.nla_len > left) {
                *offset = length;
                return -1;
            }
            if ((attr.nla_type & NLA_TYPE_MASK) == TASKSTATS_TYPE_AGGR_PID) {
                int filled = vigil_taskstats_nest(attributes + NLA_HDRLEN, attr.nla_len - NLA_HDRLEN, out);
                if (filled < 0) {
                    *offset = length;
                    return -1;
                }
                found = filled;
            }
            size_t step = NLA_ALIGN(attr.nla_len);
            if (step >= left) break;
            attributes += step;
            left -= step;
        }
        *offset = next;
        if (found) return 1;
    }
    return 0;
}
