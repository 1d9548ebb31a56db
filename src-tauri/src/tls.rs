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
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    write(&files.key, made.signing_key.serialize_pem())?;
    restrict_to_owner(&files.key)?;
    write(&files.cert, made.cert.pem())?;
    std::fs::write(&der, made.cert.der()).map_err(|e| format!("{}: {e}", der.display()))?;
    write(&made_for, ip.to_string())?;
    Ok((files, made.cert.der().to_vec()))
}

/// The private key is this user's alone.
#[cfg(unix)]
fn restrict_to_owner(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(not(unix))]
fn restrict_to_owner(_path: &Path) -> Result<(), String> {
    Ok(())
}
