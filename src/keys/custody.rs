//! Where the key file lives and what the server checks about it: the key
//! that decrypts everything must not sit beside the data it decrypts (a
//! stolen disk or a volume snapshot of the data directory would carry it),
//! and a data directory that is not there (an unmounted disk) must never
//! be mistaken for a new, empty server.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// File name of the key file, also the systemd credential name
/// (`LoadCredential=master.key:/etc/smbvault/keys/master.key`).
pub const KEY_FILE_NAME: &str = "master.key";

/// Where the key file is when `keys.key_file` is not set, in this order:
/// 1. `$CREDENTIALS_DIRECTORY/master.key` when systemd passed it as a
///    credential (the directory is private to the service, in memory);
/// 2. `<data_dir>/keys/master.key` when a key file is still there (data
///    directories made before the default moved; `serve` warns);
/// 3. `keys/master.key` in the directory of the configuration file
///    (`/etc/smbvault/keys/master.key`; `config/keys/master.key` for the
///    quick start), outside the data directory.
pub fn default_key_file(config_path: &Path, data_dir: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let p = Path::new(&dir).join(KEY_FILE_NAME);
        if p.is_file() {
            return p;
        }
    }
    let legacy = data_dir.join("keys").join(KEY_FILE_NAME);
    if legacy.is_file() {
        return legacy;
    }
    let base = config_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    base.join("keys").join(KEY_FILE_NAME)
}

/// What is wrong with where and how the key file is kept (empty: nothing).
pub fn key_file_warnings(key_file: &Path, data_dir: &Path) -> Vec<String> {
    let mut w = Vec::new();
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (k, d) = (abs(key_file), abs(data_dir));
    if k.starts_with(&d) {
        w.push(format!(
            "the key file {} lies inside the data directory {}: a copy or snapshot of the data \
             directory carries the key to all of it; move it elsewhere (e.g. /etc/smbvault/keys/) \
             and set [keys] key_file, or pass it as the systemd credential {KEY_FILE_NAME}",
            key_file.display(),
            data_dir.display()
        ));
    }
    if let Ok(m) = std::fs::metadata(key_file)
        && m.permissions().mode() & 0o077 != 0
    {
        w.push(format!(
            "the key file {} is readable by group or others (mode {:o}); run `chmod 600 {}`",
            key_file.display(),
            m.permissions().mode() & 0o777,
            key_file.display()
        ));
    }
    w
}

