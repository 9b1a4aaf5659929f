//! The emails Postern sends, worded once. Each names the instance (the issuer's host), says
//! what happened, gives at most one link, and says what to do if the person did not ask for
//! it. Each becomes a [`Mail`] with a plain-text and an HTML part (`postern_pages::Letter`).

use crate::mail::Mail;
use postern_pages::{Action, Letter, LetterHtml, LetterText, render};

/// Who the messages are from, and where their links point.
#[derive(Debug, Clone)]
pub struct Sender {
    /// The issuer, without a trailing slash: links are `{issuer}{path}`.
    issuer: String,
    /// The issuer's host, naming the instance in every message.
    instance: String,
}

impl Sender {
    pub fn new(issuer: &str) -> Self {
        let instance = url::Url::parse(issuer)
            .ok()
            .and_then(|u| {
                u.host_str().map(|h| match u.port() {
                    Some(port) => format!("{h}:{port}"),
                    None => h.to_owned(),
                })
            })
            .unwrap_or_else(|| issuer.to_owned());
        Sender { issuer: issuer.trim_end_matches('/').to_owned(), instance }
    }

    fn link(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    fn mail(&self, to: &str, letter: Letter) -> Mail {
        Mail {
            to: to.to_owned(),
            subject: letter.subject.clone(),
            text: render(&LetterText { letter: &letter }),
            html: render(&LetterHtml { letter: &letter }),
        }
    }

    fn letter(&self, subject: String, paragraphs: Vec<String>, action: Option<Action>, unasked: &str) -> Letter {
        Letter {
            instance: self.instance.clone(),
            subject,
            greeting: "Hello,".to_owned(),
            paragraphs,
            action,
            after: Vec::new(),
            unasked: unasked.to_owned(),
        }
    }

    /// The link to set a new password (`token` is the link's secret).
    pub fn password_reset(&self, to: &str, token: &str, minutes: i64) -> Mail {
        let letter = self.letter(
            format!("Reset your password for {}", self.instance),
            vec![
                format!("Someone asked to reset the password of the account {to} at {}.", self.instance),
                format!("The link below works once, for the next {minutes} minutes."),
            ],
            Some(Action {
                label: "Set a new password".into(),
                url: self.link(&format!("/password/reset?token={token}")),
            }),
            "If you did not ask for this, ignore this message: your password stays as it is. \
             If it keeps happening, tell your administrator.",
        );
        self.mail(to, letter)
    }

    /// After a password was set: every session and app was signed out.
    pub fn password_changed(&self, to: &str) -> Mail {
        let letter = self.letter(
            format!("Your password for {} was changed", self.instance),
            vec![
                format!("The password of the account {to} at {} was just changed.", self.instance),
                "Every browser and app that was signed in with the old password has been signed out.".to_owned(),
            ],
            None,
            &format!(
                "If you did not change it, someone else may have access to your email: secure it, then reset \
                 your password at {} and tell your administrator.",
                self.link("/password/forgot")
            ),
        );
        self.mail(to, letter)
    }
}

impl Sender {
    /// The link that proves `to` is the person's address.
    pub fn verify_email(&self, to: &str, token: &str, hours: i64) -> Mail {
        let letter = self.letter(
            format!("Confirm your email address for {}", self.instance),
            vec![
                format!("Confirm that {to} is your address for your account at {}.", self.instance),
                format!("The link below works once, for the next {hours} hours."),
            ],
            Some(Action {
                label: "Confirm your email address".into(),
                url: self.link(&format!("/email/verify?token={token}")),
            }),
            "If you did not make an account or ask for this, ignore this message: nothing happens without the link.",
        );
        self.mail(to, letter)
    }

