//! The certificate of the signaling service the app hosts: self-signed, for this machine's
//! address, made once and kept in the data directory (browsers that accepted it once are not
//! asked again while the address stays the same).

use std::net::IpAddr;
use std::path::Path;

use confab_signaling::TlsFiles;

/// The certificate and key files for serving at `ip`, made when missing or made for another
/// address; and the certificate (DER), for our own engine to trust.
pub fn hosted_certificate(data_dir: &Path, ip: IpAddr) -> Result<(TlsFiles, Vec<u8>), String> {
    let dir = data_dir.join("hosting");
    let files = TlsFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem") };
    let (der, made_for) = (dir.join("cert.der"), dir.join("address"));
    let current = std::fs::read_to_string(&made_for).ok();
    if current.as_deref() == Some(ip.to_string().as_str())
        && files.cert.exists()
        && files.key.exists()
        && let Ok(certificate) = std::fs::read(&der)
    {
        return Ok((files, certificate));
    }
    let names = vec![ip.to_string(), "localhost".to_owned()];
    let made = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
    let failed = |path: &Path, e: std::io::Error| format!("{}: {e}", path.display());
    std::fs::create_dir_all(&dir).map_err(|e| failed(&dir, e))?;
    // Until all is written, no address says the files are good.
    match std::fs::remove_file(&made_for) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(failed(&made_for, e)),
        _ => {}
    }
    write_private(&files.key, made.signing_key.serialize_pem().as_bytes())
        .map_err(|e| failed(&files.key, e))?;
    std::fs::write(&files.cert, made.cert.pem()).map_err(|e| failed(&files.cert, e))?;
    std::fs::write(&der, made.cert.der()).map_err(|e| failed(&der, e))?;
    std::fs::write(&made_for, ip.to_string()).map_err(|e| failed(&made_for, e))?;
    Ok((files, made.cert.der().to_vec()))
}

/// Writes the private key, readable by this user alone from the moment it exists.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    // A key left by an older run may have other permissions: made anew.
    let _ = std::fs::remove_file(path);
    options.open(path)?.write_all(bytes)
}
