//! Why a request was refused, as `runwarm_refusals_total` labels it, and how each refusal the
//! daemon produces (a problem answer, an admission or an acquire error) maps onto it.

use crate::api::problem::Problem;
use crate::invocation::admission::AdmissionError;
use crate::pool::AcquireError;

/// Why a request was refused: the `reason` label of `runwarm_refusals_total` (with its HTTP
/// status as `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400: the payload does not match the script's parameter schema.
    InvalidParams,
    /// 400: anything else wrong with the request (malformed JSON, bad query or header).
    BadRequest,
    /// 403: the caller lacks the role (any route).
    Forbidden,
    /// 404: no such script, version or tag.
    NotFound,
    /// 409: the script is disabled.
    Disabled,
    /// 409: the `Idempotency-Key` was used for a different request.
    IdempotencyConflict,
    /// 413: the body is over `limits.max_body_bytes` / `max_payload_bytes`.
    TooLarge,
    /// 429: the script's `pool.max_concurrency` or the async backlog is full.
    Admission,
    /// 429: the global wait queue (`pools.queue_max`) is full.
    QueueFull,
    /// 429: the caller's per-uid rate limit.
    RateLimit,
    /// 503: no executor became free within the request's time limit.
    QueueTimeout,
    /// 503: the daemon is shutting down.
    ShuttingDown,
    /// 503: one executor of the version needs more memory than `pools.max_memory_mb`.
    MemoryBudget,
}

impl Refusal {
    /// Every reason, in label order.
    pub const ALL: [Refusal; 13] = [
        Refusal::InvalidParams,
        Refusal::BadRequest,
        Refusal::Forbidden,
        Refusal::NotFound,
        Refusal::Disabled,
        Refusal::IdempotencyConflict,
        Refusal::TooLarge,
        Refusal::Admission,
        Refusal::QueueFull,
        Refusal::RateLimit,
        Refusal::QueueTimeout,
        Refusal::ShuttingDown,
        Refusal::MemoryBudget,
    ];

    /// The `reason` label.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::InvalidParams => "invalid_params",
            Refusal::BadRequest => "bad_request",
            Refusal::Forbidden => "forbidden",
            Refusal::NotFound => "not_found",
            Refusal::Disabled => "disabled",
            Refusal::IdempotencyConflict => "idempotency_conflict",
            Refusal::TooLarge => "too_large",
            Refusal::Admission => "admission",
            Refusal::QueueFull => "queue_full",
            Refusal::RateLimit => "rate_limit",
            Refusal::QueueTimeout => "queue_timeout",
            Refusal::ShuttingDown => "shutting_down",
            Refusal::MemoryBudget => "memory_budget",
        }
    }

    /// The HTTP status it is answered with.
    pub fn status(self) -> u16 {
        match self {
            Refusal::InvalidParams | Refusal::BadRequest => 400,
            Refusal::Forbidden => 403,
            Refusal::NotFound => 404,
            Refusal::Disabled | Refusal::IdempotencyConflict => 409,
            Refusal::TooLarge => 413,
            Refusal::Admission | Refusal::QueueFull | Refusal::RateLimit => 429,
            Refusal::QueueTimeout | Refusal::ShuttingDown | Refusal::MemoryBudget => 503,
        }
    }

    /// An invocation's refusal before it reached admission (resolving, reading and checking the
    /// request); `None` for statuses that are not a refusal of the request (5xx).
    pub fn of_problem(p: &Problem) -> Option<Refusal> {
        Some(match p.status {
            400 if !p.violations.is_empty() => Refusal::InvalidParams,
            400 => Refusal::BadRequest,
            403 => Refusal::Forbidden,
            404 => Refusal::NotFound,
            409 => Refusal::Disabled,
            413 => Refusal::TooLarge,
            _ => return None,
        })
    }

    /// An admission refusal.
    pub fn of_admission(e: &AdmissionError) -> Refusal {
        match e {
            AdmissionError::RateLimited { .. } => Refusal::RateLimit,
            AdmissionError::Concurrency { .. } | AdmissionError::Backlog { .. } => {
                Refusal::Admission
            }
        }
    }

    /// No executor could be had; `None` for a failed start (that is an execution's failure,
    /// counted as a start failure, not a refusal).
    pub fn of_acquire(e: &AcquireError) -> Option<Refusal> {
        match e {
            AcquireError::QueueFull { .. } => Some(Refusal::QueueFull),
            AcquireError::WaitTimeout { .. } => Some(Refusal::QueueTimeout),
            AcquireError::ShuttingDown => Some(Refusal::ShuttingDown),
            AcquireError::OverMemoryBudget { .. } => Some(Refusal::MemoryBudget),
            AcquireError::Start(_) => None,
        }
    }
}
