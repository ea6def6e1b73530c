//! An owned, validated binary table with its classifier: the unit the director loads, swaps in
//! atomically and retires.

use crate::binary::{BinaryError, TableFile};
use crate::classify::Classifier;

/// A binary table that passed [`TableFile::parse`], owned, with its binds indexed.
#[derive(Debug)]
pub struct LoadedTable {
    bytes: Box<[u8]>,
    classifier: Classifier,
}

impl LoadedTable {
    /// Validates `bytes` and indexes its binds.
    ///
    /// # Errors
    /// Whatever [`TableFile::parse`] rejects.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, BinaryError> {
        let bytes = bytes.into_boxed_slice();
        let classifier = Classifier::new(&TableFile::parse(&bytes)?);
        Ok(Self { bytes, classifier })
    }

    /// The validated view (a cheap cast; call it once per burst, not per packet).
    #[must_use]
    pub fn file(&self) -> TableFile<'_> {
        TableFile::revalidated(&self.bytes)
    }

    /// The bind classifier.
    #[must_use]
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// The raw file bytes (for digests and re-export).
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}
