//! File-system information classes (MS-FSCC 2.5) returned by QUERY_INFO
//! with InfoType FILESYSTEM.

use nom::number::complete::{le_u8, le_u32, le_u64};

use crate::wire::{DResult, DecodeError, PutLe, put_utf16le, utf16_len, utf16le};

/// FileSystemAttributes bits (MS-FSCC 2.5.1).
pub mod fs_attributes {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const CASE_SENSITIVE_SEARCH: u32 = 0x0000_0001;
    pub const CASE_PRESERVED_NAMES: u32 = 0x0000_0002;
    pub const UNICODE_ON_DISK: u32 = 0x0000_0004;
    pub const PERSISTENT_ACLS: u32 = 0x0000_0008;
    pub const FILE_COMPRESSION: u32 = 0x0000_0010;
    pub const VOLUME_QUOTAS: u32 = 0x0000_0020;
    pub const SUPPORTS_SPARSE_FILES: u32 = 0x0000_0040;
    pub const SUPPORTS_REPARSE_POINTS: u32 = 0x0000_0080;
    pub const SUPPORTS_REMOTE_STORAGE: u32 = 0x0000_0100;
    pub const VOLUME_IS_COMPRESSED: u32 = 0x0000_8000;
    pub const SUPPORTS_OBJECT_IDS: u32 = 0x0001_0000;
    pub const SUPPORTS_ENCRYPTION: u32 = 0x0002_0000;
    pub const NAMED_STREAMS: u32 = 0x0004_0000;
    pub const READ_ONLY_VOLUME: u32 = 0x0008_0000;
    pub const SEQUENTIAL_WRITE_ONCE: u32 = 0x0010_0000;
    pub const SUPPORTS_TRANSACTIONS: u32 = 0x0020_0000;
    pub const SUPPORTS_HARD_LINKS: u32 = 0x0040_0000;
    pub const SUPPORTS_EXTENDED_ATTRIBUTES: u32 = 0x0080_0000;
    pub const SUPPORTS_OPEN_BY_FILE_ID: u32 = 0x0100_0000;
    pub const SUPPORTS_USN_JOURNAL: u32 = 0x0200_0000;
    pub const SUPPORTS_INTEGRITY_STREAMS: u32 = 0x0400_0000;
    pub const SUPPORTS_BLOCK_REFCOUNTING: u32 = 0x0800_0000;
    pub const SUPPORTS_SPARSE_VDL: u32 = 0x1000_0000;
}

/// DeviceType / Characteristics values (MS-FSCC 2.5.10).
pub mod device {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const FILE_DEVICE_DISK: u32 = 0x0000_0007;
    pub const FILE_DEVICE_NAMED_PIPE: u32 = 0x0000_0011;
    pub const FILE_REMOTE_DEVICE: u32 = 0x0000_0010;
    pub const FILE_DEVICE_IS_MOUNTED: u32 = 0x0000_0020;
}

/// FileFsVolumeInformation (MS-FSCC 2.5.9).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileFsVolumeInformation {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub volume_creation_time: u64,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub volume_serial_number: u32,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub supports_objects: bool,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub volume_label: String,
}

impl FileFsVolumeInformation {
    /// Appends 18 bytes plus the label.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.volume_creation_time);
        out.put_u32(self.volume_serial_number);
        out.put_u32(utf16_len(&self.volume_label) as u32);
        out.put_u8(u8::from(self.supports_objects));
        out.put_u8(0);
        put_utf16le(out, &self.volume_label);
    }

    /// Decodes the structure.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, volume_creation_time) = le_u64(b)?;
        let (i, volume_serial_number) = le_u32(i)?;
        let (i, len) = le_u32(i)?;
        let (i, supports_objects) = le_u8(i)?;
        let (i, _reserved) = le_u8(i)?;
        let label = i.get(..len as usize).ok_or(DecodeError::BadLength)?;
        Ok(Self {
            volume_creation_time,
            volume_serial_number,
            supports_objects: supports_objects != 0,
            volume_label: utf16le(label)?,
        })
    }
}

/// FileFsSizeInformation (MS-FSCC 2.5.8), 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileFsSizeInformation {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub total_allocation_units: u64,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub available_allocation_units: u64,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub sectors_per_allocation_unit: u32,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub bytes_per_sector: u32,
}

impl FileFsSizeInformation {
    /// Appends 24 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.total_allocation_units);
        out.put_u64(self.available_allocation_units);
        out.put_u32(self.sectors_per_allocation_unit);
        out.put_u32(self.bytes_per_sector);
    }

    /// Decodes 24 bytes.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, total_allocation_units) = le_u64(b)?;
        let (i, available_allocation_units) = le_u64(i)?;
        let (i, sectors_per_allocation_unit) = le_u32(i)?;
        let (_, bytes_per_sector) = le_u32(i)?;
        Ok(Self { total_allocation_units, available_allocation_units, sectors_per_allocation_unit, bytes_per_sector })
    }
}

