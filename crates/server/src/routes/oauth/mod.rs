//! The OAuth 2.1 and OpenID Connect endpoints: authorization (its pages render an
//! `crate::authorization::Outcome`), token (the grants are `crate::grants`), device authorization,
//! introspection and revocation, discovery and JWKS, userinfo, client registration. Errors are RFC 6749 §5.2 JSON
//! (`crate::error::WebError`), userinfo's RFC 6750 (`crate::error::ApiError`).

pub mod authorize;
pub mod client_auth;
pub mod device;
pub mod discovery;
pub mod introspection;
pub mod oauth_form;
pub mod register;
pub mod token;
pub mod userinfo;
