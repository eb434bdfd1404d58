//! Extended attributes: FILE_FULL_EA_INFORMATION lists (MS-FSCC 2.4.15),
//! used by QUERY_INFO/SET_INFO FileFullEaInformation and the CREATE "ExtA"
//! context, and FILE_GET_EA_INFORMATION name lists (2.4.15.1) that a
//! QUERY_INFO input buffer may carry.

use nom::number::complete::{le_u8, le_u16, le_u32};

use super::{align_up, chain_entries};
use crate::wire::{DResult, DecodeError, PutLe};

/// One extended attribute. Names are 8-bit strings of at most 255 bytes
/// (EaNameLength is a u8), kept as bytes because they are not Unicode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FullEa {
    /// Flags (FILE_NEED_EA 0x80).
    pub flags: u8,
    /// EaName without its NUL terminator.
    pub name: Vec<u8>,
    /// EaValue.
    pub value: Vec<u8>,
}

/// FILE_NEED_EA: the file cannot be interpreted without this EA.
pub const FILE_NEED_EA: u8 = 0x80;

/// FileFullEaInformation: a chain of FILE_FULL_EA_INFORMATION entries,
/// each starting on a 4-byte boundary (MS-FSCC 2.4.15).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileFullEaInformation {
    /// The attributes, in order.
    pub entries: Vec<FullEa>,
}

impl FileFullEaInformation {
    /// Appends the chain (names longer than 255 bytes and values longer
    /// than 65535 are the caller's bug and are truncated to fit the fields).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let base = out.len();
        let mut prev: Option<usize> = None;
        for e in &self.entries {
            if let Some(p) = prev {
                let start = base + align_up(out.len() - base, 4);
                out.resize(start, 0);
                out.set_u32(p, (start - p) as u32);
            }
            prev = Some(out.len());
            let name = &e.name[..e.name.len().min(255)];
            let value = &e.value[..e.value.len().min(0xFFFF)];
            out.put_u32(0);
            out.put_u8(e.flags);
            out.put_u8(name.len() as u8);
            out.put_u16(value.len() as u16);
            out.extend_from_slice(name);
            out.put_u8(0);
            out.extend_from_slice(value);
        }
    }

    /// Size of the encoding (what FileEaInformation.EaSize reports).
    pub fn encoded_len(&self) -> usize {
        let mut v = Vec::new();
        self.encode(&mut v);
        v.len()
    }

    /// Decodes the chain; every name must be NUL-terminated in place.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let mut entries = Vec::new();
        for e in chain_entries(b, 4)? {
            let (i, _next) = le_u32(e)?;
            let (i, flags) = le_u8(i)?;
            let (i, name_len) = le_u8(i)?;
            let (i, value_len) = le_u16(i)?;
            let n = usize::from(name_len);
            let name = i.get(..n).ok_or(DecodeError::BadLength)?;
            if i.get(n) != Some(&0) {
                return Err(DecodeError::BadValue);
            }
            let v_start = n + 1;
            let value = i.get(v_start..v_start + usize::from(value_len)).ok_or(DecodeError::BadLength)?;
            entries.push(FullEa { flags, name: name.to_vec(), value: value.to_vec() });
        }
        Ok(Self { entries })
    }
}

/// Decodes a FILE_GET_EA_INFORMATION chain (MS-FSCC 2.4.15.1): the EA names
/// a QUERY_INFO FileFullEaInformation asks for.
pub fn decode_get_ea_list(b: &[u8]) -> DResult<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for e in chain_entries(b, 4)? {
        let (i, _next) = le_u32(e)?;
        let (i, len) = le_u8(i)?;
        let n = usize::from(len);
        let name = i.get(..n).ok_or(DecodeError::BadLength)?;
        if i.get(n) != Some(&0) {
            return Err(DecodeError::BadValue);
        }
        names.push(name.to_vec());
    }
    Ok(names)
}

/// Encodes a FILE_GET_EA_INFORMATION chain (client side).
pub fn encode_get_ea_list(out: &mut Vec<u8>, names: &[&[u8]]) {
    let base = out.len();
    let mut prev: Option<usize> = None;
    for name in names {
        if let Some(p) = prev {
            let start = base + align_up(out.len() - base, 4);
            out.resize(start, 0);
            out.set_u32(p, (start - p) as u32);
        }
        prev = Some(out.len());
        let name = &name[..name.len().min(255)];
        out.put_u32(0);
        out.put_u8(name.len() as u8);
        out.extend_from_slice(name);
        out.put_u8(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_layout() {
        let l = FileFullEaInformation {
            entries: vec![
                FullEa { flags: 0, name: b"A".to_vec(), value: b"xy".to_vec() },
                FullEa { flags: FILE_NEED_EA, name: b"BC".to_vec(), value: vec![] },
            ],
        };
        let mut out = Vec::new();
        l.encode(&mut out);
        // 8 header + "A\0" + "xy" = 12 (already 4-aligned), then 8 + "BC\0".
        assert_eq!(&out[..12], &[12, 0, 0, 0, 0, 1, 2, 0, b'A', 0, b'x', b'y']);
        assert_eq!(out.len(), 12 + 11);
        assert_eq!(FileFullEaInformation::decode(&out).unwrap(), l);
        // Missing terminator.
        out[9] = b'!';
        assert_eq!(FileFullEaInformation::decode(&out), Err(DecodeError::BadValue));
    }

    proptest! {
        #[test]
        fn full_ea_round_trips(v in proptest::collection::vec((any::<u8>(), proptest::collection::vec(1u8..=255, 1..20), proptest::collection::vec(any::<u8>(), 0..40)), 0..5)) {
            let l = FileFullEaInformation { entries: v.into_iter().map(|(flags, name, value)| FullEa { flags, name, value }).collect() };
            let mut out = Vec::new();
            l.encode(&mut out);
            prop_assert_eq!(FileFullEaInformation::decode(&out).unwrap(), l);
        }

        #[test]
        fn get_ea_round_trips(v in proptest::collection::vec(proptest::collection::vec(1u8..=255, 1..20), 0..5)) {
            let names: Vec<&[u8]> = v.iter().map(|n| n.as_slice()).collect();
            let mut out = Vec::new();
            encode_get_ea_list(&mut out, &names);
            prop_assert_eq!(decode_get_ea_list(&out).unwrap(), v);
        }

        #[test]
        fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = FileFullEaInformation::decode(&b);
            let _ = decode_get_ea_list(&b);
        }
    }
}
