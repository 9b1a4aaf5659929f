//! Outgoing email: a bounded queue and one worker that sends over SMTP (lettre, rustls).
//!
//! Sending never blocks a request: [`Outbox::send`] puts the message in the queue and returns;
//! a full queue refuses it (logged and counted in `/metrics`). The worker retries a failed
//! delivery with a doubling back-off, and at a graceful shutdown it gets one last try at
//! everything still queued before the server stops, so nothing accepted is dropped silently.
//!
//! With no `email.smtp_url` (zero configuration), nothing is sent: each message is written to
//! the log, labelled as not sent, so a person running `postern serve` locally still gets the
//! link. Every message has a plain-text and an HTML part.

use crate::config::EmailConfig;
use crate::metrics::Metrics;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Tries per message before it is given up (and counted as failed).
const ATTEMPTS: u32 = 5;
/// The first retry's delay; each next one doubles.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// One message, to one person.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("email.smtp_url is not a valid SMTP URL: {0}")]
    Url(String),
    #[error("email.from is not a valid address: {0}")]
    From(String),
}

/// How messages leave.
enum Delivery {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// No SMTP server configured: messages go to the log.
    Log,
}

/// The sending side, shared by every handler.
#[derive(Debug, Clone)]
pub struct Outbox {
    queue: mpsc::Sender<Mail>,
    metrics: Arc<Metrics>,
    /// Whether messages really leave (false: they are only logged).
    pub sends: bool,
}

/// The worker's side: run it with [`run`].
pub struct Worker {
    queue: mpsc::Receiver<Mail>,
    delivery: Delivery,
    from: Mailbox,
    metrics: Arc<Metrics>,
}

impl Outbox {
    /// The outbox and its worker, from the configuration (checked here, at start).
    pub fn new(config: &EmailConfig, metrics: Arc<Metrics>) -> Result<(Outbox, Worker), MailError> {
        let from: Mailbox = config.from.parse().map_err(|e| MailError::From(format!("{e}")))?;
        let delivery = match &config.smtp_url {
            Some(url) => Delivery::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|e| MailError::Url(e.to_string()))?
                    .timeout(Some(Duration::from_secs(10)))
                    .build(),
            ),
            None => Delivery::Log,
        };
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let sends = matches!(delivery, Delivery::Smtp(_));
        let outbox = Outbox { queue: tx, metrics: metrics.clone(), sends };
        Ok((outbox, Worker { queue: rx, delivery, from, metrics }))
    }

    /// Queues a message; `false` when the queue is full (the message is dropped, logged and
    /// counted). Never waits.
    pub fn send(&self, mail: Mail) -> bool {
        match self.queue.try_send(mail) {
            Ok(()) => true,
            Err(e) => {
                self.metrics.email_event("dropped");
                tracing::error!(reason = %e, "email not queued: the outbox is full or stopped");
                false
            }
        }
    }
}

impl Worker {
    fn message(&self, mail: &Mail) -> Result<Message, String> {
        let to: Mailbox = mail.to.parse().map_err(|e| format!("the address is not valid: {e}"))?;
        let body = MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone());
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .multipart(body)
            .map_err(|e| format!("the message could not be built: {e}"))
    }

    /// Delivers `mail`: a message that cannot be built, or that the server refuses for good
    /// (a 5xx answer), fails at once; anything else is retried with back-off. Once `stop` turns
    /// true, the next failure is the last (a shutdown does not wait out the back-off).
    async fn deliver(&self, mail: &Mail, stop: &mut watch::Receiver<bool>) {
        let transport = match &self.delivery {
            Delivery::Log => {
                tracing::warn!(
                    to = %mail.to,
                    subject = %mail.subject,
                    text = %mail.text,
                    "email NOT SENT (no email.smtp_url configured); its text follows"
                );
                self.metrics.email_event("logged");
                return;
            }
            Delivery::Smtp(transport) => transport,
        };
        let message = match self.message(mail) {
            Ok(m) => m,
            Err(e) => {
                self.metrics.email_event("failed");
                tracing::error!(error = %e, subject = %mail.subject, "email not sent");
                return;
            }
        };
        let mut delay = FIRST_RETRY;
        for attempt in 1..=ATTEMPTS {
            match transport.send(message.clone()).await {
                Ok(_) => {
                    self.metrics.email_event("sent");
                    return;
                }
                Err(e) if e.is_permanent() || *stop.borrow() || attempt == ATTEMPTS => {
                    self.metrics.email_event("failed");
                    tracing::error!(error = %e, attempts = attempt, subject = %mail.subject, "email could not be sent");
                    return;
                }
                Err(e) => {
                    self.metrics.email_event("retried");
                    tracing::warn!(error = %e, attempt, "email not sent yet; trying again");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        _ = stop.wait_for(|s| *s) => {}
                    }
                    delay *= 2;
                }
            }
        }
    }
}

/// Sends `mails` from a process that is not a server (the admin CLI): each gets the worker's
/// tries, and the call returns once all were delivered or given up. Returns how many left.
pub async fn send_now(config: &EmailConfig, mails: Vec<Mail>) -> Result<u64, MailError> {
    let metrics = Arc::new(Metrics::new());
    let (outbox, worker) = Outbox::new(config, metrics.clone())?;
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(run(worker, stopped));
    for mail in mails {
        outbox.send(mail);
    }
    drop(outbox);
    let _ = running.await;
    drop(stop);
    Ok(metrics.email_count("sent"))
}

/// Sends what is queued until `stop` turns true; then tries everything still queued once.
pub async fn run(mut worker: Worker, mut stop: watch::Receiver<bool>) {
    loop {
        let mail = tokio::select! {
            mail = worker.queue.recv() => mail,
            _ = stop.wait_for(|s| *s) => break,
        };
        match mail {
            Some(mail) => worker.deliver(&mail, &mut stop).await,
            None => return,
        }
    }
    worker.queue.close();
    while let Some(mail) = worker.queue.recv().await {
        worker.deliver(&mail, &mut stop).await;
    }
}
