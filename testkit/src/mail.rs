//! What the SMTP sink (`scripts/smtp_sink.py`) received: one `.eml` file per accepted
//! message in `TEST_SMTP_MAILDIR/new`, with the sink's `X-Received-At` stamp on top.

use std::{collections::HashMap, path::PathBuf};

/// One received email, reduced to what the tests check.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// `Message-ID` header.
    pub message_id: Option<String>,
    /// `X-Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// `To` header.
    pub to: Option<String>,
    /// `Subject` header.
    pub subject: Option<String>,
    /// The sink's receive time, seconds since the epoch.
    pub received_at: Option<f64>,
}

/// The sink's directory.
pub fn maildir() -> PathBuf {
    PathBuf::from(crate::stack_var("TEST_SMTP_MAILDIR")).join("new")
}

/// Every email received so far.
///
/// # Errors
/// When the directory cannot be read.
pub fn all() -> anyhow::Result<Vec<ReceivedMail>> {
    Ok(Mailbox::default().refresh()?.into_iter().cloned().collect())
}

fn parse(raw: &[u8]) -> anyhow::Result<ReceivedMail> {
    use mailparse::MailHeaderMap;
    let (headers, _) = mailparse::parse_headers(raw)?;
    let get = |name: &str| headers.get_first_value(name);
    Ok(ReceivedMail {
        message_id: get("Message-ID"),
        idempotency_key: get("X-Idempotency-Key"),
        to: get("To"),
        subject: get("Subject"),
        received_at: get("X-Received-At").and_then(|v| v.trim().parse().ok()),
    })
}

/// Emails received for each idempotency key accepted by `keep`.
///
/// # Errors
/// When the directory cannot be read.
pub fn count_by_key(keep: impl Fn(&str) -> bool) -> anyhow::Result<HashMap<String, usize>> {
    let mut counts = HashMap::new();
    for mail in all()? {
        if let Some(key) = mail.idempotency_key.filter(|k| keep(k)) {
            *counts.entry(key).or_default() += 1;
        }
    }
    Ok(counts)
}

/// Emails whose idempotency key is exactly `key`.
///
/// # Errors
/// When the directory cannot be read.
pub fn for_key(key: &str) -> anyhow::Result<Vec<ReceivedMail>> {
    Ok(all()?
        .into_iter()
        .filter(|m| m.idempotency_key.as_deref() == Some(key))
        .collect())
}

/// An incremental reader of the sink's directory: each file is parsed once, so polling
/// a mailbox of thousands of emails stays cheap.
#[derive(Debug, Default)]
pub struct Mailbox {
    seen: HashMap<std::ffi::OsString, ReceivedMail>,
}

impl Mailbox {
    /// Reads the files that arrived since the last call; returns every email so far.
    ///
    /// # Errors
    /// When the directory cannot be read.
    pub fn refresh(&mut self) -> anyhow::Result<Vec<&ReceivedMail>> {
        let dir = maildir();
        if dir.exists() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let name = entry.file_name();
                if self.seen.contains_key(&name) || !name.to_string_lossy().ends_with(".eml") {
                    continue;
                }
                self.seen
                    .insert(name, parse(&std::fs::read(entry.path())?)?);
            }
        }
        Ok(self.seen.values().collect())
    }
}
