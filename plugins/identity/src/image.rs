//! What an avatar's bytes are: the image types clients show, by their magic numbers.
//!
//! Why sniff: an avatar's declared type comes from whoever published it; a file a
//! user picks may be anything. Only what starts as a PNG, JPEG, GIF or WebP image
//! is published or kept.

/// The largest avatar published or kept (XEP-0084 suggests far smaller ones).
pub const MAX_BYTES: usize = 1024 * 1024;

/// The media type of an image, by its first bytes; `None`: not one we know.
pub fn media_type(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if data.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// The SHA-1 of `data`, hex: an avatar's id in XEP-0084 and XEP-0153.
pub fn sha1_hex(data: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `s` is a SHA-1 in hex (an id that can name a file).
pub fn is_hash(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_by_magic_and_hashes() {
        assert_eq!(media_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(media_type(&[0xff, 0xd8, 0xff, 0xe0]), Some("image/jpeg"));
        assert_eq!(media_type(b"GIF89a.."), Some("image/gif"));
        assert_eq!(media_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(media_type(b"hello, I am text"), None);
        assert_eq!(media_type(b""), None);
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert!(is_hash("a9993e364706816aba3e25717850c26c9cd0d89d"));
        assert!(!is_hash("../etc/passwd"));
    }
}
