//! A request's processes do not outlive it. The executor is a child subreaper, so every process
//! the script starts stays below it even when it daemonizes (`setsid`, a double fork): an orphan
//! is reparented to the executor, not to the sandbox's init. When the script has exited, every
//! descendant left is killed and reaped. A process group would not do (`setsid` leaves it), and
//! killing "every pid but 1 and me" would be wrong when the sandbox's pid namespace is given up
//! (best-effort mode sees the host's `/proc`): descendants are exactly what this request made.

#![allow(unsafe_code)]

use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// How long killing the leftovers may take before the executor gives up on itself. A fork bomb
/// dies in a few rounds: a process with SIGKILL pending cannot complete a fork.
const KILL_BUDGET: Duration = Duration::from_secs(2);

/// Makes this process the reaper of its orphaned descendants. Call once, before any script runs.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches no memory of ours.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What [`kill_leftovers`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Live descendants that were killed.
    pub killed: usize,
    /// Whether some are still alive after the budget: the executor should be replaced.
    pub survivors: bool,
}

/// Kills every descendant of this process and reaps them, within [`KILL_BUDGET`]. Call with no
/// script running (the script's own exit status already collected): this reaps any child.
pub fn kill_leftovers() -> Leftovers {
    // `/proc` numbers processes in the pid namespace it was mounted for, which is not this
    // process's own when the sandbox kept the host's mounts (best-effort mode without a mount
    // namespace): the tree is walked in `/proc`'s numbers, starting from what `/proc/self`
    // says, and each pid is translated to this namespace's before it is signalled.
    let own = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    let me = proc_self().unwrap_or(own);
    let same_namespace = me == own;
    let until = Instant::now() + KILL_BUDGET;
    let mut seen = Leftovers::default();
    loop {
        reap_children();
        let table = match read_proc() {
            Ok(table) => table,
            Err(e) => {
                eprintln!("runwarm-exec-command: listing /proc for leftover processes: {e}");
                seen.survivors = true;
                return seen;
            }
        };
        let found = descendants(me, &table);
        let live: Vec<i32> = found
            .iter()
            .copied()
            .filter(|pid| table.get(pid).is_some_and(|e| !e.zombie))
            .collect();
        if found.is_empty() {
            return seen;
        }
        if Instant::now() >= until {
            seen.survivors = true;
            return seen;
        }
        seen.killed += live.len();
        for pid in &live {
            let target = if same_namespace {
                Some(*pid)
            } else {
                own_namespace_pid(*pid)
            };
            // Gone meanwhile, or not translatable: never signal a number that may name
            // another process here.
            let Some(target) = target else { continue };
            match kill(Pid::from_raw(target), Signal::SIGKILL) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => eprintln!("runwarm-exec-command: killing leftover {pid}: {e}"),
            }
        }
        if live.is_empty() {
            // Only zombies whose parents are still dying: they come to this reaper shortly.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// This process's pid as `/proc` numbers it.
fn proc_self() -> Option<i32> {
    std::fs::read_link("/proc/self")
        .ok()?
        .to_str()?
        .parse()
        .ok()
}

/// The pid, in this process's namespace, of the process `/proc` calls `pid`: the last field of
/// `NSpid:` in its status (the innermost namespace, which is this one for a descendant).
fn own_namespace_pid(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    nspid_innermost(&status)
}

fn nspid_innermost(status: &str) -> Option<i32> {
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_ascii_whitespace().last()?.parse().ok()
}

/// Collects every exited child without waiting.
fn reap_children() {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// One `/proc/<pid>/stat`, as far as this needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcEntry {
    ppid: i32,
    zombie: bool,
}

fn read_proc() -> io::Result<HashMap<i32, ProcEntry>> {
    let mut table = HashMap::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        // A process that exits between the listing and the read is simply gone.
        let Ok(stat) = std::fs::read(entry.path().join("stat")) else {
            continue;
        };
        if let Some(parsed) = parse_stat(&stat) {
            table.insert(pid, parsed);
        }
    }
    Ok(table)
}

/// `pid (comm) S ppid …`: the command name may hold spaces and parentheses, so the fields are
/// read after the last `)`.
fn parse_stat(stat: &[u8]) -> Option<ProcEntry> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(ProcEntry {
        ppid,
        zombie: state == "Z" || state == "X",
    })
}

/// Every pid below `root` in `table`, zombies included, `root` excluded.
fn descendants(root: i32, table: &HashMap<i32, ProcEntry>) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (&pid, e) in table {
        if pid != root {
            children.entry(e.ppid).or_default().push(pid);
        }
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        if let Some(kids) = children.get(&pid) {
            for &kid in kids {
                out.push(kid);
                stack.push(kid);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_names_parses() {
        let e = parse_stat(b"42 (a) b (c) S 7 42 42 0 -1").unwrap();
        assert_eq!(
            e,
            ProcEntry {
                ppid: 7,
                zombie: false
            }
        );
        assert!(parse_stat(b"43 (sh) Z 1 0").unwrap().zombie);
        assert_eq!(parse_stat(b"garbage"), None);
    }

    #[test]
    fn the_innermost_namespace_pid_is_the_last_nspid_field() {
        let status = "Name:\tsleep\nPid:\t4711\nNSpid:\t4711\t3\nPPid:\t4700\n";
        assert_eq!(nspid_innermost(status), Some(3));
        assert_eq!(nspid_innermost("Name:\tsleep\n"), None);
        assert_eq!(proc_self(), i32::try_from(std::process::id()).ok());
    }

    #[test]
    fn descendants_are_the_whole_subtree_and_nothing_else() {
        let e = |ppid| ProcEntry {
            ppid,
            zombie: false,
        };
        let table: HashMap<i32, ProcEntry> = [
            (1, e(0)),
            (2, e(1)),
            (3, e(2)),
            (4, e(3)),
            (5, e(3)),
            (6, e(1)),
        ]
        .into_iter()
        .collect();
        let mut found = descendants(2, &table);
        found.sort_unstable();
        assert_eq!(found, vec![3, 4, 5]);
        assert!(descendants(4, &table).is_empty());
    }
}
