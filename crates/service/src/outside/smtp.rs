//! E-mail over SMTP with lettre (blocking; callers run it off the async workers).

use lettre::message::{Mailbox, header::ContentType};
use lettre::{Message, SmtpTransport, Transport};

use super::{Failure, MailTransport};

pub struct Smtp;

impl MailTransport for Smtp {
    fn send(
        &self,
        smtp_url: &str,
        from: &str,
        to: &[String],
        mail: &(String, String),
    ) -> Result<usize, Failure> {
        send(smtp_url, from, to, mail)
    }
}

/// Sends `mail` to every address in `to` through `smtp_url`; the number of recipients on
/// success. Errors never include the URL (it may carry a password).
pub fn send(
    smtp_url: &str,
    from: &str,
    to: &[String],
    mail: &(String, String),
) -> Result<usize, String> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| format!("送信元アドレスが正しくありません: {e}"))?;
    let mut builder = Message::builder().from(from).subject(mail.0.clone());
    for addr in to {
        let mb: Mailbox = addr
            .parse()
            .map_err(|e| format!("宛先 {addr} が正しくありません: {e}"))?;
        builder = builder.to(mb);
    }
    let message = builder
        .header(ContentType::TEXT_PLAIN)
        .body(mail.1.clone())
        .map_err(|e| format!("メールを作れません: {e}"))?;
    let transport = SmtpTransport::from_url(smtp_url)
        .map_err(|_| {
            "emergency.smtp_url の形式が正しくありません（smtp://host:port など）".to_owned()
        })?
        .timeout(Some(std::time::Duration::from_secs(10)))
        .build();
    transport
        .send(&message)
        .map(|_| to.len())
        .map_err(|e| format!("メールを送れません: {e}"))
}
