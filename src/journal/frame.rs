//! How one record is framed in a segment (format version 2): its length, its LSN
//! and the journal's tag, a check of those, the payload's CRC-32C, then the
//! payload. Writing a frame, reading one from a stream, telling why one is bad,
//! and finding the next self-consistent one after damage.

use std::io::{self, Read};

use super::Lsn;

/// The length of a record frame's header: length, LSN, journal tag, header
/// check, payload CRC.
pub const FRAME_HEADER_LEN: u64 = 24;

const HEADER: usize = FRAME_HEADER_LEN as usize;

/// The tag a journal writes in each of its frames: the low 32 bits of its id.
pub(super) fn journal_tag(journal_id: u64) -> u32 {
    journal_id as u32
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Appends the frame of `payload` (at most `u32::MAX` bytes, checked by the
/// caller) to `out`.
pub(super) fn encode(out: &mut Vec<u8>, lsn: Lsn, tag: u32, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("checked by the caller");
    out.reserve(HEADER + payload.len());
    let start = out.len();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&lsn.0.to_le_bytes());
    out.extend_from_slice(&tag.to_le_bytes());
    let check = crc32c::crc32c(&out[start..start + 16]);
    out.extend_from_slice(&check.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// A frame header whose check passed.
struct Header {
    len: u32,
    lsn: Lsn,
    tag: u32,
    crc: u32,
}

/// Parses a frame header (`bytes.len() >= FRAME_HEADER_LEN`); `None` if its check
/// fails.
fn parse_header(bytes: &[u8]) -> Option<Header> {
    (u32_at(bytes, 16) == crc32c::crc32c(&bytes[..16])).then(|| Header {
        len: u32_at(bytes, 0),
        lsn: Lsn(u64_at(bytes, 4)),
        tag: u32_at(bytes, 12),
        crc: u32_at(bytes, 20),
    })
}

/// A self-consistent frame: its header check and payload CRC pass. Whether it
/// belongs where it is (its LSN, its tag) is for the caller to check.
pub(super) struct Frame {
    pub(super) lsn: Lsn,
    pub(super) tag: u32,
    pub(super) payload: Vec<u8>,
}

/// What is wrong with a bad frame.
#[derive(Debug)]
pub(super) enum BadFrame {
    /// Fewer bytes than a frame header are left.
    HeaderCut { left: u64 },
    /// The header fails its check.
    HeaderCheck,
    /// The payload runs past the end of the file.
    PastEnd { len: u32, left: u64 },
    /// The payload fails its CRC.
    Crc { len: u32 },
}

impl BadFrame {
    pub(super) fn reason(&self) -> String {
        match self {
            BadFrame::HeaderCut { left } => {
                format!(
                    "the record's frame header is cut short ({left} of {FRAME_HEADER_LEN} bytes)"
                )
            }
            BadFrame::HeaderCheck => "the record's frame header fails its check".into(),
            BadFrame::PastEnd { len, left } => {
                format!(
                    "the record runs past the end of the file ({len} payload bytes, {left} left)"
                )
            }
            BadFrame::Crc { len } => {
                format!("the record's CRC does not match its {len} payload bytes")
            }
        }
    }

    /// Where, relative to the bad frame's start, an intact frame could start
    /// after it: `None` when the frame is cut short by the end of the file
    /// (nothing can follow).
    pub(super) fn resume(&self) -> Option<usize> {
        match self {
            BadFrame::HeaderCut { .. } | BadFrame::PastEnd { .. } => None,
            BadFrame::HeaderCheck => Some(1),
            // The header is checked: the bad bytes are in the payload.
            BadFrame::Crc { len } => Some(HEADER + *len as usize),
        }
    }
}

/// Reads the frame that starts `left` bytes before the end of the file, from
/// `reader`. Reads no more than the frame, and never more than `left` bytes: the
/// payload is read only once its length is known to fit. The outer error is an
/// I/O error; the inner one a bad frame.
pub(super) fn read_frame(reader: &mut impl Read, left: u64) -> io::Result<Result<Frame, BadFrame>> {
    if left < FRAME_HEADER_LEN {
        return Ok(Err(BadFrame::HeaderCut { left }));
    }
    let mut header = [0u8; HEADER];
    reader.read_exact(&mut header)?;
    let Some(h) = parse_header(&header) else {
        return Ok(Err(BadFrame::HeaderCheck));
    };
    let left = left - FRAME_HEADER_LEN;
    if u64::from(h.len) > left {
        return Ok(Err(BadFrame::PastEnd { len: h.len, left }));
    }
    let mut payload = vec![0u8; h.len as usize];
    reader.read_exact(&mut payload)?;
    if crc32c::crc32c(&payload) != h.crc {
        return Ok(Err(BadFrame::Crc { len: h.len }));
    }
    Ok(Ok(Frame {
        lsn: h.lsn,
        tag: h.tag,
        payload,
    }))
}

/// The offset of the first self-consistent frame starting at `from` or later in
/// `bytes`, at any byte offset. Cheap per offset: a length that does not fit in
/// the bytes, then the 4-byte header check, rule out almost every offset before
/// a payload CRC is computed.
pub(super) fn find_frame(bytes: &[u8], from: usize) -> Option<usize> {
    let last_start = bytes.len().checked_sub(HEADER)?;
    (from..=last_start).find(|&at| {
        let len = u32_at(bytes, at) as usize;
        len <= bytes.len() - at - HEADER
            && parse_header(&bytes[at..]).is_some_and(|h| {
                let start = at + HEADER;
                crc32c::crc32c(&bytes[start..start + len]) == h.crc
            })
    })
}
