//! Confinement of executor processes; `cgroup` is the daemon-side cgroup layer (limits, kill, OOM).

pub mod cgroup;
