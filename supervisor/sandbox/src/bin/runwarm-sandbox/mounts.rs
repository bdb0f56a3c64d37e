//! The minimal root: a tmpfs holding read-only binds of the host system directories, the script
//! version at `/var/task`, a size-limited `/tmp`, a fresh `/proc` and a minimal `/dev`; then
//! `pivot_root` into it. Bind sources are opened (O_PATH) while the init still has the host root's
//! file identity, because afterwards it switches its fs ids to the mapped sandbox ids (a tmpfs
//! mounted in a user namespace refuses to create files for an unmapped owner) and may no longer
//! traverse directories such as `/root`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, fstat};
use nix::sys::statvfs::{FsFlags, statvfs};
use runwarm_sandbox::{SandboxSpec, Step, StepFailure};

/// Where the new root is assembled (a host directory that exists everywhere; the tmpfs over it is
/// only visible in our private mount namespace).
const NEW_ROOT: &str = "/tmp";

/// Device nodes bound from the host into `/dev` (creating nodes is not allowed in a user namespace).
const DEV_NODES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// One thing to put into the new root.
#[derive(Debug)]
pub(crate) enum BindSource {
    /// A host file or directory, already opened.
    Open {
        fd: OwnedFd,
        is_dir: bool,
        inside: PathBuf,
    },
    /// A host symlink, recreated inside with the same target.
    Symlink { target: PathBuf, inside: PathBuf },
}

/// The opened sources, split by where they go.
#[derive(Debug)]
pub(crate) struct Plan {
    system: Vec<BindSource>,
    writable: Vec<BindSource>,
    dev: Vec<BindSource>,
    /// The host `/proc`, bound when there is no pid namespace of ours to mount a fresh one for.
    host_proc: Option<BindSource>,
}

/// Opens every bind source (system binds, the task dir, device nodes) with the helper's host
/// identity.
pub(crate) fn open_bind_sources(spec: &SandboxSpec) -> Result<Plan, StepFailure> {
    let mut system = Vec::new();
    for (host, inside) in &spec.ro_binds {
        system.push(open_source(host, inside)?);
    }
    system.push(open_source(&spec.task_dir, Path::new("/var/task"))?);
    let mut writable = Vec::new();
    for (host, inside) in &spec.rw_binds {
        writable.push(open_source(host, inside)?);
    }
    let mut dev = Vec::new();
    for node in DEV_NODES {
        let host = Path::new("/dev").join(node);
        if host.exists() {
            dev.push(open_source(&host, &host)?);
        }
    }
    let host_proc = if spec.layers.pid_ns {
        None
    } else {
        Some(open_source(Path::new("/proc"), Path::new("/proc"))?)
    };
    Ok(Plan {
        system,
        writable,
        dev,
        host_proc,
    })
}

fn open_source(host: &Path, inside: &Path) -> Result<BindSource, StepFailure> {
    let meta = host.symlink_metadata().map_err(|e| {
        StepFailure::io(Step::NewRoot, &e, format!("bind source {}", host.display()))
    })?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(host).map_err(|e| {
            StepFailure::io(Step::NewRoot, &e, format!("readlink {}", host.display()))
        })?;
        return Ok(BindSource::Symlink {
            target,
            inside: inside.to_path_buf(),
        });
    }
    let fd = open(
        host,
        OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| {
        StepFailure::sys(
            Step::NewRoot,
            e,
            format!("opening bind source {}", host.display()),
        )
    })?;
    let stat = fstat(&fd)
        .map_err(|e| StepFailure::sys(Step::NewRoot, e, format!("fstat {}", host.display())))?;
    let is_dir = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    Ok(BindSource::Open {
        fd,
        is_dir,
        inside: inside.to_path_buf(),
    })
}

/// Makes every mount private, so nothing we mount propagates back to the host (and nothing the
/// host mounts later appears inside).
pub(crate) fn make_mounts_private() -> Result<(), StepFailure> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| StepFailure::sys(Step::PrivateMounts, e, "mount --make-rprivate /"))
}

fn fail(what: String) -> impl FnOnce(nix::errno::Errno) -> StepFailure {
    move |e| StepFailure::sys(Step::NewRoot, e, what)
}

fn tmpfs(target: &Path, flags: MsFlags, options: &str) -> Result<(), StepFailure> {
    mount(Some("tmpfs"), target, Some("tmpfs"), flags, Some(options)).map_err(fail(format!(
        "mount tmpfs ({options}) on {}",
        target.display()
    )))
}

fn mkdir_p(path: &Path) -> Result<(), StepFailure> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .map_err(|e| StepFailure::io(Step::NewRoot, &e, format!("mkdir {}", path.display())))
}

fn inside_path(root: &Path, inside: &Path) -> PathBuf {
    root.join(inside.strip_prefix("/").unwrap_or(inside))
}

