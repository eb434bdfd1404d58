//! SMB2 ECHO (MS-SMB2 2.2.28, 2.2.29), and the helpers for every body that
//! is only StructureSize 4 + Reserved (ECHO, LOGOFF, TREE_DISCONNECT,
//! CANCEL, FLUSH response, LOCK response).

use nom::number::complete::le_u16;

use super::{DResult, PutLe, body, check_structure_size};

/// Checks a 4-byte empty body: StructureSize 4 and the Reserved field.
pub(crate) fn decode_empty(msg: &[u8]) -> DResult<()> {
    check_structure_size(msg, 4)?;
    let (i, _) = le_u16(body(msg)?)?;
    let (_, _reserved) = le_u16(i)?;
    Ok(())
}

/// Appends a 4-byte empty body.
pub(crate) fn encode_empty(out: &mut Vec<u8>) {
    out.put_u16(4);
    out.put_u16(0);
}

/// SMB2 ECHO Request (MS-SMB2 2.2.28).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EchoRequest;

/// SMB2 ECHO Response (MS-SMB2 2.2.29).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EchoResponse;

/// Implements decode/encode for a message whose body is empty.
macro_rules! empty_message {
    ($($t:ty),*) => {$(
        impl $t {
            /// Decodes the (empty) body of `msg`.
            pub fn decode(msg: &[u8]) -> $crate::wire::DResult<Self> {
                $crate::wire::echo::decode_empty(msg)?;
                Ok(Self)
            }

            /// Appends the 4-byte body.
            pub fn encode(&self, out: &mut Vec<u8>) {
                $crate::wire::echo::encode_empty(out);
            }
        }
    )*};
}
pub(crate) use empty_message;

empty_message!(EchoRequest, EchoResponse);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::DecodeError;

    #[test]
    fn echo_is_four_bytes() {
        let mut out = vec![0u8; 64];
        EchoRequest.encode(&mut out);
        assert_eq!(&out[64..], &[4, 0, 0, 0]);
        assert_eq!(EchoResponse::decode(&out), Ok(EchoResponse));
        assert_eq!(EchoRequest::decode(&out[..66]), Err(DecodeError::Truncated));
        out[64] = 5;
        assert_eq!(EchoRequest::decode(&out), Err(DecodeError::BadStructureSize));
    }
}
