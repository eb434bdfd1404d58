//! Credits and the message-id sequence window (MS-SMB2 3.3.1.1, 3.3.5.2.3).
//!
//! The window holds the message ids the client may use. A request with
//! CreditCharge N consumes ids MessageId..MessageId+N (at least one); every
//! one of them must be in the window and unused. Responses grant credits,
//! which extend the window at its top.

use std::collections::VecDeque;

/// Most credits a client may hold at once (Windows Server's default is 8192).
pub const MAX_CREDITS: u32 = 8192;
/// Credits a client is topped up to once it sends requests (see [`Credits::grant`]).
const FLOOR: u32 = 512;

/// The sequence window of one connection.
#[derive(Debug)]
pub struct Credits {
    /// Lowest message id not yet consumed.
    low: u64,
    /// `used[k]` says whether id `low + k` was consumed; its length is the window size.
    used: VecDeque<bool>,
}

impl Default for Credits {
    fn default() -> Self {
        Self::new()
    }
}

impl Credits {
    /// A new connection may send message id 0 only (one credit).
    pub fn new() -> Self {
        Self { low: 0, used: VecDeque::from([false]) }
    }

    /// Credits the client holds now (unused ids in the window).
    pub fn outstanding(&self) -> u32 {
        self.used.iter().filter(|u| !**u).count() as u32
    }

    /// Consumes `charge` ids from `message_id`. False if any is outside the
    /// window or already used: the server must then drop the connection
    /// (MS-SMB2 3.3.5.2.3).
    pub fn consume(&mut self, message_id: u64, charge: u16) -> bool {
        let n = u64::from(charge.max(1));
        let Some(end) = message_id.checked_add(n) else {
            return false;
        };
        if message_id < self.low || end > self.low + self.used.len() as u64 {
            return false;
        }
        let first = (message_id - self.low) as usize;
        if self.used.range(first..first + n as usize).any(|u| *u) {
            return false;
        }
        for k in first..first + n as usize {
            self.used[k] = true;
        }
        while self.used.front() == Some(&true) {
            self.used.pop_front();
            self.low += 1;
        }
        true
    }

    /// Grants up to `requested` credits (at least one if the client holds
    /// none, so it can never starve) without exceeding [`MAX_CREDITS`].
    /// Returns the number granted, for the response's CreditResponse field.
    pub fn grant(&mut self, requested: u16, charge: u16, boost: bool) -> u16 {
        // Replace what the request consumed and add what the client asks for
        // on top, as Samba does: a client asking for 0 still gets 1, and one
        // that charges 128 credits for an 8 MiB write gets them back.
        let mut want = u32::from(requested.max(charge).max(1));
        // Keep at least FLOOR credits in the client's hands so that clients
        // that only ask to replace what they use (Python smbprotocol) can
        // still send an 8 MiB request (128 credits) or pipeline a few.
        let held = self.outstanding();
        if boost && held + want < FLOOR {
            want = FLOOR - held;
        }
        let room = MAX_CREDITS.saturating_sub(self.used.len() as u32);
        let mut g = want.min(room);
        if g == 0 && self.outstanding() == 0 {
            g = 1;
        }
        for _ in 0..g {
            self.used.push_back(false);
        }
        g as u16
    }
}

/// CreditCharge a payload needs: one per started 64 KiB (MS-SMB2 3.1.5.2).
pub fn charge_for(len: usize) -> u16 {
    (len.saturating_sub(1) / 65536 + 1).min(usize::from(u16::MAX)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_message_then_grant() {
        let mut c = Credits::new();
        assert!(c.consume(0, 0));
        assert!(!c.consume(0, 0), "replayed id");
        assert!(!c.consume(1, 0), "no credit yet");
        assert_eq!(c.grant(10, 1, false), 10);
        assert!(c.consume(5, 1));
        assert!(c.consume(1, 4));
        assert!(!c.consume(4, 2), "overlaps a used id");
        assert!(c.consume(6, 5));
        assert!(!c.consume(11, 1), "beyond window");
    }

    #[test]
    fn window_is_bounded() {
        let mut c = Credits::new();
        assert!(c.consume(0, 1));
        assert_eq!(u32::from(c.grant(u16::MAX, 1, false)), MAX_CREDITS);
        assert_eq!(c.grant(100, 1, false), 0);
        assert!(c.consume(1, 100));
        assert_eq!(c.grant(100, 100, false), 100);
        assert!(!c.consume(u64::MAX, 2));
    }

    #[test]
    fn charge_rounds_up() {
        assert_eq!(charge_for(0), 1);
        assert_eq!(charge_for(65536), 1);
        assert_eq!(charge_for(65537), 2);
        assert_eq!(charge_for(8 << 20), 128);
    }
}
