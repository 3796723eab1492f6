//! Random identifiers: stanza ids, job ids, item ids, resource suffixes.
//!
//! One function, so no caller can ignore a failure of the system's random number
//! generator and hand out an all-zero, guessable id (five copies did, before). An id
//! must be unguessable: a stanza id that another entity can predict lets it forge
//! replies. perchd calls [`check`] at start, so a broken generator stops the daemon
//! before anything runs; after that a failure is a broken system, and [`random_hex`]
//! panics with that message rather than return a weak id.

use ring::rand::{SecureRandom, SystemRandom};

/// The system's random number generator failed.
#[derive(Debug, thiserror::Error)]
#[error("the system's random number generator failed")]
pub struct RandomError;

/// Fills `buf` from the system's generator.
pub fn fill(buf: &mut [u8]) -> Result<(), RandomError> {
    SystemRandom::new().fill(buf).map_err(|_| RandomError)
}

/// Checks once that the generator works (perchd does at start).
pub fn check() -> Result<(), RandomError> {
    fill(&mut [0u8; 16])
}

/// `bytes` random bytes in lower-case hex (`2 × bytes` characters).
///
/// # Panics
/// When the system's generator fails, which [`check`] rules out at start.
pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    if let Err(e) = fill(&mut b) {
        panic!("{e}: refusing to make a guessable id");
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_of_the_asked_length_and_differ() {
        check().unwrap();
        let a = random_hex(9);
        let b = random_hex(9);
        assert_eq!(a.len(), 18);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }
}