/// Entries of the data directory that show it was in use (anything but
/// the lock file `serve` creates before it opens the key).
fn in_use(data_dir: &Path) -> std::io::Result<Vec<String>> {
    match std::fs::read_dir(data_dir) {
        Ok(rd) => Ok(rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "server.lock")
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Whether a new master key may be created for `data_dir`: only when the
/// directory is empty (or missing) and no key file exists yet, unless
/// `force` (`--force-new-key`). A failed mount shows up here as an empty
/// mount point next to an existing key file.
pub fn may_create_master_key(data_dir: &Path, key_file: Option<&Path>, force: bool) -> Result<(), String> {
    if force {
        return Ok(());
    }
    let used = in_use(data_dir).map_err(|e| permission_hint(data_dir, &e))?;
    if !used.is_empty() {
        let mut shown: Vec<String> = used.into_iter().take(5).collect();
        shown.sort();
        return Err(format!(
            "refusing to create a new master key: the data directory {} is not empty ({}) but has no \
             master key slot file (keys/master.slots): is the right disk mounted, or was the data \
             directory partly deleted? Restore keys/master.slots (it is in every backup generation) \
             or run `smbvault backup restore`; to really start a new, empty server here, pass \
             --force-new-key",
            data_dir.display(),
            shown.join(", ")
        ));
    }
    if let Some(k) = key_file
        && k.exists()
    {
        return Err(format!(
            "refusing to create a new master key: the key file {} already exists, so this machine \
             was initialized, but the data directory {} is empty or missing: is the data disk \
             mounted? To restore onto an empty directory see docs/backup.md (\"Disaster \
             recovery\"). If the key file was made for this new server (a systemd credential), \
             run `smbvault init` once; to start a new, empty server anyway, pass --force-new-key",
            k.display(),
            data_dir.display()
        ));
    }
    Ok(())
}

/// An I/O error on `path` explained: permission problems say so (and never
/// suggest initializing anything).
pub fn permission_hint(path: &Path, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        format!(
            "permission denied on {}: run smbvault as the user that owns the data directory and the \
             key file (see `ls -ld {}`), or fix their ownership",
            path.display(),
            path.display()
        )
    } else {
        format!("cannot read {}: {e}", path.display())
    }
}

/// Set (to a file descriptor number) when this process was re-executed
/// by [`reexec_without_passphrase`]; the passphrase waits in that pipe.
const PASSPHRASE_FD_ENV: &str = "SMBVAULT_PASSPHRASE_FD";

/// The environment of a process stays readable (`/proc/PID/environ`) for
/// its whole life, and Rust cannot edit its own environment safely. So when
/// the passphrase variable `var` is set, the process moves the passphrase
/// into a pipe and re-executes itself without `var`: the running server's
/// environment never holds it. Returns only on failure (the caller then
/// carries on with the variable set, after a warning).
pub fn reexec_without_passphrase(var: &str) -> std::io::Error {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let Some(value) = std::env::var_os(var) else {
        return std::io::Error::other("not set");
    };
    let run = || -> std::io::Result<std::io::Error> {
        let (reader, mut writer) = std::io::pipe()?;
        writer.write_all(value.as_bytes())?;
        drop(writer);
        // Inherited across exec: clear close-on-exec on the read end only.
        rustix::io::fcntl_setfd(&reader, rustix::io::FdFlags::empty())?;
        let exe = std::env::current_exe()?;
        Ok(std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env_remove(var)
            .env(PASSPHRASE_FD_ENV, reader.as_raw_fd().to_string())
            .exec())
    };
    run().unwrap_or_else(|e| e)
}

/// The passphrase handed over by [`reexec_without_passphrase`], read once.
pub fn passed_passphrase() -> Option<zeroize::Zeroizing<String>> {
    static PASSED: std::sync::OnceLock<Option<zeroize::Zeroizing<String>>> = std::sync::OnceLock::new();
    PASSED
        .get_or_init(|| {
            let fd: u32 = std::env::var(PASSPHRASE_FD_ENV).ok()?.parse().ok()?;
            // Opening the inherited pipe through /proc needs no unsafe code.
            std::fs::read_to_string(format!("/proc/self/fd/{fd}")).ok().map(zeroize::Zeroizing::new)
        })
        .clone()
}

/// Whether this process is the re-executed one.
pub fn passphrase_was_passed() -> bool {
    std::env::var_os(PASSPHRASE_FD_ENV).is_some()
}

/// Restricts files this process creates to its own user (0600 files, 0700
/// directories) from the first one on: databases, segments, logs, backups.
pub fn private_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_used_directory_or_an_existing_key_file() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("data");
        let key = d.path().join("keys/master.key");
        assert!(may_create_master_key(&data, Some(&key), false).is_ok(), "missing directory");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("server.lock"), b"").unwrap();
        assert!(may_create_master_key(&data, Some(&key), false).is_ok(), "only the lock file");
        std::fs::write(data.join("accounts.db"), b"x").unwrap();
        let e = may_create_master_key(&data, Some(&key), false).unwrap_err();
        assert!(e.contains("not empty (accounts.db)") && e.contains("--force-new-key"), "{e}");
        assert!(may_create_master_key(&data, Some(&key), true).is_ok());
        std::fs::remove_file(data.join("accounts.db")).unwrap();
        std::fs::create_dir_all(key.parent().unwrap()).unwrap();
        std::fs::write(&key, [0u8; 32]).unwrap();
        let e = may_create_master_key(&data, Some(&key), false).unwrap_err();
        assert!(e.contains("already exists") && e.contains("mounted"), "{e}");
    }

    #[test]
    fn warns_about_a_key_in_the_data_directory_or_readable_by_others() {
        let d = tempfile::tempdir().unwrap();
        let key = d.path().join("data/keys/master.key");
        std::fs::create_dir_all(key.parent().unwrap()).unwrap();
        std::fs::write(&key, [0u8; 32]).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = key_file_warnings(&key, &d.path().join("data"));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("inside the data directory") && w[1].contains("chmod 600"), "{w:?}");
        let outside = d.path().join("master.key");
        std::fs::write(&outside, [0u8; 32]).unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(key_file_warnings(&outside, &d.path().join("data")).is_empty());
    }

    #[test]
    fn default_is_beside_the_config_unless_a_key_is_in_the_data_directory() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("etc/smbvault.toml");
        let data = d.path().join("data");
        assert_eq!(default_key_file(&cfg, &data), d.path().join("etc/keys/master.key"));
        assert_eq!(default_key_file(Path::new("smbvault.toml"), &data), Path::new("./keys/master.key"));
        std::fs::create_dir_all(data.join("keys")).unwrap();
        std::fs::write(data.join("keys/master.key"), [0u8; 32]).unwrap();
        assert_eq!(default_key_file(&cfg, &data), data.join("keys/master.key"));
    }
}
