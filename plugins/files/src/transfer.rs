//! What uploads and downloads share: progress reporting while bytes move, the
//! SHA-256 of what moved, file names from URLs and media types from names.
//!
//! Progress is sampled, not pushed per chunk: the transfer bumps a counter, and the
//! job's progress record and the `file_progress` signal go out at most every
//! [`TICK`] (a record is a database write) and once at the end.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use perch_actions::files::{FileProgress, Progress};
use perch_plugin_api::{Host, JobHandle, Signals};
use serde_json::json;

/// How often progress is reported.
pub const TICK: Duration = Duration::from_millis(500);

/// Bytes read from or written to disk at a time.
pub const CHUNK: usize = 64 * 1024;

/// One transfer's identity, for its reports.
#[derive(Debug, Clone)]
pub struct Meter {
    pub profile: String,
    pub direction: &'static str,
    pub url: String,
    pub total: Option<u64>,
    /// Bytes moved so far.
    pub done: Arc<AtomicU64>,
}

impl Meter {
    pub fn new(profile: &str, direction: &'static str, url: &str, total: Option<u64>) -> Self {
        Self {
            profile: profile.to_owned(),
            direction,
            url: url.to_owned(),
            total,
            done: Arc::new(AtomicU64::new(0)),
        }
    }

    async fn report(&self, host: &dyn Host, job: &JobHandle, done: u64) {
        let percent = self
            .total
            .filter(|t| *t > 0)
            .map(|t| (done as f64 * 100.0 / t as f64).min(100.0));
        let p = Progress {
            job: job.id().to_owned(),
            direction: self.direction.to_owned(),
            url: self.url.clone(),
            done,
            total: self.total,
        };
        host.signal(FileProgress, &self.profile, &p);
        job.progress(
            self.direction,
            percent,
            json!({"done": done, "total": self.total}),
        )
        .await;
    }

    /// Runs `work`, reporting progress every [`TICK`] while the count moves, and
    /// once more at its end.
    pub async fn drive<T>(
        &self,
        host: &dyn Host,
        job: &JobHandle,
        work: impl Future<Output = T>,
    ) -> T {
        tokio::pin!(work);
        let mut tick = tokio::time::interval(TICK);
        let mut last = None;
        let out = loop {
            tokio::select! {
                out = &mut work => break out,
                _ = tick.tick() => {
                    let done = self.done.load(Ordering::Relaxed);
                    if last != Some(done) {
                        last = Some(done);
                        self.report(host, job, done).await;
                    }
                }
            }
        };
        let done = self.done.load(Ordering::Relaxed);
        if last != Some(done) {
            self.report(host, job, done).await;
        }
        out
    }
}

/// A running SHA-256, shared with the stream that feeds it.
pub type Digest = Arc<std::sync::Mutex<ring::digest::Context>>;

pub fn digest() -> Digest {
    Arc::new(std::sync::Mutex::new(ring::digest::Context::new(
        &ring::digest::SHA256,
    )))
}

/// The hex SHA-256 of what went through `d`.
pub fn hex(d: &Digest) -> String {
    let ctx = d.lock().unwrap_or_else(|e| e.into_inner()).clone();
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Decodes `%XX` escapes (a bad one stays as it is); invalid UTF-8 is replaced.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hexval = |at: usize| b.get(at).and_then(|c| (*c as char).to_digit(16));
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (hexval(i + 1), hexval(i + 2))
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A safe file name: no path separators, no leading dots, no control characters;
/// `file` when nothing is left.
pub fn safe_name(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.');
    if trimmed.is_empty() {
        "file".to_owned()
    } else {
        trimmed.chars().take(200).collect()
    }
}

/// The file name a URL ends with, decoded and made safe.
pub fn name_of_url(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let after_scheme = path.split_once("://").map_or(path, |(_, r)| r);
    let last = after_scheme
        .split_once('/')
        .map_or("", |(_, p)| p.rsplit('/').next().unwrap_or(""));
    safe_name(&percent_decode(last))
}

/// The media type of a file, from its name's extension.
pub fn media_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "txt" | "log" => "text/plain",
        "html" | "htm" => "text/html",
        "pdf" => "application/pdf",
        "json" => "application/json",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "m4a" => "audio/mp4",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_urls_safely() {
        assert_eq!(
            name_of_url("https://h:1/share/ab/tr%C3%A8s%20cool.jpg?x=1"),
            "très cool.jpg"
        );
        assert_eq!(
            name_of_url("https://h/a/..%2F..%2Fetc%2Fpasswd"),
            "_.._etc_passwd"
        );
        assert_eq!(name_of_url("https://h/"), "file");
        assert_eq!(name_of_url("https://h"), "file");
        assert_eq!(name_of_url("https://h/x/%zz"), "%zz");
        assert_eq!(media_type("A.PNG"), "image/png");
        assert_eq!(media_type("noext"), "application/octet-stream");
    }

    #[test]
    fn the_digest_is_sha256() {
        let d = digest();
        d.lock().expect("lock").update(b"abc");
        assert_eq!(
            hex(&d),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
