//! Outgoing email through a real SMTP server (aiosmtpd, started by scripts/test, writing to a
//! Maildir the tests read), and the zero-configuration fallback to the log.

use crate::helpers::*;
use crate::mailbox::{Mailbox, unique_email};
use postern_server::mail::Mail;

fn mail(subject: &str) -> Mail {
    Mail {
        to: "ann@example.org".into(),
        subject: subject.into(),
        text: "Hello Ann,\n\nthis is the text part.\n".into(),
        html: "<p>Hello Ann,</p><p>this is the HTML part.</p>".into(),
    }
}

#[tokio::test]
async fn a_message_leaves_over_smtp_with_a_text_and_an_html_part() {
    let Some(db) = postern_testkit::fresh(postern_testkit::Kind::Sqlite).await else { return };
    let mut config = test_config(&db);
    let Some(mailbox) = Mailbox::configure(&mut config) else { return };
    let app = start(config).await.unwrap();
    assert!(app.state.mail.sends);
    let ann = unique_email("ann");
    assert!(app.state.mail.send(Mail { to: ann.clone(), ..mail("delivery") }));

    let message = mailbox.wait_for(&ann, 1).await;
    for part in [
        "From: Postern <postern@example.org>",
        &format!("To: {ann}"),
        "Subject: delivery",
        "multipart/alternative",
        "text/plain",
        "text/html",
    ] {
        assert!(message.contains(part), "{part} in {message}");
    }
    assert!(message.contains("this is the text part.") && message.contains("this is the HTML part."), "{message}");
    // The SMTP server writes the message before it answers; the worker counts it after.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let metrics = app.get("/metrics").await.text().await.unwrap();
        if metrics.contains("postern_email_events_total{event=\"sent\"} 1") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
    }

    // A message that cannot be addressed fails at once, counted, and is not sent.
    assert!(app.state.mail.send(Mail { to: "not an address".into(), ..mail("unaddressed") }));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let metrics = app.get("/metrics").await.text().await.unwrap();
        if metrics.contains("postern_email_events_total{event=\"failed\"} 1") {
            assert!(metrics.contains("postern_email_events_total{event=\"sent\"} 1"), "{metrics}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
    }
}

#[tokio::test]
async fn without_an_smtp_server_messages_are_logged_not_sent() {
    let Some(db) = postern_testkit::fresh(postern_testkit::Kind::Sqlite).await else { return };
    let app = start(test_config(&db)).await.unwrap();
    assert!(!app.state.mail.sends, "zero configuration sends nothing");
    assert!(app.state.mail.send(mail("logged")));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let metrics = app.get("/metrics").await.text().await.unwrap();
        if metrics.contains("postern_email_events_total{event=\"logged\"} 1") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
    }
}

#[tokio::test]
async fn a_bad_smtp_url_or_from_address_stops_the_start() {
    let Some(db) = postern_testkit::fresh(postern_testkit::Kind::Sqlite).await else { return };
    let mut config = test_config(&db);
    config.email.smtp_url = Some(postern_server::config::Secret::new("http://not-smtp"));
    let e = start(config).await.err().unwrap().to_string();
    assert!(e.contains("email.smtp_url"), "{e}");
    let mut config = test_config(&db);
    config.email.from = "not an address".into();
    let e = start(config).await.err().unwrap().to_string();
    assert!(e.contains("email.from"), "{e}");
}

#[tokio::test]
async fn an_unreachable_smtp_server_is_retried_and_requests_never_wait_for_it() {
    let Some(db) = postern_testkit::fresh(postern_testkit::Kind::Sqlite).await else { return };
    // A port nothing listens on: taken, then freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut config = test_config(&db);
    config.email.smtp_url = Some(postern_server::config::Secret::new(format!("smtp://127.0.0.1:{port}")));
    let app = start(config).await.unwrap();
    assert!(app.state.mail.send(mail("unreachable")), "queued at once, whatever the server");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let metrics = app.get("/metrics").await.text().await.unwrap();
        if metrics.contains("postern_email_events_total{event=\"retried\"}") {
            assert!(!metrics.contains("event=\"sent\""), "{metrics}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
    }
}
