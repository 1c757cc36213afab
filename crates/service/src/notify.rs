//! E-mail announcements (break-glass): the message, and one SMTP delivery with lettre.

use lettre::message::{Mailbox, header::ContentType};
use lettre::{Message, SmtpTransport, Transport};
use mamori_store::EmergencyRow;

/// Subject and body of the announcement of one emergency use.
pub fn emergency_mail(
    facility: &str,
    who: (&str, &str, &str),
    row: &EmergencyRow,
) -> (String, String) {
    let (login, name, role) = who;
    let what = if row.kind == "account" {
        "非常用アカウントが使われました".to_owned()
    } else {
        format!(
            "患者 {} の記録が非常時アクセスで開かれました",
            row.patient_id
        )
    };
    let subject = format!("【mamori {facility}】{what}（{name}）");
    let body = format!(
        "{facility} の mamori からのお知らせです。\n\n{what}。\n\n\
         職員: {name}（{login}、{role}）\n理由: {}\n開始: {}\n期限: {}\n\n\
         この使用は 監査 › 非常時アクセス で確認し、コメントを付けて閉じてください。\n\
         （このメールは自動送信です。記録は改ざん検知台帳にあります。）\n",
        row.reason,
        crate::ledger::audit::jst(row.started_at),
        crate::ledger::audit::jst(row.expires_at),
    );
    (subject, body)
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
