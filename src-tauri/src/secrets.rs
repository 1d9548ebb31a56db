//! Identity and secrets in the OS keyring: this install's author id, the display name, and the
//! keys of recent meetings. One store per OS (keyring-core): the Secret Service (over zbus) with
//! the kernel's keyutils as the fallback on Linux, the Keychain on macOS, the Credential Manager
//! on Windows. Without any, the app still works for the session and says why nothing is kept.

use std::path::Path;
use std::sync::Arc;

use keyring_core::{CredentialStore, Entry, Error};

/// Every entry is filed under this service.
const SERVICE: &str = "app.confab.desktop";
const AUTHOR_ID: &str = "author-id";
const DISPLAY_NAME: &str = "display-name";

/// Why nothing can be kept in the keyring; shown to the user as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no keyring to keep your identity and meeting keys in ({0}); they last this session only")]
pub struct NoKeyring(String);

/// Which store to use: `CONFAB_KEYRING` = `auto` (default), or one of the store names, or `none`.
fn wanted_store() -> String {
    std::env::var("CONFAB_KEYRING").unwrap_or_else(|_| "auto".into())
}

/// An open keyring, checked to take writes.
#[derive(Clone)]
pub struct Keyring {
    store: Arc<CredentialStore>,
    /// Which store it is (`secret-service`, `keyutils`, `keychain`, `windows`).
    pub kind: &'static str,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl Keyring {
    /// The first store of this OS that takes a write (a Secret Service that answers may still
    /// have its collection locked), tried in order. Blocking: call it off the UI thread.
    pub fn open() -> Result<Self, NoKeyring> {
        let wanted = wanted_store();
        if wanted == "none" {
            return Err(NoKeyring("turned off with CONFAB_KEYRING=none".into()));
        }
        let mut problems = Vec::new();
        for (kind, open) in candidates() {
            if wanted != "auto" && wanted != kind {
                continue;
            }
            match open().and_then(|store| Self::checked(store, kind)) {
                Ok(keyring) => return Ok(keyring),
                Err(e) => problems.push(format!("{kind}: {e}")),
            }
        }
        if problems.is_empty() {
            problems.push(format!("CONFAB_KEYRING={wanted} names no store of this system"));
        }
        Err(NoKeyring(problems.join("; ")))
    }

    fn checked(store: Arc<CredentialStore>, kind: &'static str) -> Result<Self, Error> {
        let keyring = Self { store, kind };
        let probe = keyring.entry("probe")?;
        probe.set_password("a keyring that takes writes")?;
        probe.delete_credential()?;
        Ok(keyring)
    }

    fn entry(&self, user: &str) -> Result<Entry, Error> {
        Entry::new_in_store(&self.store, SERVICE, user)
    }

