//! The seccomp rule list: system calls a script has no business making. Default allow, `EPERM` for
//! the list, `clone` with any namespace flag → `EPERM`, `personality` with anything but the
//! default persona (or the query) → `EPERM`, `clone3` and the io_uring calls → `ENOSYS` (clone3's
//! flags live in memory a BPF filter cannot read, so libc is made to fall back to `clone`, which
//! can be checked; io_uring submits operations the filter never sees, and runtimes that probe for
//! it, libuv, tokio-uring, Java's, fall back to epoll on `ENOSYS`), and `socket` of a family other
//! than `AF_UNIX`, `AF_INET`, `AF_INET6` and route netlink → `EAFNOSUPPORT`, what a kernel built
//! without the family answers. Built as separate filters because seccompiler gives one filter a
//! single match action; the kernel runs all and takes the stricter answer. On x86_64 a last,
//! six-instruction filter answers every x32-ABI call (number | 0x4000_0000) with `ENOSYS`: those
//! arrive with the x86_64 audit arch, so the exact-number rules above would not see an x32
//! `mount`. seccompiler matches exact numbers only, hence the hand-written range check (the same
//! one Docker's default profile has).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

/// System calls answered with `EPERM`, by name (for reports) and number.
pub const DENIED_SYSCALLS: &[(&str, libc::c_long)] = &[
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("reboot", libc::SYS_reboot),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("quotactl", libc::SYS_quotactl),
    ("quotactl_fd", libc::SYS_quotactl_fd),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("clock_settime", libc::SYS_clock_settime),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("settimeofday", libc::SYS_settimeofday),
    ("adjtimex", libc::SYS_adjtimex),
    ("fsopen", libc::SYS_fsopen),
    ("fsmount", libc::SYS_fsmount),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
];

/// System calls answered with `ENOSYS`, as if this kernel did not have them, so callers take
/// their fallback path.
pub const NOSYS_SYSCALLS: &[(&str, libc::c_long)] = &[
    ("clone3", libc::SYS_clone3),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
];

/// `personality` arguments that are allowed: `PER_LINUX` and the query `0xffffffff`. Anything
/// else (`ADDR_NO_RANDOMIZE`, `READ_IMPLIES_EXEC`, other ABIs) is `EPERM`.
pub const ALLOWED_PERSONAS: &[u32] = &[0, 0xffff_ffff];

/// Socket families a script may create. Every other family is `EAFNOSUPPORT`: `AF_VSOCK`
/// reaches the hypervisor's host whatever the network namespace, `AF_PACKET`, `AF_ALG`,
/// `AF_BLUETOOTH`, `AF_KEY` and the like are kernel attack surface no script needs.
pub const ALLOWED_SOCKET_FAMILIES: &[(&str, libc::c_int)] = &[
    ("AF_UNIX", libc::AF_UNIX),
    ("AF_INET", libc::AF_INET),
    ("AF_INET6", libc::AF_INET6),
    ("AF_NETLINK", libc::AF_NETLINK),
];

/// The one netlink protocol allowed, `NETLINK_ROUTE`: glibc's `getifaddrs` (Node's
/// `os.networkInterfaces()`, Python's `socket.if_nameindex()`) and `getaddrinfo` with
/// `AI_ADDRCONFIG`, and Go's `net.Interfaces()` read the interface list through it. It only sees
/// the sandbox's own network namespace (just `lo` by default), and without `CAP_NET_ADMIN`
/// cannot change it. Other netlink protocols (audit, uevents, netfilter, …) are denied.
pub const ALLOWED_NETLINK_PROTOCOL: libc::c_int = libc::NETLINK_ROUTE;

/// `clone` flags that create namespaces; `clone` with any of them is denied.
pub const NAMESPACE_CLONE_FLAGS: &[(&str, libc::c_int)] = &[
    ("CLONE_NEWUSER", libc::CLONE_NEWUSER),
    ("CLONE_NEWNS", libc::CLONE_NEWNS),
    ("CLONE_NEWPID", libc::CLONE_NEWPID),
    ("CLONE_NEWNET", libc::CLONE_NEWNET),
    ("CLONE_NEWIPC", libc::CLONE_NEWIPC),
    ("CLONE_NEWUTS", libc::CLONE_NEWUTS),
    ("CLONE_NEWCGROUP", libc::CLONE_NEWCGROUP),
];

