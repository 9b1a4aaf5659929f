//! Second factors: TOTP (RFC 6238) set up on the account page and asked for at sign-in, and
//! recovery codes for the day the phone is lost.
//!
//! Setting up draws a new secret, sealed with the KEK at rest (bound to the user), shown as a
//! QR code of its `otpauth://` URI (SVG, drawn here) and as base32 text; it counts only once a
//! first code is right. Turning it on makes ten recovery codes, shown once and stored as hashes.
//! Every code check is throttled per account with the sign-in back-off (429 + `Retry-After`),
//! and an accepted TOTP step is recorded in the same conditional update that checks it is newer
//! than the last, so no code works twice. Using a recovery code is audited and emailed.

use crate::routes::ClientMeta;
use crate::state::AppState;
use postern_core::secret::TokenHash;
use postern_core::totp::{self, TotpSecret};
use postern_store::{StoreError, User};

/// How many recovery codes are made at a time.
pub const RECOVERY_CODES: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    #[error("two-step verification is on already")]
    Enabled,
    #[error("two-step verification is not being set up")]
    NotStarted,
    #[error("the code is not right")]
    WrongCode,
    #[error("too many attempts; wait {0} seconds")]
    TooMany(i64),
    #[error("the sealed secret could not be opened or made: {0}")]
    Seal(#[from] postern_core::kek::KekError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::error::Failure for FactorError {
    fn unavailable(&self) -> bool {
        matches!(self, FactorError::Store(e) if e.is_unavailable())
    }
}

/// A TOTP secret being set up, as the account page shows it.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// The secret in base32, in groups of four ("Enter this key instead").
    pub key: String,
    /// The QR code of the `otpauth://` URI, as an SVG element.
    pub qr_svg: String,
}

/// Where a user's TOTP stands.
#[derive(Debug, Clone)]
pub enum TotpStatus {
    Off,
    SettingUp(Enrollment),
    On { recovery_codes_left: i64 },
}

fn aad(user_id: &str) -> Vec<u8> {
    format!("postern:totp:{user_id}").into_bytes()
}

async fn secret_of(
    state: &AppState,
    user_id: &str,
) -> Result<Option<(TotpSecret, postern_store::TotpFactor)>, FactorError> {
    let Some(factor) = state.store.totp_factor(user_id).await? else { return Ok(None) };
    let plain = state.keys.kek().open(&factor.secret_sealed, &aad(user_id))?;
    Ok(Some((TotpSecret::from_bytes(plain.to_vec()), factor)))
}

fn enrollment(state: &AppState, user: &User, secret: &TotpSecret) -> Enrollment {
    let instance = url::Url::parse(&state.issuer).ok().and_then(|u| u.host_str().map(str::to_owned));
    let uri = secret.uri(instance.as_deref().unwrap_or("Postern"), &user.email);
    let qr_svg = qrcode::QrCode::new(uri.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .dark_color(qrcode::render::svg::Color("#000000"))
                .light_color(qrcode::render::svg::Color("#ffffff"))
                .build()
        })
        .unwrap_or_default();
    // The renderer's output starts with an XML declaration, which has no place inside HTML.
    let qr_svg = qr_svg.find("<svg").map_or(String::new(), |at| qr_svg[at..].to_owned());
    Enrollment { key: secret.display(), qr_svg }
}

/// Where the user's TOTP stands (with the QR code while it is being set up).
pub async fn status(state: &AppState, user: &User) -> Result<TotpStatus, FactorError> {
    Ok(match secret_of(state, &user.id).await? {
        None => TotpStatus::Off,
        Some((secret, factor)) if factor.enabled_at.is_none() => {
            TotpStatus::SettingUp(enrollment(state, user, &secret))
        }
        Some(_) => TotpStatus::On { recovery_codes_left: state.store.recovery_codes_left(&user.id).await? },
    })
}

/// Whether the user has TOTP turned on.
pub async fn has_totp(state: &AppState, user_id: &str) -> Result<bool, StoreError> {
    Ok(state.store.totp_factor(user_id).await?.is_some_and(|f| f.enabled_at.is_some()))
}

/// Starts setting up TOTP with a new secret (a set-up under way starts over).
pub async fn begin(state: &AppState, user: &User) -> Result<Enrollment, FactorError> {
    let secret = TotpSecret::generate(&mut postern_core::system::os_rng());
    let sealed = state.keys.kek().seal(secret.as_bytes(), &aad(&user.id), &mut postern_core::system::os_rng())?;
    if !state.store.begin_totp(&user.id, &sealed, state.now()).await? {
        return Err(FactorError::Enabled);
    }
    Ok(enrollment(state, user, &secret))
}

