//! Transport protection modes: what is negotiated, and how each client is
//! told to ask for it.

use smbvault::crypto::CipherId;

/// One SMB 3.1.1 protection mode, the same for both servers and both clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Mode {
    /// Signing only (AES-GMAC offered first, MS-SMB2 2.2.3.1.7), on the share without encryption.
    #[value(name = "sign")]
    Sign,
    /// Sealing with AES-128-GCM on the share that requires encryption.
    #[value(name = "encrypt")]
    Encrypt,
    /// Sealing with AES-256-GCM on the share that requires encryption.
    #[value(name = "encrypt256")]
    Encrypt256,
}

impl Mode {
    /// The name used on the command line, in the table and in file names.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Sign => "sign",
            Mode::Encrypt => "encrypt",
            Mode::Encrypt256 => "encrypt256",
        }
    }

    /// Whether requests are sealed.
    pub fn encrypts(self) -> bool {
        self.cipher().is_some()
    }

    /// The only cipher offered in the 3.1.1 encryption context
    /// (MS-SMB2 2.2.3.1.2), so the server cannot pick another.
    pub fn cipher(self) -> Option<CipherId> {
        match self {
            Mode::Sign => None,
            Mode::Encrypt => Some(CipherId::Aes128Gcm),
            Mode::Encrypt256 => Some(CipherId::Aes256Gcm),
        }
    }

    /// smbclient's arguments for this mode. `client smb3 encryption
    /// algorithms` (smb.conf(5), Samba ≥ 4.15) is the list smbclient offers
    /// in its encryption context.
    pub fn smbclient_args(self) -> Vec<String> {
        let offer = |alg: &str| format!("--option=client smb3 encryption algorithms={alg}");
        match self {
            Mode::Sign => vec!["--client-protection=sign".into()],
            Mode::Encrypt => vec!["--client-protection=encrypt".into(), offer("AES-128-GCM")],
            Mode::Encrypt256 => vec!["--client-protection=encrypt".into(), offer("AES-256-GCM")],
        }
    }

    /// How the cipher is named in the encryption-cost table.
    pub fn describe(self) -> &'static str {
        match self {
            Mode::Sign => "sign (no encryption)",
            Mode::Encrypt => "encrypt (AES-128-GCM)",
            Mode::Encrypt256 => "encrypt256 (AES-256-GCM)",
        }
    }
}
