//! Bounded decompression of gzipped IDX files.
//!
//! A gzip stream can expand by a factor of about 1000, so a small file may claim
//! gigabytes once decompressed (a "gzip bomb"). The IDX header announces exactly how many
//! bytes follow it, so the decoder reads the header first, computes the announced size
//! `4 + 4 * ndims + prod(dims)`, and then reads **at most the announced size plus one
//! byte**: the extra byte is enough to report trailing data, and decompression stops
//! there whatever the stream still holds. The announced size itself is capped at
//! [`MAX_IDX_BYTES`], so memory stays bounded by `min(announced, cap) + 1` bytes.
//!
//! Concatenated gzip members (what `cat a.gz b.gz` produces and `zcat` reads) are one
//! stream here too: decoding uses [`flate2::read::MultiGzDecoder`].

use std::io::Read;

use crate::BenchError;

/// Largest decompressed IDX file accepted, in bytes (1 GiB; the MNIST training images
/// are 47 MB). A header announcing more is rejected before anything else is read.
pub const MAX_IDX_BYTES: u64 = 1 << 30;

/// Whether `raw` starts with the gzip magic bytes `1f 8b`.
pub fn is_gzip(raw: &[u8]) -> bool {
    raw.starts_with(&[0x1f, 0x8b])
}

fn err(file: &str, offset: u64, message: impl Into<String>) -> BenchError {
    BenchError::Idx {
        file: file.to_string(),
        offset,
        message: message.into(),
    }
}

/// Reads up to `limit` bytes of `r` into `out`; a broken stream is an IDX error at the
/// current decompressed offset.
fn read_up_to(
    r: &mut impl Read,
    out: &mut Vec<u8>,
    limit: u64,
    file: &str,
) -> Result<(), BenchError> {
    r.take(limit)
        .read_to_end(out)
        .map(|_| ())
        .map_err(|e| err(file, out.len() as u64, format!("gzip stream broken: {e}")))
}

/// Size in bytes the IDX header `head` (magic + dimensions) announces for the whole
/// file, or an error if it overflows or exceeds [`MAX_IDX_BYTES`]. `head` must hold the
/// full header (`4 + 4 * head[3]` bytes).
pub fn announced_idx_size(head: &[u8], file: &str) -> Result<u64, BenchError> {
    let ndims = head[3] as usize;
    let mut total: u64 = 1;
    for i in 0..ndims {
        let o = 4 + 4 * i;
        let d = u32::from_be_bytes([head[o], head[o + 1], head[o + 2], head[o + 3]]);
        total = total
            .checked_mul(u64::from(d))
            .ok_or_else(|| err(file, o as u64, "dimensions overflow"))?;
    }
    let total = total
        .checked_add(4 + 4 * ndims as u64)
        .ok_or_else(|| err(file, 4, "dimensions overflow"))?;
    if total > MAX_IDX_BYTES {
        return Err(err(
            file,
            4,
            format!(
                "header announces {total} bytes, more than the {MAX_IDX_BYTES}-byte cap \
                 of an IDX file"
            ),
        ));
    }
    Ok(total)
}

/// Decompresses a gzipped IDX file (one or several concatenated members), reading at
/// most the size its header announces plus one byte. Shorter or longer content is left
/// to the IDX parser to report (truncated data / trailing bytes); a header announcing
/// more than [`MAX_IDX_BYTES`] is an error.
pub fn gunzip_idx(raw: &[u8], file: &str) -> Result<Vec<u8>, BenchError> {
    let mut dec = flate2::read::MultiGzDecoder::new(raw);
    let mut out = Vec::new();
    read_up_to(&mut dec, &mut out, 4, file)?;
    if out.len() < 4 {
        return Ok(out); // the parser reports the truncation
    }
    let head_len = 4 + 4 * u64::from(out[3]);
    read_up_to(&mut dec, &mut out, head_len - 4, file)?;
    if (out.len() as u64) < head_len {
        return Ok(out);
    }
    let total = announced_idx_size(&out, file)?;
    read_up_to(&mut dec, &mut out, total + 1 - head_len, file)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn idx1(n: u32) -> Vec<u8> {
        let mut v = vec![0, 0, 8, 1];
        v.extend_from_slice(&n.to_be_bytes());
        v.extend((0..n).map(|i| (i % 10) as u8));
        v
    }

    #[test]
    fn a_gzip_bomb_is_read_only_up_to_the_announced_size_plus_one() {
        // Header announces one 28x28 image; the stream then holds 64 MiB of zeros.
        let mut bomb = vec![0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28];
        bomb.resize(16 + (64 << 20), 0);
        let raw = gz(&bomb);
        assert!(
            raw.len() < 100_000,
            "bomb compresses to {} bytes",
            raw.len()
        );
        let out = gunzip_idx(&raw, "bomb.gz").unwrap();
        assert_eq!(out.len(), 16 + 28 * 28 + 1);
        let e = crate::data::idx::parse_idx_images(&out, "bomb.gz").unwrap_err();
        assert!(e.to_string().contains("trailing"), "{e}");
    }

    #[test]
    fn a_header_announcing_more_than_the_cap_is_rejected_before_reading_data() {
        let raw = gz(&[0, 0, 8, 3, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 7, 7]);
        let e = gunzip_idx(&raw, "big.gz").unwrap_err();
        assert!(e.to_string().contains("cap"), "{e}");
    }

    #[test]
    fn concatenated_members_decode_like_zcat() {
        let whole = idx1(50);
        let mut raw = gz(&whole[..20]);
        raw.extend(gz(&whole[20..]));
        assert_eq!(gunzip_idx(&raw, "multi.gz").unwrap(), whole);
    }

    #[test]
    fn short_and_broken_streams_give_typed_results() {
        assert_eq!(gunzip_idx(&gz(&[0, 0]), "s.gz").unwrap(), vec![0, 0]);
        let mut raw = gz(&idx1(30));
        raw.truncate(raw.len() - 5);
        assert!(matches!(
            gunzip_idx(&raw, "t.gz"),
            Err(BenchError::Idx { .. })
        ));
    }
}
