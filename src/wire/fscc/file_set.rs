//! File information classes that only SET_INFO carries (MS-FSCC 2.4):
//! rename, link, disposition, end of file, allocation, valid data length.
//! The server decodes them; encoders exist for the client and tests.

use nom::number::complete::{le_u8, le_u32, le_u64};

use crate::wire::{DResult, DecodeError, PutLe, put_utf16le, utf16_len, utf16le};

/// FileRenameInformation in its SMB2 form (MS-FSCC 2.4.42.2): a 64-bit
/// RootDirectory, which SMB2 clients set to zero, and a name that is
/// either relative to the share root or a bare stream name (":s:$DATA").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileRenameInformation {
    /// ReplaceIfExists.
    pub replace_if_exists: bool,
    /// RootDirectory: MUST be 0 for SMB2 (MS-SMB2 3.3.5.21.1); kept so the
    /// handler can reject anything else.
    pub root_directory: u64,
    /// FileName, e.g. "d1\\b.txt".
    pub file_name: String,
}

/// FileLinkInformation (MS-FSCC 2.4.27.2) has the same SMB2 layout.
pub type FileLinkInformation = FileRenameInformation;

impl FileRenameInformation {
    /// Size of the fields before FileName.
    pub const FIXED_LEN: usize = 20;

    /// Appends the structure.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(u8::from(self.replace_if_exists));
        out.put_zeros(7);
        out.put_u64(self.root_directory);
        out.put_u32(utf16_len(&self.file_name) as u32);
        put_utf16le(out, &self.file_name);
    }

    /// Decodes; FileNameLength must fit in the buffer and be non-zero
    /// (an empty target is STATUS_INVALID_PARAMETER upstream, BadLength here).
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, replace) = le_u8(b)?;
        let i = i.get(7..).ok_or(DecodeError::Truncated)?;
        let (i, root_directory) = le_u64(i)?;
        let (i, len) = le_u32(i)?;
        if len == 0 {
            return Err(DecodeError::BadLength);
        }
        let name = i.get(..len as usize).ok_or(DecodeError::BadLength)?;
        Ok(Self { replace_if_exists: replace != 0, root_directory, file_name: utf16le(name)? })
    }
}

/// FileDispositionInformation (MS-FSCC 2.4.11), 1 byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileDispositionInformation {
    /// DeletePending: delete the file when the last handle closes.
    pub delete_pending: bool,
}

impl FileDispositionInformation {
    /// Appends 1 byte.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(u8::from(self.delete_pending));
    }

    /// Decodes (at least 1 byte).
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (_, v) = le_u8(b)?;
        Ok(Self { delete_pending: v != 0 })
    }
}

/// FileDispositionInformationEx (MS-FSCC 2.4.12), a u32 of flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileDispositionInformationEx {
    /// Flags (see the associated constants).
    pub flags: u32,
}

#[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
impl FileDispositionInformationEx {
    pub const DO_NOT_DELETE: u32 = 0x0000_0000;
    pub const DELETE: u32 = 0x0000_0001;
    pub const POSIX_SEMANTICS: u32 = 0x0000_0002;
    pub const FORCE_IMAGE_SECTION_CHECK: u32 = 0x0000_0004;
    pub const ON_CLOSE: u32 = 0x0000_0008;
    pub const IGNORE_READONLY_ATTRIBUTE: u32 = 0x0000_0010;

    /// Appends 4 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.flags);
    }

    /// Decodes 4 bytes.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (_, flags) = le_u32(b)?;
        Ok(Self { flags })
    }
}

/// Defines a SET_INFO class that is one u64.
macro_rules! u64_info {
    ($(#[$doc:meta])* $name:ident { $field:ident }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name {
            #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
            pub $field: u64,
        }

        impl $name {
            /// Appends 8 bytes.
            pub fn encode(&self, out: &mut Vec<u8>) {
                out.put_u64(self.$field);
            }

            /// Decodes 8 bytes.
            pub fn decode(b: &[u8]) -> DResult<Self> {
                let (_, $field) = le_u64(b)?;
                Ok(Self { $field })
            }
        }
    };
}

u64_info!(
    /// FileEndOfFileInformation (MS-FSCC 2.4.14): truncate or extend.
    FileEndOfFileInformation { end_of_file }
);
u64_info!(
    /// FileAllocationInformation (MS-FSCC 2.4.4).
    FileAllocationInformation { allocation_size }
);
u64_info!(
    /// FileValidDataLengthInformation (MS-FSCC 2.4.49).
    FileValidDataLengthInformation { valid_data_length }
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// SET_INFO FileRenameInformation from captures/smbclient-SMB3_11-signed.pcap
    /// frame 78 (d1\a.txt → d1\b.txt) and FileDispositionInformation from frame 96.
    #[test]
    fn decodes_captured_rename_and_disposition() {
        let msg = include_bytes!("../../../protocol-tests/fixtures/smbclient-SMB3_11-signed/78-set_info-req.bin");
        let r = FileRenameInformation::decode(&msg[96..]).unwrap();
        assert!(!r.replace_if_exists);
        assert_eq!(r.root_directory, 0);
        assert_eq!(r.file_name, "d1\\b.txt");
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(out, &msg[96..]);

        let msg = include_bytes!("../../../protocol-tests/fixtures/smbclient-SMB3_11-signed/96-set_info-req.bin");
        assert!(FileDispositionInformation::decode(&msg[96..]).unwrap().delete_pending);
    }

    #[test]
    fn rejects_short_rename() {
        let r = FileRenameInformation { file_name: "x".into(), ..Default::default() };
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(FileRenameInformation::decode(&out[..out.len() - 1]), Err(DecodeError::BadLength));
        assert_eq!(FileRenameInformation::decode(&out[..10]), Err(DecodeError::Truncated));
    }

    proptest! {
        #[test]
        fn rename_round_trips(replace_if_exists: bool, root_directory: u64, file_name in "[a-z\\\\\u{3041}-\u{3096}]{1,30}") {
            let r = FileRenameInformation { replace_if_exists, root_directory, file_name };
            let mut out = Vec::new();
            r.encode(&mut out);
            prop_assert_eq!(FileRenameInformation::decode(&out).unwrap(), r);
        }

        #[test]
        fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = FileRenameInformation::decode(&b);
            let _ = FileDispositionInformation::decode(&b);
            let _ = FileEndOfFileInformation::decode(&b);
        }
    }
}
