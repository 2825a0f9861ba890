//! The error kinds every silt crate maps its errors to, and the one place
//! where a kind becomes an HTTP status, a problem+json type and a CLI exit code.

/// What sort of failure an error is, independent of which crate raised it.
///
/// Every crate's error type has a `kind()`; the server and CLI translate the
/// kind with the methods below so the mapping lives in exactly one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A named thing (table, version, file, request) does not exist.
    NotFound,
    /// The thing being created exists already.
    AlreadyExists,
    /// The caller's input is wrong: bad SQL, bad row, bad value, bad name.
    InvalidInput,
    /// A concurrent commit won and the operation could not be retried.
    Conflict,
    /// The operation is valid but not supported (yet).
    Unsupported,
    /// Storage or an internal invariant failed; not the caller's fault.
    Internal,
}

impl ErrorKind {
    /// The process exit code of the `silt` CLI for this kind (see docs/cli.md).
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Internal => 1,
            ErrorKind::NotFound => 3,
            ErrorKind::InvalidInput | ErrorKind::AlreadyExists | ErrorKind::Unsupported => 4,
            ErrorKind::Conflict => 5,
        }
    }

    /// The HTTP status code for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::AlreadyExists | ErrorKind::Conflict => 409,
            ErrorKind::InvalidInput => 400,
            ErrorKind::Unsupported => 501,
            ErrorKind::Internal => 500,
        }
    }

    /// The RFC 9457 problem `type` for this kind.
    pub fn problem_type(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "https://silt.dev/problems/not-found",
            ErrorKind::AlreadyExists => "https://silt.dev/problems/already-exists",
            ErrorKind::InvalidInput => "https://silt.dev/problems/invalid-input",
            ErrorKind::Conflict => "https://silt.dev/problems/conflict",
            ErrorKind::Unsupported => "https://silt.dev/problems/unsupported",
            ErrorKind::Internal => "https://silt.dev/problems/internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_match_the_cli_contract() {
        assert_eq!(ErrorKind::Internal.exit_code(), 1);
        assert_eq!(ErrorKind::NotFound.exit_code(), 3);
        assert_eq!(ErrorKind::InvalidInput.exit_code(), 4);
        assert_eq!(ErrorKind::Conflict.exit_code(), 5);
    }

    #[test]
    fn problem_types_and_statuses_are_the_ones_the_error_schema_allows() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../schemas/error.schema.json")).expect("valid JSON");
        let types = &schema["properties"]["type"]["enum"];
        let statuses = &schema["properties"]["status"]["enum"];
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::AlreadyExists,
            ErrorKind::InvalidInput,
            ErrorKind::Conflict,
            ErrorKind::Unsupported,
            ErrorKind::Internal,
        ] {
            let listed = types
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == kind.problem_type()));
            assert!(
                listed,
                "{kind:?}: {} not in schemas/error.schema.json",
                kind.problem_type()
            );
            let status = serde_json::json!(kind.http_status());
            assert!(
                statuses.as_array().is_some_and(|s| s.contains(&status)),
                "{kind:?}: status {status}"
            );
        }
    }
}
