//! Passkeys (WebAuthn Level 2, checked by webauthn-rs): made on the account page, used as the
//! second step after a password, or alone ("Sign in with a passkey", a discoverable credential
//! with user verification).
//!
//! The relying party is the issuer: its host is the relying-party id and its origin the only
//! origin accepted, so passkeys exist only when the issuer is a domain name (WebAuthn refuses
//! IP addresses). Every ceremony keeps its state (with the challenge) in the database under the
//! hash of an id the browser holds, and is taken (deleted) when answered: a challenge is
//! answered once, within five minutes. An authenticator holds a random handle for the user,
//! never the user's id or address. Each use stores the credential's new signature counter, and
//! webauthn-rs refuses a counter that went backwards (a cloned authenticator).

use crate::routes::ClientMeta;
use crate::state::AppState;
use postern_core::secret::{BearerSecret, TokenHash};
use postern_store::{Ceremony, NewPasskey, StoreError, StoredPasskey, User};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

/// How long the browser has to answer a ceremony.
pub const CEREMONY_SECS: i64 = 300;
/// The longest passkey name kept.
pub const NAME_MAX: usize = 64;

/// What a ceremony is for; a ceremony answers only the purpose it was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Register,
    SecondStep,
    Passwordless,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::SecondStep => "second_step",
            Purpose::Passwordless => "passwordless",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("passkeys need the issuer to be a domain name")]
    Unavailable,
    #[error("this passkey request expired or was used; try again")]
    Expired,
    #[error("the passkey's answer was not accepted: {0}")]
    Refused(String),
    #[error("this passkey is not registered here")]
    Unknown,
    #[error("there are no passkeys on this account")]
    NoPasskeys,
    #[error("{0}")]
    Invalid(&'static str),
    #[error("too many sign-ins started from this address; wait {0} seconds")]
    TooMany(i64),
    #[error("stored passkey data could not be read: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::error::Failure for PasskeyError {
    fn unavailable(&self) -> bool {
        matches!(self, PasskeyError::Store(e) if e.is_unavailable())
    }
}

/// The relying party for `issuer`, or `None` when the issuer's host is an IP address.
pub fn relying_party(issuer: &str, config: &crate::config::WebauthnConfig) -> Option<Arc<Webauthn>> {
    let url = Url::parse(issuer).ok()?;
    let host = url.domain()?;
    let origin = Url::parse(&url.origin().ascii_serialization()).ok()?;
    let built = WebauthnBuilder::new(host, &origin).and_then(|b| b.rp_name(&config.rp_name).build());
    match built {
        Ok(rp) => Some(Arc::new(rp)),
        Err(e) => {
            tracing::warn!(error = %e, %issuer, "passkeys are off: the issuer cannot be a WebAuthn relying party");
            None
        }
    }
}

/// A ceremony started: the id the browser sends back, and the options for
/// `navigator.credentials.create()` or `.get()` (WebAuthn's JSON, binary fields in base64url).
#[derive(Debug, Serialize)]
pub struct Started {
    pub ceremony: String,
    pub options: serde_json::Value,
}

fn rp(state: &AppState) -> Result<&Webauthn, PasskeyError> {
    state.webauthn.as_deref().ok_or(PasskeyError::Unavailable)
}

fn to_json<T: Serialize>(value: &T) -> Result<String, PasskeyError> {
    serde_json::to_string(value).map_err(|e| PasskeyError::Corrupt(e.to_string()))
}

fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, PasskeyError> {
    serde_json::from_str(text).map_err(|e| PasskeyError::Corrupt(e.to_string()))
}

/// The browser's answer, as posted by the page.
fn answer<T: DeserializeOwned>(text: &str) -> Result<T, PasskeyError> {
    serde_json::from_str(text).map_err(|_| PasskeyError::Refused("the answer could not be read".into()))
}

async fn keep<S: Serialize>(
    state: &AppState,
    purpose: Purpose,
    user_id: Option<&str>,
    ceremony_state: &S,
    options: &impl Serialize,
) -> Result<Started, PasskeyError> {
    let id = BearerSecret::generate(&mut postern_core::system::os_rng());
    let ceremony = Ceremony { user_id: user_id.map(str::to_owned), state: to_json(ceremony_state)? };
    state.store.begin_ceremony(&id.hash(), purpose.as_str(), &ceremony, state.now() + CEREMONY_SECS).await?;
    let options = serde_json::to_value(options).map_err(|e| PasskeyError::Corrupt(e.to_string()))?;
    Ok(Started { ceremony: id.expose().to_owned(), options })
}

/// Takes the ceremony `id` names, if it is unexpired, of this purpose, and (for a known user)
/// that user's.
async fn take<S: DeserializeOwned>(
    state: &AppState,
    purpose: Purpose,
    id: &str,
    user_id: Option<&str>,
) -> Result<(Option<String>, S), PasskeyError> {
    if id.len() != 43 {
        return Err(PasskeyError::Expired);
    }
    let taken = state.store.take_ceremony(&TokenHash::of(id), purpose.as_str(), state.now()).await?;
    let ceremony = taken.ok_or(PasskeyError::Expired)?;
    if user_id.is_some() && ceremony.user_id.as_deref() != user_id {
        return Err(PasskeyError::Expired);
    }
    Ok((ceremony.user_id, from_json(&ceremony.state)?))
}

