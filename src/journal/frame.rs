//! How one record is framed in a segment: its length, a check of the length,
//! its CRC32C, then its bytes; reading a frame, telling why one is bad, and
//! finding the next good one after damage.

use std::ops::Range;

use super::file::FRAME_HEADER_LEN;

/// The check of a frame's length field.
pub(super) fn length_check(len: u32) -> u32 {
    crc32c::crc32c(&len.to_le_bytes())
}

pub(super) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

/// A good frame: where its payload is.
pub(super) struct Frame {
    pub(super) payload: Range<usize>,
}

/// What is wrong with a bad frame.
pub(super) enum BadFrame {
    /// Fewer bytes than a frame header are left.
    HeaderCut { left: usize },
    /// The length fails its check.
    Length,
    /// The payload runs past the end of the file.
    PastEnd { len: u32, left: usize },
    /// The payload fails its CRC; the frame ends at `end`.
    Crc { len: u32, end: usize },
}

impl BadFrame {
    pub(super) fn reason(&self) -> String {
        match self {
            BadFrame::HeaderCut { left } => {
                format!(
                    "the record's frame header is cut short ({left} of {FRAME_HEADER_LEN} bytes)"
                )
            }
            BadFrame::Length => "the record's length fails its check".into(),
            BadFrame::PastEnd { len, left } => {
                format!(
                    "the record runs past the end of the file ({len} payload bytes, {left} left)"
                )
            }
            BadFrame::Crc { len, .. } => {
                format!("the record's CRC does not match its {len} payload bytes")
            }
        }
    }

    /// Where an intact frame could start after this bad one at `pos`: `None` when
    /// the frame is cut short by the end of the file (nothing can follow).
    pub(super) fn resume(&self, pos: usize) -> Option<usize> {
        match self {
            BadFrame::HeaderCut { .. } | BadFrame::PastEnd { .. } => None,
            BadFrame::Length => Some(pos + 1),
            // The length is checked: the bad bytes are in the payload.
            BadFrame::Crc { end, .. } => Some(*end),
        }
    }
}

/// Reads the frame at `pos` (`pos < bytes.len()`).
pub(super) fn read_frame(bytes: &[u8], pos: usize) -> Result<Frame, BadFrame> {
    let frame_header = FRAME_HEADER_LEN as usize;
    let left = bytes.len() - pos;
    if left < frame_header {
        return Err(BadFrame::HeaderCut { left });
    }
    let len = u32_at(bytes, pos);
    if u32_at(bytes, pos + 4) != length_check(len) {
        return Err(BadFrame::Length);
    }
    let start = pos + frame_header;
    let end = start.saturating_add(len as usize);
    if end > bytes.len() {
        let left = bytes.len() - start;
        return Err(BadFrame::PastEnd { len, left });
    }
    if u32_at(bytes, pos + 8) != crc32c::crc32c(&bytes[start..end]) {
        return Err(BadFrame::Crc { len, end });
    }
    Ok(Frame {
        payload: start..end,
    })
}

/// The offset of the first intact frame starting at `from` or later, at any byte
/// offset. Cheap per offset: a length that does not fit in the file, then the
/// 4-byte length check, rule out almost every offset before a payload CRC is
/// computed.
pub(super) fn find_frame(bytes: &[u8], from: usize) -> Option<usize> {
    let frame_header = FRAME_HEADER_LEN as usize;
    let last_start = bytes.len().checked_sub(frame_header)?;
    (from..=last_start).find(|&at| {
        u32_at(bytes, at) as usize <= bytes.len() - at - frame_header
            && read_frame(bytes, at).is_ok()
    })
}
