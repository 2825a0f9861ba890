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
    /// The caller's input is wrong: bad SQL, malformed body, bad name.
    InvalidInput,
    /// The input is well-formed but its rows do not fit the table (a value
    /// of the wrong type, an unknown column, a null in a NOT NULL column).
    InvalidRows,
    /// The request body is larger than the server accepts.
    TooLarge,
    /// The body's media type is not one silt decodes.
    UnsupportedMediaType,
    /// The server is at capacity for this table; retry later.
    Overloaded,
    /// No valid credentials were presented.
    Unauthenticated,
    /// The credentials' role does not allow the operation.
    Forbidden,
    /// A concurrent commit won and the operation could not be retried.
    Conflict,
    /// The statement ran past its time limit and was stopped.
    Timeout,
    /// The operation is valid but not supported (yet).
    Unsupported,
    /// The warehouse's storage does not answer (connection refused, timed
    /// out, 5xx or throttling after the object store's own retries); the
    /// request was not applied, retry later.
    Unavailable,
    /// The storage is full (a local disk or quota); nothing was committed.
    InsufficientStorage,
    /// Storage or an internal invariant failed; not the caller's fault.
    Internal,
}

impl ErrorKind {
    /// How a storage failure of this kind is told to a caller; `None` for
    /// other kinds. The error's own text stays in the server's log: it names
    /// objects, whose paths hold partition values. Callers add what the
    /// failure meant for them (nothing committed, retry later).
    pub fn storage_failure(self) -> Option<&'static str> {
        match self {
            ErrorKind::Unavailable => Some("the warehouse's storage does not answer"),
            ErrorKind::InsufficientStorage => Some("the warehouse's storage is full"),
            _ => None,
        }
    }

    /// Every kind, so a reverse mapping is derived from the forward one
    /// and cannot drift from it.
    pub const ALL: [ErrorKind; 15] = [
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::InvalidInput,
        ErrorKind::InvalidRows,
        ErrorKind::TooLarge,
        ErrorKind::UnsupportedMediaType,
        ErrorKind::Overloaded,
        ErrorKind::Unauthenticated,
        ErrorKind::Forbidden,
        ErrorKind::Conflict,
        ErrorKind::Timeout,
        ErrorKind::Unsupported,
        ErrorKind::Unavailable,
        ErrorKind::InsufficientStorage,
        ErrorKind::Internal,
    ];

    /// The kind whose [`problem_type`](Self::problem_type) is `problem_type`
    /// (how a client reads a silt problem+json answer back).
    pub fn from_problem_type(problem_type: &str) -> Option<ErrorKind> {
        Self::ALL.into_iter().find(|k| k.problem_type() == problem_type)
    }

    /// The kind of an HTTP error status, for answers without a silt problem
    /// type (a proxy's error page). Statuses two kinds share (409) and
    /// unknown 4xx/5xx fall back to the broader kind.
    pub fn from_http_status(status: u16) -> ErrorKind {
        match status {
            409 => ErrorKind::Conflict,
            _ => Self::ALL
                .into_iter()
                .find(|k| k.http_status() == status)
                .unwrap_or(if (400..500).contains(&status) {
                    ErrorKind::InvalidInput
                } else {
                    ErrorKind::Internal
                }),
        }
    }

    /// The process exit code of the `silt` CLI for this kind (see docs/cli.md).
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Internal => 1,
            ErrorKind::NotFound => 3,
            ErrorKind::InvalidInput
            | ErrorKind::InvalidRows
            | ErrorKind::TooLarge
            | ErrorKind::UnsupportedMediaType
            | ErrorKind::AlreadyExists
            | ErrorKind::Unsupported => 4,
            ErrorKind::Conflict => 5,
            ErrorKind::Timeout => 8,
            ErrorKind::Overloaded => 6,
            ErrorKind::Unavailable => 9,
            ErrorKind::InsufficientStorage => 10,
            ErrorKind::Unauthenticated | ErrorKind::Forbidden => 7,
        }
    }

    /// The HTTP status code for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::AlreadyExists | ErrorKind::Conflict => 409,
            ErrorKind::InvalidInput => 400,
            ErrorKind::InvalidRows => 422,
            ErrorKind::TooLarge => 413,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::Overloaded => 429,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Timeout => 408,
            ErrorKind::Forbidden => 403,
            ErrorKind::Unsupported => 501,
            ErrorKind::Unavailable => 503,
            ErrorKind::InsufficientStorage => 507,
            ErrorKind::Internal => 500,
        }
    }

    /// The RFC 9457 problem `type` for this kind.
    pub fn problem_type(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "https://silt.dev/problems/not-found",
            ErrorKind::AlreadyExists => "https://silt.dev/problems/already-exists",
            ErrorKind::InvalidInput => "https://silt.dev/problems/invalid-input",
            ErrorKind::InvalidRows => "https://silt.dev/problems/invalid-rows",
            ErrorKind::TooLarge => "https://silt.dev/problems/too-large",
            ErrorKind::UnsupportedMediaType => "https://silt.dev/problems/unsupported-media-type",
            ErrorKind::Overloaded => "https://silt.dev/problems/overloaded",
            ErrorKind::Unauthenticated => "https://silt.dev/problems/unauthenticated",
            ErrorKind::Forbidden => "https://silt.dev/problems/forbidden",
            ErrorKind::Conflict => "https://silt.dev/problems/conflict",
            ErrorKind::Timeout => "https://silt.dev/problems/timeout",
            ErrorKind::Unsupported => "https://silt.dev/problems/unsupported",
            ErrorKind::Unavailable => "https://silt.dev/problems/unavailable",
            ErrorKind::InsufficientStorage => "https://silt.dev/problems/insufficient-storage",
            ErrorKind::Internal => "https://silt.dev/problems/internal",
        }
    }

    /// The last segment of the problem type (`not-found`, `invalid-rows`…),
    /// a fixed word fit for a metric label.
    pub fn slug(self) -> &'static str {
        self.problem_type().rsplit('/').next().unwrap_or("internal")
    }

    /// The Postgres SQLSTATE for this kind (the wire endpoint's
    /// ErrorResponse `C` field; PostgreSQL's errcodes appendix).
    pub fn sqlstate(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "42P01",
            ErrorKind::AlreadyExists => "42P07",
            ErrorKind::InvalidInput => "22023",
            ErrorKind::InvalidRows => "22000",
            ErrorKind::TooLarge => "54000",
            ErrorKind::UnsupportedMediaType | ErrorKind::Unsupported => "0A000",
            ErrorKind::Overloaded => "53300",
            ErrorKind::Unauthenticated => "28P01",
            ErrorKind::Forbidden => "42501",
            ErrorKind::Conflict => "40001",
            ErrorKind::Timeout => "57014",
            // io_error: the storage failed, not the statement.
            ErrorKind::Unavailable => "58030",
            ErrorKind::InsufficientStorage => "53100",
            ErrorKind::Internal => "XX000",
        }
    }

    /// The gRPC status code (as its number in the gRPC spec) for Flight.
    pub fn grpc_code(self) -> i32 {
        match self {
            ErrorKind::InvalidInput | ErrorKind::InvalidRows | ErrorKind::UnsupportedMediaType => 3,
            ErrorKind::NotFound => 5,
            ErrorKind::AlreadyExists => 6,
            ErrorKind::Forbidden => 7,
            ErrorKind::TooLarge | ErrorKind::Overloaded => 8,
            ErrorKind::Timeout => 4,
            ErrorKind::Conflict => 10,
            ErrorKind::Unsupported => 12,
            ErrorKind::Internal => 13,
            ErrorKind::Unavailable => 14,
            ErrorKind::InsufficientStorage => 8,
            ErrorKind::Unauthenticated => 16,
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
        assert_eq!(ErrorKind::Overloaded.exit_code(), 6);
        assert_eq!(ErrorKind::Forbidden.exit_code(), 7);
        assert_eq!(ErrorKind::Timeout.exit_code(), 8);
        assert_eq!(ErrorKind::Unavailable.exit_code(), 9);
        assert_eq!(ErrorKind::InsufficientStorage.exit_code(), 10);
    }

    const ALL: [ErrorKind; 15] = ErrorKind::ALL;

    #[test]
    fn sqlstates_are_five_characters_of_the_pg_alphabet() {
        for kind in ALL {
            let code = kind.sqlstate();
            assert_eq!(code.len(), 5, "{kind:?}");
            assert!(
                code.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()),
                "{kind:?}"
            );
        }
        assert_eq!(ErrorKind::Forbidden.sqlstate(), "42501");
        assert_eq!(ErrorKind::Timeout.sqlstate(), "57014");
    }

    #[test]
    fn problem_types_and_statuses_map_back_to_their_kind() {
        for kind in ALL {
            assert_eq!(ErrorKind::from_problem_type(kind.problem_type()), Some(kind));
            if kind != ErrorKind::AlreadyExists {
                assert_eq!(ErrorKind::from_http_status(kind.http_status()), kind);
            }
        }
        assert_eq!(ErrorKind::from_problem_type("about:blank"), None);
        assert_eq!(ErrorKind::from_http_status(418), ErrorKind::InvalidInput);
        assert_eq!(ErrorKind::from_http_status(502), ErrorKind::Internal);
    }

    #[test]
    fn problem_types_and_statuses_are_the_ones_the_error_schema_allows() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../schemas/error.schema.json")).expect("valid JSON");
        let types = &schema["properties"]["type"]["enum"];
        let statuses = &schema["properties"]["status"]["enum"];
        for kind in ALL {
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