/// FileFsFullSizeInformation (MS-FSCC 2.5.4), 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileFsFullSizeInformation {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub total_allocation_units: u64,
    /// Units available to the caller (after quota).
    pub caller_available_allocation_units: u64,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub actual_available_allocation_units: u64,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub sectors_per_allocation_unit: u32,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub bytes_per_sector: u32,
}

impl FileFsFullSizeInformation {
    /// Appends 32 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.total_allocation_units);
        out.put_u64(self.caller_available_allocation_units);
        out.put_u64(self.actual_available_allocation_units);
        out.put_u32(self.sectors_per_allocation_unit);
        out.put_u32(self.bytes_per_sector);
    }

    /// Decodes 32 bytes.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, total_allocation_units) = le_u64(b)?;
        let (i, caller_available_allocation_units) = le_u64(i)?;
        let (i, actual_available_allocation_units) = le_u64(i)?;
        let (i, sectors_per_allocation_unit) = le_u32(i)?;
        let (_, bytes_per_sector) = le_u32(i)?;
        Ok(Self {
            total_allocation_units,
            caller_available_allocation_units,
            actual_available_allocation_units,
            sectors_per_allocation_unit,
            bytes_per_sector,
        })
    }
}

/// FileFsAttributeInformation (MS-FSCC 2.5.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileFsAttributeInformation {
    /// FileSystemAttributes (see [`fs_attributes`]).
    pub file_system_attributes: u32,
    /// MaximumComponentNameLength (255 for NTFS).
    pub maximum_component_name_length: u32,
    /// FileSystemName, e.g. "NTFS".
    pub file_system_name: String,
}

impl FileFsAttributeInformation {
    /// Appends 12 bytes plus the name.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.file_system_attributes);
        out.put_u32(self.maximum_component_name_length);
        out.put_u32(utf16_len(&self.file_system_name) as u32);
        put_utf16le(out, &self.file_system_name);
    }

    /// Decodes the structure.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, file_system_attributes) = le_u32(b)?;
        let (i, maximum_component_name_length) = le_u32(i)?;
        let (i, len) = le_u32(i)?;
        let name = i.get(..len as usize).ok_or(DecodeError::BadLength)?;
        Ok(Self { file_system_attributes, maximum_component_name_length, file_system_name: utf16le(name)? })
    }
}

/// FileFsDeviceInformation (MS-FSCC 2.5.10), 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileFsDeviceInformation {
    /// DeviceType (see [`device`]).
    pub device_type: u32,
    /// Characteristics (see [`device`]).
    pub characteristics: u32,
}

impl FileFsDeviceInformation {
    /// Appends 8 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.device_type);
        out.put_u32(self.characteristics);
    }

    /// Decodes 8 bytes.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, device_type) = le_u32(b)?;
        let (_, characteristics) = le_u32(i)?;
        Ok(Self { device_type, characteristics })
    }
}

/// FileFsSectorSizeInformation (MS-FSCC 2.5.7), seven u32 fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileFsSectorSizeInformation {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub logical_bytes_per_sector: u32,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub physical_bytes_per_sector_for_atomicity: u32,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub physical_bytes_per_sector_for_performance: u32,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub fs_effective_physical_bytes_per_sector_for_atomicity: u32,
    /// SSINFO_FLAGS_* (ALIGNED_DEVICE 1, PARTITION_ALIGNED_ON_DEVICE 2,
    /// NO_SEEK_PENALTY 4, TRIM_ENABLED 8).
    pub flags: u32,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub byte_offset_for_sector_alignment: u32,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub byte_offset_for_partition_alignment: u32,
}

impl FileFsSectorSizeInformation {
    /// Appends 28 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        for v in self.fields() {
            out.put_u32(v);
        }
    }

    fn fields(&self) -> [u32; 7] {
        [
            self.logical_bytes_per_sector,
            self.physical_bytes_per_sector_for_atomicity,
            self.physical_bytes_per_sector_for_performance,
            self.fs_effective_physical_bytes_per_sector_for_atomicity,
            self.flags,
            self.byte_offset_for_sector_alignment,
            self.byte_offset_for_partition_alignment,
        ]
    }

    /// Decodes 28 bytes.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let mut v = [0u32; 7];
        let mut i = b;
        for f in &mut v {
            (i, *f) = le_u32(i)?;
        }
        Ok(Self {
            logical_bytes_per_sector: v[0],
            physical_bytes_per_sector_for_atomicity: v[1],
            physical_bytes_per_sector_for_performance: v[2],
            fs_effective_physical_bytes_per_sector_for_atomicity: v[3],
            flags: v[4],
            byte_offset_for_sector_alignment: v[5],
            byte_offset_for_partition_alignment: v[6],
        })
    }
}