    pub fn get(&self, what: &str) -> Result<Option<String>, Error> {
        match self.entry(what)?.get_password() {
            Ok(value) => Ok(Some(value)),
            Err(Error::NoEntry) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn set(&self, what: &str, value: &str) -> Result<(), Error> {
        self.entry(what)?.set_password(value)
    }

    pub fn delete(&self, what: &str) -> Result<(), Error> {
        match self.entry(what)?.delete_credential() {
            Ok(()) | Err(Error::NoEntry) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

type Opener = fn() -> Result<Arc<CredentialStore>, Error>;

#[cfg(target_os = "linux")]
fn candidates() -> Vec<(&'static str, Opener)> {
    vec![
        ("secret-service", || {
            Ok(zbus_secret_service_keyring_store::Store::new()? as Arc<CredentialStore>)
        }),
        ("keyutils", || Ok(linux_keyutils_keyring_store::Store::new()? as Arc<CredentialStore>)),
    ]
}

#[cfg(target_os = "macos")]
fn candidates() -> Vec<(&'static str, Opener)> {
    vec![("keychain", || {
        Ok(apple_native_keyring_store::keychain::Store::new()? as Arc<CredentialStore>)
    })]
}

#[cfg(target_os = "windows")]
fn candidates() -> Vec<(&'static str, Opener)> {
    vec![("windows", || Ok(windows_native_keyring_store::Store::new()? as Arc<CredentialStore>))]
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
fn candidates() -> Vec<(&'static str, Opener)> {
    Vec::new()
}

/// Who this install is, as kept in the keyring (or made up for the session without one).
#[derive(Debug, Clone)]
pub struct Identity {
    pub author_id: String,
    pub name: Option<String>,
    /// Why nothing is kept, when there is no keyring.
    pub problem: Option<String>,
    keyring: Option<Keyring>,
}

/// How long the keyring may take to answer before the app goes on without it: a Secret Service
/// whose collection is locked may wait on a password prompt nobody sees.
pub const KEYRING_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

impl Identity {
    /// [`Identity::load`] on a thread of its own, given up after [`KEYRING_DEADLINE`].
    pub async fn load_in_time(data_dir: &Path) -> Self {
        let dir = data_dir.to_owned();
        let loading = tauri::async_runtime::spawn_blocking(move || Self::load(&dir));
        match tokio::time::timeout(KEYRING_DEADLINE, loading).await {
            Ok(Ok(identity)) => identity,
            Ok(Err(e)) => Self::for_session(data_dir, format!("no keyring: {e}")),
            Err(_) => Self::for_session(
                data_dir,
                NoKeyring(format!(
                    "the keyring did not answer within {} s (is it locked?)",
                    KEYRING_DEADLINE.as_secs()
                ))
                .to_string(),
            ),
        }
    }

    /// Loads this install's identity, creating its author id on first use. Blocking. Without a
    /// keyring, the author id is the one the `confab` CLI keeps in `data_dir`.
    pub fn load(data_dir: &Path) -> Self {
        let keyring = match Keyring::open() {
            Ok(keyring) => keyring,
            Err(e) => return Self::for_session(data_dir, e.to_string()),
        };
        let stored = keyring.get(AUTHOR_ID).and_then(|id| match id {
            Some(id) if confab_proto::document::is_uuid_v4(&id) => Ok(id),
            _ => {
                let id = confab_core::engine::new_uuid();
                keyring.set(AUTHOR_ID, &id).map(|()| id)
            }
        });
        let author_id = match stored {
            Ok(id) => id,
            Err(e) => return Self::for_session(data_dir, NoKeyring(e.to_string()).to_string()),
        };
        let name = keyring.get(DISPLAY_NAME).ok().flatten();
        // The kernel's keyring is memory: what it holds is gone at logout.
        let problem = (keyring.kind == "keyutils").then(|| {
            "your name and meeting keys are kept in the kernel's keyring, which forgets them when \
             you log out: no Secret Service (GNOME Keyring, KWallet) answered"
                .to_owned()
        });
        Self { author_id, name, problem, keyring: Some(keyring) }
    }

    fn for_session(data_dir: &Path, problem: String) -> Self {
        tracing::warn!(%problem, "identity for this session only");
        let author_id = confab_core::setup::author_id(data_dir)
            .unwrap_or_else(|_| confab_core::engine::new_uuid());
        Self { author_id, name: None, problem: Some(problem), keyring: None }
    }

    /// Remembers the display name (for this session only without a keyring).
    pub fn set_name(&mut self, name: &str) -> Result<(), Error> {
        self.name = Some(name.to_owned());
        match &self.keyring {
            Some(keyring) => keyring.set(DISPLAY_NAME, name),
            None => Ok(()),
        }
    }

    /// The access token kept for the signaling server at `server` (see `MeetingLink::server`), if
    /// any. Blocking.
    pub fn access_token(&self, server: &str) -> Option<String> {
        self.keyring.as_ref()?.get(&format!("access-token:{server}")).ok().flatten()
    }

    /// Keeps `token` for `server`, or forgets the one kept when `None`. Blocking. Without a
    /// keyring nothing is kept here (the app holds it for the session).
    pub fn keep_access_token(&self, server: &str, token: Option<&str>) -> Result<(), Error> {
        let (Some(keyring), what) = (&self.keyring, format!("access-token:{server}")) else {
            return Ok(());
        };
        match token {
            Some(token) => keyring.set(&what, token),
            None => keyring.delete(&what),
        }
    }

    /// The meeting key kept for `room`, if any.
    pub fn meeting_key(&self, room: &str) -> Option<String> {
        self.keyring.as_ref()?.get(&format!("meeting-key:{room}")).ok().flatten()
    }

    pub fn keep_meeting_key(&self, room: &str, key: &str) -> Result<(), Error> {
        match &self.keyring {
            Some(keyring) => keyring.set(&format!("meeting-key:{room}"), key),
            None => Ok(()),
        }
    }

    pub fn forget_meeting_key(&self, room: &str) -> Result<(), Error> {
        match &self.keyring {
            Some(keyring) => keyring.delete(&format!("meeting-key:{room}")),
            None => Ok(()),
        }
    }

    /// Which store holds it, if any.
    pub fn store(&self) -> Option<&'static str> {
        self.keyring.as_ref().map(|k| k.kind)
    }
}
