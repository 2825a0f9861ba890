//! Bearer tokens and roles: `reader` ⊂ `writer` ⊂ `operator`.

use std::collections::HashMap;

use serde::Deserialize;

use crate::config::AuthConfig;
use crate::error::ApiError;

/// What a token may do. Ordered: each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read tables and run SELECT.
    Reader,
    /// Also ingest rows and run DML.
    Writer,
    /// Also DDL, maintenance and erasure.
    Operator,
}

impl Role {
    /// The role's name as configured.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Operator => "operator",
        }
    }
}

/// The configured tokens; empty means open (loopback-only) mode.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    tokens: HashMap<String, Role>,
}

impl Auth {
    /// From `[auth]`.
    pub fn new(config: &AuthConfig) -> Self {
        Self {
            tokens: config.tokens.iter().map(|t| (t.token.clone(), t.role)).collect(),
        }
    }

    /// Whether any token is configured.
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The role of the caller who sent the `Authorization` header value
    /// `header`: 401 without a known bearer token. With no tokens configured
    /// (loopback-only mode) every caller is an operator.
    ///
    /// The scheme is matched case-insensitively (RFC 7235 §2.1).
    pub fn authenticate(&self, header: Option<&str>) -> Result<Role, ApiError> {
        if !self.enabled() {
            return Ok(Role::Operator);
        }
        let token = header
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| ApiError::unauthenticated("send 'Authorization: Bearer <token>'"))?;
        self.role_of_token(token)
    }

    /// The role of a bare token (the Postgres endpoint's password): 401
    /// unless it is configured. With no tokens configured every caller is an
    /// operator, as in [`authenticate`](Self::authenticate).
    pub fn role_of_token(&self, token: &str) -> Result<Role, ApiError> {
        if !self.enabled() {
            return Ok(Role::Operator);
        }
        self.tokens
            .get(token.trim())
            .copied()
            .ok_or_else(|| ApiError::unauthenticated("the bearer token is not one this server knows"))
    }

    /// Checks an `Authorization` header value against the role `needed`.
    pub fn check(&self, header: Option<&str>, needed: Role) -> Result<(), ApiError> {
        permit(self.authenticate(header)?, needed)
    }
}

/// 403 unless `caller` may do what needs `needed`.
pub fn permit(caller: Role, needed: Role) -> Result<(), ApiError> {
    if caller < needed {
        return Err(ApiError::forbidden(format!(
            "a {} token cannot do this; it needs the {} role",
            caller.as_str(),
            needed.as_str()
        )));
    }
    Ok(())
}

/// The role a statement of `access` needs.
pub fn role_for(access: silt_sql::Access) -> Role {
    match access {
        silt_sql::Access::Read => Role::Reader,
        silt_sql::Access::Write => Role::Writer,
        silt_sql::Access::Admin => Role::Operator,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenConfig;
    use silt_table::ErrorKind;

    #[test]
    fn roles_nest_and_missing_tokens_are_401() {
        let auth = Auth::new(&AuthConfig {
            tokens: vec![TokenConfig {
                token: "r".into(),
                role: Role::Reader,
            }],
        });
        assert!(auth.check(Some("Bearer r"), Role::Reader).is_ok());
        assert_eq!(
            auth.check(Some("Bearer r"), Role::Writer).map_err(|e| e.kind),
            Err(ErrorKind::Forbidden)
        );
        assert_eq!(
            auth.check(None, Role::Reader).map_err(|e| e.kind),
            Err(ErrorKind::Unauthenticated)
        );
        assert_eq!(
            auth.check(Some("Bearer nope"), Role::Reader).map_err(|e| e.kind),
            Err(ErrorKind::Unauthenticated)
        );
        assert!(Auth::default().check(None, Role::Operator).is_ok());
        // RFC 7235: the scheme is case-insensitive.
        for header in ["BEARER r", "bearer r", "BeArEr r"] {
            assert_eq!(
                auth.authenticate(Some(header)).ok(),
                Some(Role::Reader),
                "{header}"
            );
        }
        assert!(auth.authenticate(Some("Basic r")).is_err());
        assert!(auth.authenticate(Some("Bearerr")).is_err());
    }
}