/// FileFsObjectIdInformation (MS-FSCC 2.5.6), 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileFsObjectIdInformation {
    /// ObjectId (a GUID).
    pub object_id: [u8; 16],
    /// ExtendedInfo (opaque).
    pub extended_info: [u8; 48],
}

impl Default for FileFsObjectIdInformation {
    fn default() -> Self {
        Self { object_id: [0; 16], extended_info: [0; 48] }
    }
}

impl FileFsObjectIdInformation {
    /// Appends 64 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.object_id);
        out.extend_from_slice(&self.extended_info);
    }

    /// Decodes 64 bytes.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let b = b.get(..64).ok_or(DecodeError::Truncated)?;
        let mut s = Self::default();
        s.object_id.copy_from_slice(&b[..16]);
        s.extended_info.copy_from_slice(&b[16..]);
        Ok(s)
    }
}

/// FileFsControlInformation (MS-FSCC 2.5.2), 48 bytes: quota settings.
/// We report quotas as disabled (all zero except what the caller sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileFsControlInformation {
    /// FreeSpaceStartFiltering, FreeSpaceThreshold, FreeSpaceStopFiltering,
    /// DefaultQuotaThreshold, DefaultQuotaLimit, in wire order.
    pub values: [u64; 5],
    /// FileSystemControlFlags (0: quotas not tracked or enforced).
    pub file_system_control_flags: u32,
}

impl FileFsControlInformation {
    /// Appends 48 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        for v in self.values {
            out.put_u64(v);
        }
        out.put_u32(self.file_system_control_flags);
        out.put_u32(0);
    }

    /// Decodes 48 bytes (SET_INFO input).
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let mut values = [0u64; 5];
        let mut i = b;
        for v in &mut values {
            (i, *v) = le_u64(i)?;
        }
        let (i, file_system_control_flags) = le_u32(i)?;
        let (_, _padding) = le_u32(i)?;
        Ok(Self { values, file_system_control_flags })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// FileFsSizeInformation from captures/smbclient-SMB3_11-signed.pcap frame 31.
    #[test]
    fn size_information_matches_samba() {
        let msg = include_bytes!("../../../protocol-tests/fixtures/smbclient-SMB3_11-signed/31-query_info-resp.bin");
        let s = FileFsSizeInformation::decode(&msg[72..]).unwrap();
        assert_eq!(s.sectors_per_allocation_unit, 2);
        assert_eq!(s.bytes_per_sector, 512);
        let mut out = Vec::new();
        s.encode(&mut out);
        assert_eq!(out, &msg[72..]);
    }

    proptest! {
        #[test]
        fn variable_classes_round_trip(x in any::<(u64, u32, bool, u32, u32)>(), label in "[a-zA-Z0-9 \u{3041}-\u{3096}]{0,20}") {
            let v = FileFsVolumeInformation { volume_creation_time: x.0, volume_serial_number: x.1, supports_objects: x.2, volume_label: label.clone() };
            let mut out = Vec::new();
            v.encode(&mut out);
            prop_assert_eq!(FileFsVolumeInformation::decode(&out).unwrap(), v);
            let a = FileFsAttributeInformation { file_system_attributes: x.3, maximum_component_name_length: x.4, file_system_name: label };
            out.clear();
            a.encode(&mut out);
            prop_assert_eq!(FileFsAttributeInformation::decode(&out).unwrap(), a);
        }

        #[test]
        fn fixed_classes_round_trip(v in any::<[u64; 5]>(), w in any::<[u32; 7]>()) {
            let mut out = Vec::new();
            let f = FileFsFullSizeInformation { total_allocation_units: v[0], caller_available_allocation_units: v[1], actual_available_allocation_units: v[2], sectors_per_allocation_unit: w[0], bytes_per_sector: w[1] };
            f.encode(&mut out);
            prop_assert_eq!(FileFsFullSizeInformation::decode(&out).unwrap(), f);
            out.clear();
            let s = FileFsSectorSizeInformation::decode(&w.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>()).unwrap();
            s.encode(&mut out);
            prop_assert_eq!(FileFsSectorSizeInformation::decode(&out).unwrap(), s);
            out.clear();
            let c = FileFsControlInformation { values: v, file_system_control_flags: w[2] };
            c.encode(&mut out);
            prop_assert_eq!(out.len(), 48);
            prop_assert_eq!(FileFsControlInformation::decode(&out).unwrap(), c);
        }

        #[test]
        fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = FileFsVolumeInformation::decode(&b);
            let _ = FileFsAttributeInformation::decode(&b);
            let _ = FileFsObjectIdInformation::decode(&b);
            let _ = FileFsControlInformation::decode(&b);
        }
    }
}