/// The user's passkeys as stored, each with its parsed credential.
async fn credentials(state: &AppState, user_id: &str) -> Result<Vec<(StoredPasskey, Passkey)>, PasskeyError> {
    let stored = state.store.passkeys(user_id).await?;
    stored
        .into_iter()
        .map(|row| {
            let key = from_json(&row.credential)?;
            Ok((row, key))
        })
        .collect()
}

/// A credential id as stored: lowercase hex.
fn credential_id(key: &Passkey) -> String {
    key.cred_id().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the user has a passkey.
pub async fn has_passkeys(state: &AppState, user_id: &str) -> Result<bool, StoreError> {
    Ok(state.webauthn.is_some() && !state.store.passkeys(user_id).await?.is_empty())
}

/// The user's passkeys, for the account page.
pub async fn list(state: &AppState, user_id: &str) -> Result<Vec<StoredPasskey>, StoreError> {
    state.store.passkeys(user_id).await
}

/// Starts making a passkey for `user` (their existing ones excluded, so one authenticator
/// holds one). Discoverable credentials are preferred, so the passkey also signs in alone.
pub async fn begin_registration(state: &AppState, user: &User) -> Result<Started, PasskeyError> {
    let rp = rp(state)?;
    let fresh = Uuid::new_v4().to_string();
    let handle = state.store.passkey_handle(&user.id, &fresh).await?;
    let handle = Uuid::parse_str(&handle).map_err(|e| PasskeyError::Corrupt(e.to_string()))?;
    let exclude = credentials(state, &user.id).await?.iter().map(|(_, key)| key.cred_id().clone()).collect();
    let display = user.display_name.as_deref().unwrap_or(&user.email);
    let (options, registration) = rp
        .start_passkey_registration(handle, &user.email, display, Some(exclude))
        .map_err(|e| PasskeyError::Refused(e.to_string()))?;
    let mut options = serde_json::to_value(&options).map_err(|e| PasskeyError::Corrupt(e.to_string()))?;
    // webauthn-rs asks for a server-side credential; a discoverable one (where the
    // authenticator can make it) is what lets the passkey sign in alone.
    if let Some(selection) = options.pointer_mut("/publicKey/authenticatorSelection").and_then(|s| s.as_object_mut()) {
        selection.insert("residentKey".into(), "preferred".into());
        selection.insert("requireResidentKey".into(), false.into());
    }
    keep(state, Purpose::Register, Some(&user.id), &registration, &options).await
}

/// Finishes making a passkey named `name` from the browser's answer; audited.
pub async fn finish_registration(
    state: &AppState,
    meta: &ClientMeta,
    user: &User,
    ceremony: &str,
    name: &str,
    credential: &str,
) -> Result<String, PasskeyError> {
    let rp = rp(state)?;
    let name = passkey_name(name)?;
    let (_, registration): (_, PasskeyRegistration) = take(state, Purpose::Register, ceremony, Some(&user.id)).await?;
    let answer: RegisterPublicKeyCredential = answer(credential)?;
    let key =
        rp.finish_passkey_registration(&answer, &registration).map_err(|e| PasskeyError::Refused(e.to_string()))?;
    let id = postern_core::id::random_id(&mut postern_core::system::os_rng());
    let stored = to_json(&key)?;
    let new = NewPasskey {
        id: &id,
        user_id: &user.id,
        credential_id: &credential_id(&key),
        name: &name,
        credential: &stored,
        now: state.now(),
    };
    state.store.add_passkey(&new).await.map_err(|e| match e {
        StoreError::Conflict(_) => PasskeyError::Invalid("This passkey is registered already."),
        other => PasskeyError::Store(other),
    })?;
    crate::audit::by(state, meta, &user.id, "mfa.passkey_added", &user.id).await;
    Ok(name)
}

/// A passkey's name: trimmed, without control characters, at most [`NAME_MAX`] characters;
/// "Passkey" when empty.
fn passkey_name(name: &str) -> Result<String, PasskeyError> {
    let name = name.trim();
    if name.chars().any(char::is_control) {
        return Err(PasskeyError::Invalid("A passkey's name cannot hold control characters."));
    }
    if name.chars().count() > NAME_MAX {
        return Err(PasskeyError::Invalid("A passkey's name is at most 64 characters."));
    }
    Ok(if name.is_empty() { "Passkey".to_owned() } else { name.to_owned() })
}

/// Deletes one of the user's passkeys (the caller asked for the password again); audited.
pub async fn remove(state: &AppState, meta: &ClientMeta, user: &User, id: &str) -> Result<(), PasskeyError> {
    if !state.store.remove_passkey(&user.id, id).await? {
        return Err(PasskeyError::Unknown);
    }
    crate::audit::by(state, meta, &user.id, "mfa.passkey_removed", &user.id).await;
    Ok(())
}

/// Starts the second step with one of `user`'s passkeys.
pub async fn begin_second_step(state: &AppState, user: &User) -> Result<Started, PasskeyError> {
    let rp = rp(state)?;
    let keys: Vec<Passkey> = credentials(state, &user.id).await?.into_iter().map(|(_, key)| key).collect();
    if keys.is_empty() {
        return Err(PasskeyError::NoPasskeys);
    }
    let (options, authentication) =
        rp.start_passkey_authentication(&keys).map_err(|e| PasskeyError::Refused(e.to_string()))?;
    keep(state, Purpose::SecondStep, Some(&user.id), &authentication, &options).await
}

/// Checks the browser's answer to a second-step ceremony for `user`.
pub async fn finish_second_step(
    state: &AppState,
    user: &User,
    ceremony: &str,
    credential: &str,
) -> Result<(), PasskeyError> {
    let rp = rp(state)?;
    let (_, authentication): (_, PasskeyAuthentication) =
        take(state, Purpose::SecondStep, ceremony, Some(&user.id)).await?;
    let answer: PublicKeyCredential = answer(credential)?;
    let result =
        rp.finish_passkey_authentication(&answer, &authentication).map_err(|e| PasskeyError::Refused(e.to_string()))?;
    record_use(state, &user.id, credentials(state, &user.id).await?, &result).await
}

/// Starts a passwordless sign-in: any discoverable passkey of this instance may answer.
/// Rate-limited per client address like every sign-in started.
pub async fn begin_passwordless(state: &AppState, meta: &ClientMeta) -> Result<Started, PasskeyError> {
    let rp = rp(state)?;
    state.node.anonymous_writes.sign_in(&meta.limit_key(), state.now()).map_err(PasskeyError::TooMany)?;
    let (mut options, authentication) =
        rp.start_discoverable_authentication().map_err(|e| PasskeyError::Refused(e.to_string()))?;
    // A button press asks at once (a modal request), not only through the autofill list.
    options.mediation = None;
    keep(state, Purpose::Passwordless, None, &authentication, &options).await
}

/// Checks the browser's answer to a passwordless ceremony: whose passkey it is (an enabled
/// account's), with user verification. Returns the user.
pub async fn finish_passwordless(state: &AppState, ceremony: &str, credential: &str) -> Result<User, PasskeyError> {
    let rp = rp(state)?;
    let (_, authentication): (_, DiscoverableAuthentication) =
        take(state, Purpose::Passwordless, ceremony, None).await?;
    let answer: PublicKeyCredential = answer(credential)?;
    let (handle, _) = rp.identify_discoverable_authentication(&answer).map_err(|_| PasskeyError::Unknown)?;
    let user_id = state.store.user_of_passkey_handle(&handle.to_string()).await?.ok_or(PasskeyError::Unknown)?;
    let user = state.store.user_by_id(&user_id).await?.filter(|u| !u.disabled).ok_or(PasskeyError::Unknown)?;
    let held = credentials(state, &user.id).await?;
    let keys: Vec<DiscoverableKey> = held.iter().map(|(_, key)| DiscoverableKey::from(key)).collect();
    if keys.is_empty() {
        return Err(PasskeyError::Unknown);
    }
    let result = rp
        .finish_discoverable_authentication(&answer, authentication, &keys)
        .map_err(|e| PasskeyError::Refused(e.to_string()))?;
    if !result.user_verified() {
        return Err(PasskeyError::Refused("the authenticator did not verify the person".into()));
    }
    record_use(state, &user.id, held, &result).await?;
    Ok(user)
}

/// Stores the used passkey (one of `held`, the user's) with its new counter and the time of use.
async fn record_use(
    state: &AppState,
    user_id: &str,
    held: Vec<(StoredPasskey, Passkey)>,
    result: &webauthn_rs::prelude::AuthenticationResult,
) -> Result<(), PasskeyError> {
    for (row, mut key) in held {
        if key.cred_id() == result.cred_id() {
            key.update_credential(result);
            state.store.passkey_used(user_id, &row.credential_id, &to_json(&key)?, state.now()).await?;
            return Ok(());
        }
    }
    Err(PasskeyError::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_plain() {
        assert_eq!(passkey_name("  Laptop  ").unwrap(), "Laptop");
        assert_eq!(passkey_name("").unwrap(), "Passkey");
        assert!(passkey_name("a\u{7}b").is_err());
        assert!(passkey_name(&"x".repeat(NAME_MAX + 1)).is_err());
        assert_eq!(passkey_name(&"é".repeat(NAME_MAX)).unwrap().chars().count(), NAME_MAX);
    }

    #[test]
    fn only_a_domain_can_be_the_relying_party() {
        let config = crate::config::WebauthnConfig::default();
        assert!(relying_party("http://localhost:8080", &config).is_some());
        assert!(relying_party("https://auth.example.org", &config).is_some());
        assert!(relying_party("http://127.0.0.1:8080", &config).is_none());
        assert!(relying_party("http://[::1]:8080", &config).is_none());
    }
}