/// Why the filter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SeccompBuildError {
    /// This architecture is not one seccompiler supports.
    #[error("seccomp is not supported on architecture {arch}")]
    Arch {
        /// `std::env::consts::ARCH`.
        arch: &'static str,
        /// Why.
        #[source]
        source: seccompiler::BackendError,
    },
    /// seccompiler refused the rules.
    #[error("cannot compile the seccomp filter")]
    Compile(#[source] seccompiler::BackendError),
}

/// Compiles the filters for the host architecture, in the order to install them.
pub fn build_filters() -> Result<Vec<BpfProgram>, SeccompBuildError> {
    let arch = std::env::consts::ARCH;
    let target: TargetArch = arch
        .try_into()
        .map_err(|source| SeccompBuildError::Arch { arch, source })?;
    let eperm = SeccompAction::Errno(libc::EPERM as u32);

    let mut denied: BTreeMap<i64, Vec<SeccompRule>> = DENIED_SYSCALLS
        .iter()
        .map(|&(_, nr)| (nr, Vec::new()))
        .collect();
    // One rule per flag: rules are OR'ed, so any namespace bit set in arg 0 matches.
    let mut clone_rules = Vec::new();
    for &(_, flag) in NAMESPACE_CLONE_FLAGS {
        let flag = u64::from(flag.unsigned_abs());
        let cond = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag),
            flag,
        )
        .map_err(SeccompBuildError::Compile)?;
        clone_rules.push(SeccompRule::new(vec![cond]).map_err(SeccompBuildError::Compile)?);
    }
    denied.insert(libc::SYS_clone, clone_rules);
    // One rule with one `!=` per allowed persona: conditions are AND'ed, so only an argument
    // equal to none of them matches.
    let persona_conds = ALLOWED_PERSONAS
        .iter()
        .map(|&p| dword_cond(0, SeccompCmpOp::Ne, u64::from(p)))
        .collect::<Result<Vec<_>, _>>()?;
    denied.insert(
        libc::SYS_personality,
        vec![SeccompRule::new(persona_conds).map_err(SeccompBuildError::Compile)?],
    );
    let deny = SeccompFilter::new(denied, SeccompAction::Allow, eperm, target)
        .map_err(SeccompBuildError::Compile)?;

    let nosys_rules: BTreeMap<i64, Vec<SeccompRule>> = NOSYS_SYSCALLS
        .iter()
        .map(|&(_, nr)| (nr, Vec::new()))
        .collect();
    let nosys = SeccompFilter::new(
        nosys_rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        target,
    )
    .map_err(SeccompBuildError::Compile)?;

    let sockets = SeccompFilter::new(
        [(libc::SYS_socket, socket_rules()?)].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EAFNOSUPPORT as u32),
        target,
    )
    .map_err(SeccompBuildError::Compile)?;

    let mut programs = Vec::new();
    for filter in [deny, nosys, sockets] {
        programs.push(BpfProgram::try_from(filter).map_err(SeccompBuildError::Compile)?);
    }
    if target == TargetArch::x86_64 {
        programs.push(no_x32_program(libc::ENOSYS as u32));
    }
    Ok(programs)
}

/// A condition on the low 32 bits of argument `arg` (an `int` in the C prototype: the upper half
/// of the register is not guaranteed to be zero).
fn dword_cond(
    arg: u8,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompCondition, SeccompBuildError> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)
        .map_err(SeccompBuildError::Compile)
}

/// `socket(domain, type, protocol)` rules that match what is refused: a domain that is none of
/// the allowed families, or netlink with a protocol other than route.
fn socket_rules() -> Result<Vec<SeccompRule>, SeccompBuildError> {
    let other_family = ALLOWED_SOCKET_FAMILIES
        .iter()
        .map(|&(_, family)| dword_cond(0, SeccompCmpOp::Ne, u64::from(family.unsigned_abs())))
        .collect::<Result<Vec<_>, _>>()?;
    let other_netlink = vec![
        dword_cond(
            0,
            SeccompCmpOp::Eq,
            u64::from(libc::AF_NETLINK.unsigned_abs()),
        )?,
        dword_cond(
            2,
            SeccompCmpOp::Ne,
            u64::from(ALLOWED_NETLINK_PROTOCOL.unsigned_abs()),
        )?,
    ];
    [other_family, other_netlink]
        .into_iter()
        .map(|conds| SeccompRule::new(conds).map_err(SeccompBuildError::Compile))
        .collect()
}

