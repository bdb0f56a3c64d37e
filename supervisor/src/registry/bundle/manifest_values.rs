//! The manifest's values that serde accepts but an executor could not honour (environment
//! sizes the kernel refuses, zero limits, a retry policy out of range): refused at registration
//! rather than at every start.

use super::{RegisterError, is_valid_label};
use crate::registry::manifest::Manifest;

/// `MAX_ARG_STRLEN`: the longest single argument or environment string execve takes.
const MAX_ENV_STRING: usize = 32 * 4096;

/// Most bytes a manifest's environment may take: half of the smallest usual `ARG_MAX` (2 MiB).
const MAX_ENV_TOTAL: usize = 1 << 20;

/// Values serde accepts but an executor could not honour; refused here rather than at spawn.
pub(super) fn check_manifest_values(manifest: &Manifest) -> Result<(), RegisterError> {
    let invalid = |detail: String| Err(RegisterError::InvalidManifest { detail });
    for (key, value) in &manifest.env {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return invalid(format!(
                "env name {key:?} must be non-empty, without '=' or NUL"
            ));
        }
        if value.contains('\0') {
            return invalid(format!("env value of {key:?} contains NUL"));
        }
        // The kernel refuses one environment string longer than MAX_ARG_STRLEN at execve:
        // such a version would register and then fail every start.
        if key.len() + 1 + value.len() >= MAX_ENV_STRING {
            return invalid(format!(
                "env {key:?} is {} bytes; one variable may have at most {} (the kernel's limit for one environment string)",
                value.len(),
                MAX_ENV_STRING - key.len() - 2
            ));
        }
    }
    let total: usize = manifest
        .env
        .iter()
        .map(|(k, v)| k.len() + v.len() + 2)
        .sum();
    if total > MAX_ENV_TOTAL {
        return invalid(format!(
            "env takes {total} bytes; a manifest may set at most {MAX_ENV_TOTAL} (execve's limit on arguments and environment together, with room for the runtime's own)"
        ));
    }
    if let Err(detail) = crate::secrets::check_manifest(manifest) {
        return invalid(detail);
    }
    if let Some(label) = &manifest.label
        && !is_valid_label(label)
    {
        return invalid(format!(
            "label {label:?} must be 1 to 64 visible ASCII characters without '@', ':' or '/' (it is typed as NAME@LABEL)"
        ));
    }
    if let Some(retry) = &manifest.retry {
        use crate::execution::ErrorCode;
        if !(1..=10).contains(&retry.max_attempts) {
            return invalid(format!(
                "retry.max_attempts must be 1 to 10, got {}",
                retry.max_attempts
            ));
        }
        if retry.backoff_ms > 600_000 || retry.max_backoff_ms > 600_000 {
            return invalid(
                "retry.backoff_ms and max_backoff_ms are at most 600000 (10 min)".into(),
            );
        }
        if let Some(code) = retry.on.iter().find(|c| {
            !matches!(
                c,
                ErrorCode::E002 | ErrorCode::E003 | ErrorCode::E004 | ErrorCode::E005
            )
        }) {
            return invalid(format!(
                "retry.on may list E002, E003, E004 and E005, not {}",
                code.as_str()
            ));
        }
    }
    for (key, text, max) in [
        ("author", &manifest.author, 256),
        ("changelog", &manifest.changelog, 16 * 1024),
    ] {
        if let Some(text) = text
            && (text.len() > max || text.contains('\0'))
        {
            return invalid(format!(
                "{key} is {} bytes or holds NUL; at most {max} bytes of text",
                text.len()
            ));
        }
    }
    let limits = &manifest.limits;
    for (key, value) in [
        ("timeout_ms", limits.timeout_ms),
        ("memory_mb", limits.memory_mb),
        ("pids", limits.pids),
    ] {
        if value == Some(0) {
            return invalid(format!("limits.{key} must be at least 1"));
        }
    }
    if let Some(cpu) = limits.cpu.filter(|cpu| !(cpu.is_finite() && *cpu > 0.0)) {
        return invalid(format!("limits.cpu must be a positive number, got {cpu}"));
    }
    let pool = &manifest.pool;
    if pool.max == 0 {
        return invalid("pool.max must be at least 1".into());
    }
    if pool.min_warm > pool.max {
        return invalid(format!(
            "pool.min_warm ({}) is larger than pool.max ({})",
            pool.min_warm, pool.max
        ));
    }
    if pool.max_requests == 0 {
        return invalid("pool.max_requests must be at least 1".into());
    }
    Ok(())
}