/// Binds one source under `root`; `read_only` remounts it read-only keeping the flags the kernel
/// locked on the source mount (nosuid, nodev, noexec, atime), since dropping them is refused in
/// a user namespace.
fn bind(root: &Path, source: &BindSource, read_only: bool) -> Result<(), StepFailure> {
    match source {
        BindSource::Symlink { target, inside } => {
            let path = inside_path(root, inside);
            if let Some(parent) = path.parent() {
                mkdir_p(parent)?;
            }
            std::os::unix::fs::symlink(target, &path).map_err(|e| {
                StepFailure::io(Step::NewRoot, &e, format!("symlink {}", path.display()))
            })
        }
        BindSource::Open { fd, is_dir, inside } => {
            let path = inside_path(root, inside);
            if *is_dir {
                mkdir_p(&path)?;
            } else {
                if let Some(parent) = path.parent() {
                    mkdir_p(parent)?;
                }
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(0o644)
                    .open(&path)
                    .map_err(|e| {
                        StepFailure::io(Step::NewRoot, &e, format!("creating {}", path.display()))
                    })?;
            }
            let via = format!("/proc/self/fd/{}", fd.as_raw_fd());
            mount(
                Some(via.as_str()),
                &path,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(fail(format!(
                "bind {} (fd {}) on {}",
                inside.display(),
                fd.as_raw_fd(),
                path.display()
            )))?;
            if read_only {
                remount_read_only(&path, MsFlags::MS_NOSUID | MsFlags::MS_NODEV)?;
            }
            Ok(())
        }
    }
}

fn remount_read_only(path: &Path, extra: MsFlags) -> Result<(), StepFailure> {
    let locked = statvfs(path)
        .map_err(fail(format!("statvfs {}", path.display())))?
        .flags();
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | extra;
    for (st, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if locked.contains(st) {
            flags |= ms;
        }
    }
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
        .map_err(fail(format!("remount {} read-only", path.display())))
}

/// Builds the new root at [`NEW_ROOT`]: system binds (read-only), `/var/task` (read-only), `/tmp`,
/// `/proc`, `/dev`. Returns the root's path for [`pivot_into`].
pub(crate) fn build_new_root(spec: &SandboxSpec, plan: Plan) -> Result<PathBuf, StepFailure> {
    let root = PathBuf::from(NEW_ROOT);
    let nosuid_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    tmpfs(&root, nosuid_nodev, "mode=0755,size=1m")?;
    for source in &plan.system {
        bind(&root, source, true)?;
    }
    for source in &plan.writable {
        bind(&root, source, false)?;
    }
    let tmp = root.join("tmp");
    mkdir_p(&tmp)?;
    tmpfs(
        &tmp,
        nosuid_nodev,
        &format!("mode=1777,size={}", spec.tmp_size_bytes),
    )?;
    let proc = root.join("proc");
    mkdir_p(&proc)?;
    if let Some(host_proc) = &plan.host_proc {
        bind(&root, host_proc, false)?;
    } else {
        mount(
            Some("proc"),
            &proc,
            Some("proc"),
            nosuid_nodev | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(fail("mount proc".to_owned()))?;
    }
    let dev = root.join("dev");
    mkdir_p(&dev)?;
    tmpfs(
        &dev,
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        "mode=0755,size=64k",
    )?;
    for source in &plan.dev {
        bind(&root, source, false)?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(link))
            .map_err(|e| StepFailure::io(Step::NewRoot, &e, format!("symlink /dev/{link}")))?;
    }
    if spec.dev_shm_size_bytes > 0 {
        let shm = dev.join("shm");
        mkdir_p(&shm)?;
        tmpfs(
            &shm,
            nosuid_nodev | MsFlags::MS_NOEXEC,
            &format!("mode=1777,size={}", spec.dev_shm_size_bytes),
        )?;
    }
    // The /dev tmpfs is owned by the sandbox uid (it was created under its fs ids): read-only keeps
    // the executor from adding entries to it.
    remount_read_only(&dev, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC)?;
    if !spec.secret_files.is_empty() {
        write_secret_files(&root, &spec.secret_files)?;
    }
    drop(plan);
    Ok(root)
}

/// Writes each secret to `/run/secrets/NAME` (mode 0400, owned by the sandbox uid, whose fs ids
/// the helper already has) on a tmpfs of its own, then makes that tmpfs read-only. The values
/// exist only in this mount namespace's memory: never on a disk, never in the host's view.
fn write_secret_files(root: &Path, files: &[(String, String)]) -> Result<(), StepFailure> {
    let dir = root.join("run/secrets");
    mkdir_p(&dir)?;
    let total: usize = files.iter().map(|(_, v)| v.len() + 4096).sum();
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    tmpfs(&dir, flags, &format!("mode=0500,size={}", total.max(4096)))?;
    for (name, value) in files {
        // The spec was validated: a plain name, no separator, no `..`.
        let path = dir.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .open(&path)
            .map_err(|e| {
                StepFailure::io(Step::NewRoot, &e, format!("create secret file {name}"))
            })?;
        std::io::Write::write_all(&mut f, value.as_bytes())
            .map_err(|e| StepFailure::io(Step::NewRoot, &e, format!("write secret file {name}")))?;
    }
    remount_read_only(&dir, flags)
}

/// `pivot_root(".", ".")` in the new root, then detaches the old root stacked beneath it, so no
/// path leads back to the host file system.
pub(crate) fn pivot_into(root: &Path) -> Result<(), StepFailure> {
    let fail = |what: &'static str| move |e| StepFailure::sys(Step::PivotRoot, e, what);
    nix::unistd::chdir(root).map_err(fail("chdir to the new root"))?;
    nix::unistd::pivot_root(".", ".").map_err(fail("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(fail("detaching the old root"))?;
    nix::unistd::chdir("/").map_err(fail("chdir /"))
}

/// Remounts the new root read-only (the binds and tmpfs mounts below it keep their own flags).
pub(crate) fn remount_root_read_only() -> Result<(), StepFailure> {
    let flags = MsFlags::MS_REMOUNT
        | MsFlags::MS_BIND
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV;
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
        .map_err(|e| StepFailure::sys(Step::ReadOnlyRoot, e, "remount / read-only"))
}
