//! Bringing up loopback in a new, otherwise empty network namespace (a new namespace starts with
//! `lo` down), so scripts can still talk to themselves over 127.0.0.1.
#![allow(unsafe_code)]

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
use runwarm_sandbox::{Step, StepFailure};

/// `SIOCGIFFLAGS` + `SIOCSIFFLAGS` with `IFF_UP` on `lo`.
pub(crate) fn bring_up_loopback() -> Result<(), StepFailure> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| StepFailure::sys(Step::Loopback, e, "socket for interface ioctls"))?;
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads ifr_name and writes ifr_flags of the ifreq we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) } < 0 {
        return Err(StepFailure::sys(
            Step::Loopback,
            Errno::last(),
            "SIOCGIFFLAGS on lo",
        ));
    }
    // SAFETY: the kernel filled the flags member of the union above.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS reads the ifreq we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req) } < 0 {
        return Err(StepFailure::sys(
            Step::Loopback,
            Errno::last(),
            "SIOCSIFFLAGS IFF_UP on lo",
        ));
    }
    Ok(())
}
