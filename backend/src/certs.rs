//! PEM certificate files, as given by users for a profile's CA.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Counts the certificates in a PEM blob; errors say why it is not PEM.
pub fn count_pem_certs(data: &[u8]) -> Result<usize, String> {
    let mut n = 0;
    for cert in CertificateDer::pem_slice_iter(data) {
        cert.map_err(|e| format!("not a PEM certificate file: {e}"))?;
        n += 1;
    }
    Ok(n)
}

/// The certificates of a PEM file, errors naming the file.
pub fn load_pem_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("CA file {path}: {e}"))?;
    CertificateDer::pem_slice_iter(&data)
        .map(|c| c.map_err(|e| format!("CA file {path}: {e}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_parsing() {
        assert_eq!(count_pem_certs(b"").unwrap(), 0);
        assert!(
            count_pem_certs(
                b"-----BEGIN CERTIFICATE-----\nnot base64!!\n-----END CERTIFICATE-----\n"
            )
            .is_err()
        );
        assert!(
            load_pem_certs("/nonexistent/ca.pem")
                .unwrap_err()
                .contains("/nonexistent/ca.pem")
        );
    }
}
