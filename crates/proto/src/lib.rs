//! Wire types of Postern, and nothing else: what goes over HTTP as JSON.
//!
//! Both the server and the client-side crates (client, guard) depend on this crate, so it holds
//! serde types only — no validation, no I/O. Field names are the ones the RFCs use.

pub mod discovery;
pub mod error;
pub mod jwk;
pub mod token;

pub use discovery::ProviderMetadata;
pub use error::OAuthErrorBody;
pub use jwk::{Jwk, JwkSet};
pub use token::{IntrospectionResponse, TokenResponse};
