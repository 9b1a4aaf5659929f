//! The JSON error body of RFC 6749 §5.2, used by every OAuth endpoint.

use serde::{Deserialize, Serialize};

/// `{"error": "...", "error_description": "..."}` as RFC 6749 §5.2 defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}