/// Turns TOTP on with its first code; returns the recovery codes, to show once.
pub async fn enable(state: &AppState, meta: &ClientMeta, user: &User, code: &str) -> Result<Vec<String>, FactorError> {
    let (secret, factor) = secret_of(state, &user.id).await?.ok_or(FactorError::NotStarted)?;
    if factor.enabled_at.is_some() {
        return Err(FactorError::Enabled);
    }
    let now = state.now();
    let step = throttled(state, meta, &user.id, || totp::verify(&secret, code, now, 0)).await?;
    let codes = new_recovery_codes();
    let hashes: Vec<TokenHash> = codes.iter().map(|c| recovery_hash(c)).collect();
    if !state.store.enable_totp(&user.id, step, &hashes, now).await? {
        return Err(FactorError::NotStarted);
    }
    crate::audit::by(state, meta, &user.id, "mfa.totp_enabled", &user.id).await;
    Ok(codes)
}

/// Checks a TOTP code of the user's enabled factor at sign-in.
pub async fn check_code(state: &AppState, meta: &ClientMeta, user_id: &str, code: &str) -> Result<(), FactorError> {
    let Some((secret, factor)) = secret_of(state, user_id).await? else { return Err(FactorError::NotStarted) };
    if factor.enabled_at.is_none() {
        return Err(FactorError::NotStarted);
    }
    let now = state.now();
    let mut replayed = false;
    let step = throttled(state, meta, user_id, || totp::verify(&secret, code, now, factor.last_step)).await;
    if let Ok(step) = step {
        // Two requests with one code: only one records the step.
        replayed = !state.store.use_totp_step(user_id, step).await?;
    }
    match step {
        Ok(_) if !replayed => Ok(()),
        Ok(_) => Err(FactorError::WrongCode),
        Err(e) => Err(e),
    }
}

/// Checks a recovery code at sign-in; it is used up, audited and emailed.
pub async fn use_recovery_code(
    state: &AppState,
    meta: &ClientMeta,
    user: &User,
    code: &str,
) -> Result<(), FactorError> {
    let now = state.now();
    let hash = recovery_hash(code);
    let attempt =
        state.node.throttle.begin(&format!("otp:{}", user.id), &meta.limit_key(), now).map_err(FactorError::TooMany)?;
    if !state.store.use_recovery_code(&user.id, &hash, now).await? {
        attempt.fail(now);
        return Err(FactorError::WrongCode);
    }
    attempt.succeed();
    crate::audit::by(state, meta, &user.id, "mfa.recovery_code_used", &user.id).await;
    let left = state.store.recovery_codes_left(&user.id).await?;
    state.mail.send(state.letters().recovery_code_used(&user.email, left));
    Ok(())
}

/// Turns TOTP off and deletes the recovery codes (the caller asked for the password again).
pub async fn disable(state: &AppState, meta: &ClientMeta, user: &User) -> Result<(), FactorError> {
    state.store.remove_totp(&user.id).await?;
    crate::audit::by(state, meta, &user.id, "mfa.totp_disabled", &user.id).await;
    Ok(())
}

/// New recovery codes for the user (the old ones stop working); returns them, to show once.
pub async fn regenerate_recovery_codes(
    state: &AppState,
    meta: &ClientMeta,
    user: &User,
) -> Result<Vec<String>, FactorError> {
    if !has_totp(state, &user.id).await? {
        return Err(FactorError::NotStarted);
    }
    let codes = new_recovery_codes();
    let hashes: Vec<TokenHash> = codes.iter().map(|c| recovery_hash(c)).collect();
    state.store.replace_recovery_codes(&user.id, &hashes, state.now()).await?;
    crate::audit::by(state, meta, &user.id, "mfa.recovery_codes_regenerated", &user.id).await;
    Ok(codes)
}

/// Runs `check` inside the per-account code throttle: the step it found, or why not.
async fn throttled(
    state: &AppState,
    meta: &ClientMeta,
    user_id: &str,
    check: impl FnOnce() -> Option<i64>,
) -> Result<i64, FactorError> {
    let now = state.now();
    let attempt =
        state.node.throttle.begin(&format!("otp:{user_id}"), &meta.limit_key(), now).map_err(FactorError::TooMany)?;
    match check() {
        Some(step) => {
            attempt.succeed();
            Ok(step)
        }
        None => {
            attempt.fail(now);
            Err(FactorError::WrongCode)
        }
    }
}

/// Ten codes of ten characters (about 50 bits each), in two groups: `k7wq2-9zcm4`.
fn new_recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = postern_core::system::os_rng();
    (0..RECOVERY_CODES)
        .map(|_| {
            let chars: String = (0..10)
                .map(|_| {
                    let i = rand_core::RngCore::next_u32(&mut rng) as usize % ALPHABET.len();
                    char::from(ALPHABET[i])
                })
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// A recovery code's stored hash: of the code lower-cased, without spaces and dashes.
fn recovery_hash(code: &str) -> TokenHash {
    let normal: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect();
    TokenHash::of(&format!("postern:recovery:{normal}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_ten_distinct_and_typed_any_way() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert_eq!(codes.iter().collect::<std::collections::BTreeSet<_>>().len(), RECOVERY_CODES);
        assert!(codes.iter().all(|c| c.len() == 11 && c.as_bytes()[5] == b'-'));
        let code = &codes[0];
        assert_eq!(recovery_hash(code), recovery_hash(&code.to_uppercase().replace('-', " ")));
        assert_ne!(recovery_hash(code), recovery_hash(&codes[1]));
    }
}
