//! The JSON API for people's own credentials: `/api/keys` and `/api/service-accounts`.
//! Errors are RFC 6750 challenges and JSON (`crate::error::ApiError`).

pub mod keys;
