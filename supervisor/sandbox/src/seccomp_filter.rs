//! The seccomp rule list: system calls a script has no business making. Default allow, `EPERM` for
//! the list, `clone` with any namespace flag → `EPERM`, and `clone3` → `ENOSYS` (its flags live in
//! memory a BPF filter cannot read, so libc is made to fall back to `clone`, which can be checked).
//! Built as two filters because seccompiler gives one filter a single match action; the kernel
//! runs both and takes the stricter answer.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
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
    let deny = SeccompFilter::new(denied, SeccompAction::Allow, eperm, target)
        .map_err(SeccompBuildError::Compile)?;

    let clone3: BTreeMap<i64, Vec<SeccompRule>> =
        [(libc::SYS_clone3, Vec::new())].into_iter().collect();
    let no_clone3 = SeccompFilter::new(
        clone3,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        target,
    )
    .map_err(SeccompBuildError::Compile)?;

    let mut programs = Vec::new();
    for filter in [deny, no_clone3] {
        programs.push(BpfProgram::try_from(filter).map_err(SeccompBuildError::Compile)?);
    }
    Ok(programs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile_for_the_host_arch() {
        let programs = build_filters().unwrap();
        assert_eq!(programs.len(), 2);
        // Arch check + one jump per syscall at least: an empty list would be far shorter.
        assert!(programs[0].len() > DENIED_SYSCALLS.len() + NAMESPACE_CLONE_FLAGS.len());
        assert!(!programs[1].is_empty());
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
        assert!(
            !numbers.contains(&libc::SYS_clone),
            "clone is filtered by flags, not denied"
        );
    }
}
