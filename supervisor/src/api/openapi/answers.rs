//! The problem answers many operations share (400, 403, 408, 413, 500, 507) and the
//! route-independent 404 and 405: written once here, named by each route's `responses(...)`.

use utoipa::openapi::{
    ContentBuilder, Ref, RefOr, ResponseBuilder, header::HeaderBuilder, schema::Type,
};

use super::PROBLEM_JSON;

/// A problem answer with `description`; `retry_after` adds the `Retry-After` header.
fn problem(description: &str, retry_after: bool) -> RefOr<utoipa::openapi::Response> {
    let mut b = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    if retry_after {
        b = b.header("Retry-After", retry_after_header());
    }
    RefOr::T(b.build())
}

/// `Retry-After` in seconds.
pub(crate) fn retry_after_header() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some("Seconds after which the same request may succeed"))
        .build()
}

/// Declares unit types whose `IntoResponses` is one problem status: the answers many routes
/// share, written once.
macro_rules! problem_answers {
    ($($(#[$doc:meta])* $name:ident => $status:literal, $retry:literal, $desc:literal;)*) => {$(
        $(#[$doc])*
        pub(crate) struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<String, RefOr<utoipa::openapi::Response>> {
                std::collections::BTreeMap::from([($status.to_owned(), problem($desc, $retry))])
            }
        }
    )*};
}

problem_answers! {
    /// 400 for a body or parameter the route cannot take.
    BadRequest => "400", false,
        "The request is malformed: not JSON, not the documented shape, or a value out of range";
    /// 403 from the access policy (`api::access`): routes that change something, and reads of
    /// an execution (scoped by owner) or of a version's manifest.
    Forbidden => "403", false,
        "The caller's uid/gids do not hold this route's role in the daemon's [access] policy";
    /// 413 from `api::body::json_body`.
    TooLarge => "413", false,
        "The request body is larger than the route's limit (refused from `Content-Length` alone)";
    /// 408 from `api::body::json_body`: the body came slower than `server.body_min_bytes_per_s`.
    SlowBody => "408", false,
        "The request body arrived slower than the daemon's minimum rate after its grace";
    /// 507 for asynchronous invocations while the state directory's disk is full.
    DiskFull => "507", true,
        "The disk under the state directory is full: asynchronous work is refused until space returns";
    /// 500: a fault of the daemon itself (its state directory, a task that died).
    Internal => "500", false, "A fault of the daemon itself (E005), e.g. its state directory";
}

/// Adds the route-independent answers `404` and `405` to the components, so a reader of the
/// document finds them (OpenAPI has no place for the answer to a method a path lacks).
pub(super) fn fallback_responses(doc: &mut utoipa::openapi::OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.responses.insert(
        "NoSuchRoute".to_owned(),
        problem("404: no route has this path", false),
    );
    let not_allowed = ResponseBuilder::new()
        .description("405: the path exists but does not take this method")
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .header(
            "Allow",
            HeaderBuilder::new()
                .schema(
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(Type::String)
                        .build(),
                )
                .description(Some("The methods this path takes"))
                .build(),
        );
    components
        .responses
        .insert("MethodNotAllowed".to_owned(), RefOr::T(not_allowed.build()));
}