    /// Someone tried to register an address that already has an account.
    pub fn already_registered(&self, to: &str) -> Mail {
        let letter = self.letter(
            format!("Someone tried to make an account with your address at {}", self.instance),
            vec![
                format!("Someone tried to make a new account at {} with {to}, which already has one.", self.instance),
                "If it was you, sign in instead, or set a new password if you have forgotten it.".to_owned(),
            ],
            Some(Action { label: "Sign in".into(), url: self.link("/login") }),
            &format!(
                "If it was not you, ignore this message: no account was made and yours is unchanged. \
                 A forgotten password is reset at {}.",
                self.link("/password/forgot")
            ),
        );
        self.mail(to, letter)
    }
}

impl Sender {
    /// An invitation: the link to set a name and password.
    pub fn invitation(&self, to: &str, token: &str, days: i64) -> Mail {
        let letter = self.letter(
            format!("You are invited to {}", self.instance),
            vec![
                format!("An administrator of {} made an account for {to}.", self.instance),
                format!("Choose your name and password to start using it. The link works once, for {days} days."),
            ],
            Some(Action {
                label: "Accept the invitation".into(),
                url: self.link(&format!("/invitation?token={token}")),
            }),
            "If you did not expect this, ignore this message: the account stays unused without the link.",
        );
        self.mail(to, letter)
    }

    /// The link confirming a new address, sent to that address.
    pub fn confirm_new_email(&self, to: &str, old: &str, token: &str, hours: i64) -> Mail {
        let letter = self.letter(
            format!("Confirm your new email address for {}", self.instance),
            vec![
                format!("The account {old} at {} asked to use {to} from now on.", self.instance),
                format!("The change happens once you follow the link below; it works once, for {hours} hours."),
            ],
            Some(Action { label: "Use this address".into(), url: self.link(&format!("/email/change?token={token}")) }),
            "If you did not ask for this, ignore this message: nothing changes without the link.",
        );
        self.mail(to, letter)
    }

    /// Tells the old address that the account's address changed.
    pub fn email_changed(&self, to: &str, new: &str) -> Mail {
        let letter = self.letter(
            format!("Your email address for {} was changed", self.instance),
            vec![format!(
                "The account that used {to} at {} uses {new} from now on; messages about it go there.",
                self.instance
            )],
            None,
            "If you did not change it, someone else may have access to your account: tell your administrator now.",
        );
        self.mail(to, letter)
    }

    /// A recovery code was used to sign in.
    pub fn recovery_code_used(&self, to: &str, left: i64) -> Mail {
        let letter = self.letter(
            format!("A recovery code was used to sign in to {}", self.instance),
            vec![
                format!("Someone signed in to the account {to} at {} with one of its recovery codes.", self.instance),
                format!(
                    "{left} unused recovery codes are left. Make new ones on your account page if you are running low."
                ),
            ],
            None,
            "If it was not you, someone has your password and a recovery code: reset your password now and tell \
             your administrator.",
        );
        self.mail(to, letter)
    }

    /// After an account was deleted.
    pub fn account_deleted(&self, to: &str) -> Mail {
        let letter = self.letter(
            format!("Your account at {} was deleted", self.instance),
            vec![
                format!("The account {to} at {} was deleted.", self.instance),
                "Its sessions, tokens, API keys and service accounts no longer work.".to_owned(),
            ],
            None,
            "If you did not ask for this, tell your administrator now.",
        );
        self.mail(to, letter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_instance_and_what_to_do_if_unasked() {
        let sender = Sender::new("https://id.example.org/");
        let mail = sender.password_reset("ann@example.org", "TOKEN", 30);
        assert_eq!(mail.subject, "Reset your password for id.example.org");
        for part in [&mail.text, &mail.html] {
            assert!(part.contains("https://id.example.org/password/reset?token=TOKEN"), "{part}");
            assert!(part.contains("If you did not ask for this"), "{part}");
            assert!(part.contains("30 minutes"), "{part}");
        }
        let local = Sender::new("http://127.0.0.1:8080");
        assert!(local.password_changed("ann@example.org").text.contains("Postern at 127.0.0.1:8080"));
    }
}
