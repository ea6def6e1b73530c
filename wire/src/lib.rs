//! Typed, zero-copy views of every header GLB's data path touches, in the smoltcp style.
//!
//! The contract every view follows:
//! - `Packet<T: AsRef<[u8]>>` wraps a buffer; `new_unchecked` checks nothing, `check_len` proves
//!   that no accessor can panic, `new_checked` does both. Getters return host-order values.
//! - Setters live behind `T: AsMut<[u8]>`; they are for emitting into a buffer the caller sized
//!   with the module's `HEADER_LEN` — use `new_unchecked` there, never `new_checked`, because stale
//!   length fields of a reused buffer would make the check meaningless.
//! - Errors are one unit [`Error`]: a view is usable or it is not; what that means is the
//!   caller's decision (the director turns it into a verdict and a counter).
//!
//! Nothing outside this crate indexes a frame by raw offset. `#![no_std]`: there is no
//! allocator to call, which is one of the guards that keep the per-packet path allocation-free.
#![forbid(unsafe_code)]
#![no_std]
#![warn(missing_docs)]

/// Declares a view type `$name<T>` over a buffer, with the constructors of the contract above;
/// the module supplies `check_len`.
macro_rules! view {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name<T> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Wraps without checking.
            pub const fn new_unchecked(buffer: T) -> Self {
                Self { buffer }
            }

            /// Wraps after `check_len`.
            ///
            /// # Errors
            /// The buffer fails `check_len`.
            pub fn new_checked(buffer: T) -> $crate::Result<Self> {
                let view = Self::new_unchecked(buffer);
                view.check_len()?;
                Ok(view)
            }
        }
    };
}
pub(crate) use view;

pub mod checksum;
pub mod ethernet;
pub mod gue;
pub mod icmp;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod tunnel;
pub mod udp;

/// The buffer is too short for what the header says, or a field is out of its legal range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error;

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("truncated or malformed packet")
    }
}

/// Result of parsing.
pub type Result<T> = core::result::Result<T, Error>;

/// Reads a big-endian u16 at `at`; `None` past the end.
#[inline]
pub(crate) fn be16(data: &[u8], at: usize) -> Option<u16> {
    let bytes = data.get(at..at + 2)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

/// Writes a big-endian u16 at `at` (caller sized the buffer).
#[inline]
pub(crate) fn put16(data: &mut [u8], at: usize, value: u16) {
    data[at..at + 2].copy_from_slice(&value.to_be_bytes());
}
