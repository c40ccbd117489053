/**
 * @module
 * Linux ABI constants (x86_64; aarch64 shares every value used here but epoll_event's layout) for sockets, epoll,
 * fcntl, memfd and processes. Wire constants only: no behaviour.
 */

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;

export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_SEQPACKET = 5;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;

export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_TYPE = 3;
export const SO_ERROR = 4;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_PASSCRED = 16;
export const SO_PEERCRED = 17;
export const SO_ACCEPTCONN = 30;
export const SO_PROTOCOL = 38;
export const SO_DOMAIN = 39;
export const SCM_RIGHTS = 1;
export const SCM_CREDENTIALS = 2;

export const IPPROTO_TCP = 6;
export const IPPROTO_IPV6 = 41;
export const TCP_NODELAY = 1;
export const IPV6_V6ONLY = 26;

export const MSG_PEEK = 0x2;
export const MSG_CTRUNC = 0x8;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_CMSG_CLOEXEC = 0x40000000;

export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;

export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;
export const EPOLLRDHUP = 0x2000;
/** epoll_ctl(2): wake one of the epoll instances watching the fd, not all (EPOLL_CTL_ADD only). */
export const EPOLLEXCLUSIVE = 1 << 28;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
export const EPOLL_CLOEXEC = 0o2000000;

export const EFD_CLOEXEC = 0o2000000;
export const TFD_CLOEXEC = 0o2000000;
export const TFD_NONBLOCK = 0o4000;
export const CLOCK_MONOTONIC = 1;
export const EFD_NONBLOCK = 0o4000;

export const F_DUPFD_CLOEXEC = 1030;
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const FD_CLOEXEC = 1;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const F_ADD_SEALS = 1033;
export const F_GET_SEALS = 1034;
export const F_SEAL_SEAL = 1;
export const F_SEAL_SHRINK = 2;
export const F_SEAL_GROW = 4;
export const F_SEAL_WRITE = 8;
export const MFD_CLOEXEC = 1;
export const MFD_ALLOW_SEALING = 2;

export const RLIMIT_NOFILE = 7;

export const SYS_PIDFD_OPEN = 434;
/** kcmp(2): the one syscall number here that differs between x86_64 and aarch64. */
export const SYS_KCMP = Deno.build.arch === "x86_64" ? 312 : 272;
export const KCMP_FILE = 0;
export const O_ACCMODE = 3;
export const P_PIDFD = 3;
export const WEXITED = 4;
export const WNOHANG = 1;
export const CLD_EXITED = 1;
export const CLD_KILLED = 2;
export const CLD_DUMPED = 3;

export const POSIX_SPAWN_SETPGROUP = 2;
export const POSIX_SPAWN_SETSIGDEF = 4;
export const POSIX_SPAWN_SETSIGMASK = 8;

/** struct epoll_event is packed on x86_64 (u32 events, u64 data); naturally aligned elsewhere. */
export const EPOLL_EVENT_SIZE = Deno.build.arch === "x86_64" ? 12 : 16;
/** Where `data` starts inside struct epoll_event. */
export const EPOLL_DATA_OFFSET = Deno.build.arch === "x86_64" ? 4 : 8;
