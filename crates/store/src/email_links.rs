//! Links sent by email (verify an address, reset a password, accept an invitation, confirm a
//! new address). The link's token is random; only its SHA-256 hash is stored. A link is used
//! with one conditional `UPDATE … RETURNING`, so two clicks racing each other cannot both
//! succeed, and what the link does happens in the same transaction.

use crate::users::Disabled;
use crate::{Result, Store, UserId, sql};
use postern_core::secret::TokenHash;

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Proves the user's address (24 hours).
    Verify,
    /// Sets a new password (30 minutes).
    Reset,
    /// Lets an invited person set their name and password (7 days).
    Invite,
    /// Confirms a new address the user asked for.
    EmailChange,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Verify => "verify",
            LinkPurpose::Reset => "reset",
            LinkPurpose::Invite => "invite",
            LinkPurpose::EmailChange => "email_change",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewEmailLink<'a> {
    pub hash: TokenHash,
    pub purpose: LinkPurpose,
    pub user_id: &'a str,
    /// The address the link is sent to.
    pub email: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// A link as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EmailLink {
    pub purpose: String,
    pub user_id: UserId,
    pub email: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// An address change that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailChanged {
    pub user_id: UserId,
    pub old: String,
    pub new: String,
}

/// A password reset that happened: whose, and what went on the deny-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redeemed {
    pub user_id: UserId,
    pub email: String,
    pub denied: Disabled,
}

impl Store {
    pub async fn create_email_link(&self, link: &NewEmailLink<'_>) -> Result<()> {
        on_db!(self, p => sqlx::query(sql::EMAIL_LINK_INSERT)
            .bind(link.hash.as_bytes()).bind(link.purpose.as_str()).bind(link.user_id).bind(link.email)
            .bind(link.now).bind(link.expires_at)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The unused, unexpired link with this hash and purpose (to show its page).
    pub async fn email_link(&self, hash: &TokenHash, purpose: LinkPurpose, now: i64) -> Result<Option<EmailLink>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::EMAIL_LINK_GET)
            .bind(hash.as_bytes()).bind(purpose.as_str()).bind(now).fetch_optional(p).await)?)
    }

    /// Uses a verification link: the user's address is verified if it is still the one the
    /// link was sent to. Returns the link, or `None` for an unknown, used or expired one.
    pub async fn redeem_verification(&self, hash: &TokenHash, now: i64) -> Result<Option<EmailLink>> {
        let redeemed = in_tx!(self, tx => {
            let link: Option<EmailLink> = sqlx::query_as(sql::EMAIL_LINK_CONSUME)
                .bind(hash.as_bytes()).bind(LinkPurpose::Verify.as_str()).bind(now).fetch_optional(&mut *tx).await?;
            if let Some(link) = &link {
                sqlx::query(sql::USER_VERIFY_EMAIL).bind(link.user_id.as_str()).bind(now).bind(&link.email).execute(&mut *tx).await?;
            }
            link
        });
        Ok(redeemed)
    }

    /// Uses a password-reset link, in one transaction: the new password set and the address
    /// verified (the link reached it), every session ended, every refresh family revoked with
    /// the access tokens issued in it, every opaque access token and code in flight deleted,
    /// every JWT access token issued until now refused, and the user's other reset links
    /// spent. `None` (and nothing changed) for an unknown, used or expired link, a disabled
    /// user, or an address that is no longer the user's.
    pub async fn redeem_password_reset(
        &self,
        hash: &TokenHash,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<Redeemed>> {
        let reset = LinkPurpose::Reset.as_str();
        let redeemed = in_tx!(self, tx => {
            let link: Option<EmailLink> = sqlx::query_as(sql::EMAIL_LINK_CONSUME)
                .bind(hash.as_bytes()).bind(reset).bind(now).fetch_optional(&mut *tx).await?;
            let Some(link) = link else { return Ok(None) };
            let id = link.user_id.as_str();
            let set = sqlx::query(sql::USER_RESET_PASSWORD).bind(id).bind(password_hash).bind(now).bind(&link.email)
                .execute(&mut *tx).await?.rows_affected();
            if set == 0 {
                return Ok(None);
            }
            let revoked = cut_off!(tx, id, &[] as &[u8], now);
            sqlx::query(sql::USER_ACCESS_TOKENS_DELETE).bind(id).execute(&mut *tx).await?;
            sqlx::query(sql::USER_CODES_DELETE).bind(id).execute(&mut *tx).await?;
            let until = refuse_subject!(tx, id, now);
            sqlx::query(sql::EMAIL_LINKS_SPEND).bind(id).bind(reset).bind(now).execute(&mut *tx).await?;
            Some(Redeemed {
                user_id: link.user_id.clone(),
                email: link.email,
                denied: Disabled { revoked_jwts: revoked, subject_refused_until: until },
            })
        });
        Ok(redeemed)
    }

    /// Uses an invitation link: the invited account gets its name and password, and its
    /// address is verified (the link reached it). `None` (nothing changed) for an unknown,
    /// used or expired link, or an account that has a password already or is disabled.
    pub async fn redeem_invitation(
        &self,
        hash: &TokenHash,
        display_name: Option<&str>,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<UserId>> {
        let invite = LinkPurpose::Invite.as_str();
        let accepted = in_tx!(self, tx => {
            let link: Option<EmailLink> = sqlx::query_as(sql::EMAIL_LINK_CONSUME)
                .bind(hash.as_bytes()).bind(invite).bind(now).fetch_optional(&mut *tx).await?;
            let Some(link) = link else { return Ok(None) };
            let set = sqlx::query(sql::USER_ACCEPT_INVITATION)
                .bind(link.user_id.as_str()).bind(password_hash).bind(display_name).bind(now).bind(&link.email)
                .execute(&mut *tx).await?.rows_affected();
            if set == 0 {
                return Ok(None);
            }
            sqlx::query(sql::EMAIL_LINKS_SPEND).bind(link.user_id.as_str()).bind(invite).bind(now).execute(&mut *tx).await?;
            Some(link.user_id)
        });
        Ok(accepted)
    }

    /// Uses a link confirming a new address: the user's address becomes the one the link was
    /// sent to, verified. `None` for an unknown, used or expired link or a disabled user;
    /// `Conflict("user")` (and nothing changed) when another account has the address now.
    pub async fn redeem_email_change(&self, hash: &TokenHash, now: i64) -> Result<Option<EmailChanged>> {
        let change = LinkPurpose::EmailChange.as_str();
        let changed = in_tx!(self, tx => {
            let link: Option<EmailLink> = sqlx::query_as(sql::EMAIL_LINK_CONSUME)
                .bind(hash.as_bytes()).bind(change).bind(now).fetch_optional(&mut *tx).await?;
            let Some(link) = link else { return Ok(None) };
            let old: Option<String> = sqlx::query_scalar(sql::USER_EMAIL).bind(link.user_id.as_str()).fetch_optional(&mut *tx).await?;
            let Some(old) = old else { return Ok(None) };
            sqlx::query(sql::USER_SET_EMAIL)
                .bind(link.user_id.as_str()).bind(&link.email).bind(link.email.to_lowercase()).bind(now)
                .execute(&mut *tx).await.map_err(crate::StoreError::conflict_as("user"))?;
            sqlx::query(sql::EMAIL_LINKS_SPEND).bind(link.user_id.as_str()).bind(change).bind(now).execute(&mut *tx).await?;
            Some(EmailChanged { user_id: link.user_id, old, new: link.email })
        });
        Ok(changed)
    }
}