/// `__X32_SYSCALL_BIT`: x32 system call numbers are the x86_64 ones with this bit set.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// `AUDIT_ARCH_X86_64`.
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;

/// x86_64 calls numbered at or above [`X32_SYSCALL_BIT`] → `errno`; everything else → allow
/// (other architectures are killed by the arch check of the main filter).
fn no_x32_program(errno: u32) -> BpfProgram {
    let stmt = |code: u32, k: u32| sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |code: u32, k: u32, jt: u8, jf: u8| sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    // Offsets into `struct seccomp_data`: nr at 0, arch at 4.
    vec![
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 4),
        jump(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            AUDIT_ARCH_X86_64,
            0,
            3,
        ),
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        jump(
            libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K,
            X32_SYSCALL_BIT,
            0,
            1,
        ),
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | (errno & libc::SECCOMP_RET_DATA),
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile_for_the_host_arch() {
        let programs = build_filters().unwrap();
        let x32 = usize::from(std::env::consts::ARCH == "x86_64");
        assert_eq!(programs.len(), 3 + x32);
        // Arch check + one jump per syscall at least: an empty list would be far shorter.
        assert!(programs[0].len() > DENIED_SYSCALLS.len() + NAMESPACE_CLONE_FLAGS.len());
        assert!(!programs[1].is_empty());
        assert!(!programs[2].is_empty());
    }

    /// Runs the x32 filter for real on a thread of its own (seccomp filters are per thread), with
    /// a distinctive errno: this kernel, like most, has no x32 ABI and answers ENOSYS itself, so
    /// only a different answer proves the filter matched.
    #[test]
    #[allow(unsafe_code)]
    fn the_x32_filter_answers_x32_numbers_and_lets_the_rest_through() {
        if std::env::consts::ARCH != "x86_64" {
            return;
        }
        let marker = libc::EHWPOISON;
        let (x32, native) = std::thread::spawn(move || {
            nix::sys::prctl::set_no_new_privs().unwrap();
            seccompiler::apply_filter(&no_x32_program(marker as u32)).unwrap();
            // SAFETY: getpid takes no arguments and has no side effects, in either ABI.
            let x32 =
                unsafe { libc::syscall(libc::c_long::from(X32_SYSCALL_BIT) | libc::SYS_getpid) };
            let x32_errno = nix::errno::Errno::last_raw();
            // SAFETY: as above.
            let native = unsafe { libc::syscall(libc::SYS_getpid) };
            ((x32, x32_errno), native)
        })
        .join()
        .unwrap();
        assert_eq!(
            x32,
            (-1, marker),
            "the x32 getpid was not answered by the filter"
        );
        assert_eq!(native, i64::from(std::process::id() as i32));
    }

    #[test]
    fn the_list_holds_what_the_design_names() {
        let names: Vec<&str> = DENIED_SYSCALLS.iter().map(|(n, _)| *n).collect();
        for must in [
            "mount",
            "umount2",
            "pivot_root",
            "unshare",
            "setns",
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "bpf",
            "perf_event_open",
            "keyctl",
            "add_key",
            "request_key",
            "kexec_load",
            "kexec_file_load",
            "init_module",
            "finit_module",
            "delete_module",
            "reboot",
            "swapon",
            "swapoff",
            "open_by_handle_at",
            "userfaultfd",
            "clock_settime",
            "clock_adjtime",
            "settimeofday",
            "adjtimex",
            "name_to_handle_at",
            "quotactl",
        ] {
            assert!(names.contains(&must), "{must} missing from the deny list");
        }
        let mut numbers: Vec<_> = DENIED_SYSCALLS.iter().map(|(_, nr)| *nr).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(
            numbers.len(),
            DENIED_SYSCALLS.len(),
            "duplicate syscall numbers"
        );
        for (name, nr) in [
            ("clone", libc::SYS_clone),
            ("personality", libc::SYS_personality),
            ("socket", libc::SYS_socket),
        ] {
            assert!(
                !numbers.contains(&nr),
                "{name} is filtered by its arguments, not denied"
            );
        }
        for &(name, nr) in NOSYS_SYSCALLS {
            assert!(!numbers.contains(&nr), "{name} is in both lists");
        }
    }
}
