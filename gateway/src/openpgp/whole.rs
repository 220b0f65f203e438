//! A certificate read whole, or refused. Sequoia reads leniently, as RFC 9580
//! asks of a mail client: it ignores the armor's CRC-24 (§6.1.1 says not to
//! enforce it) and drops a binding signature that does not verify, with the
//! subkey it binds. For a directory that is the wrong trade: one damaged
//! base64 line in France's certificate removed its encryption subkey, the
//! certificate still read, France's mail was still accepted, and France
//! silently received nothing. GnuPG refuses the same file ("CRC error").
//! Here a certificate is read only if every byte of it is accounted for:
//! the checksum matches where there is one, nothing follows it, exactly one
//! certificate, no packet that does not parse, no signature that does not
//! verify.

use anyhow::{bail, Context, Result};
use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::Cert;

/// The certificate in `data` (armored or binary), if it is whole.
pub fn certificate(data: &[u8]) -> Result<Cert> {
    let binary = match armored_body(data)? {
        Some(b) => b,
        None => data.to_vec(),
    };
    let mut certs = sequoia_openpgp::cert::CertParser::from_bytes(&binary)
        .context("the certificate cannot be read")?;
    let cert = match certs.next() {
        Some(Ok(c)) => c,
        Some(Err(e)) => return Err(e.context("the certificate cannot be read")),
        None => bail!("no certificate"),
    };
    match certs.next() {
        None => {}
        Some(Ok(other)) => bail!(
            "more than one certificate ({} and {})",
            cert.fingerprint(),
            other.fingerprint()
        ),
        Some(Err(e)) => return Err(e.context("data after the certificate cannot be read")),
    }
    if cert.unknowns().next().is_some() {
        bail!(
            "the certificate {} holds a packet that does not parse (damaged?)",
            cert.fingerprint()
        );
    }
    let bad = cert.bad_signatures().count();
    if bad > 0 {
        bail!(
            "the certificate {} holds {bad} signature(s) that do not verify (damaged, or \
             tampered with): a reader would drop what they bind, such as a subkey",
            cert.fingerprint()
        );
    }
    Ok(cert)
}

/// The decoded body of an ASCII-armored block (None: `data` is not armored),
/// its CRC-24 checked where the block has one, nothing but white space after
/// its END line.
fn armored_body(data: &[u8]) -> Result<Option<Vec<u8>>> {
    use base64::Engine as _;
    let start = data.iter().position(|b| !b.is_ascii_whitespace());
    if !start.is_some_and(|s| data[s..].starts_with(b"-----BEGIN PGP ")) {
        return Ok(None);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        bail!("the armored certificate is not ASCII text");
    };
    let mut lines = text.lines().map(str::trim_end).skip_while(|l| l.is_empty());
    let begin = lines.next().unwrap_or_default();
    let label = begin
        .strip_prefix("-----BEGIN ")
        .and_then(|l| l.strip_suffix("-----"))
        .context("the armor's BEGIN line is damaged")?;
    // Header lines ("Comment: ..."), up to the empty line.
    let mut body_lines: Vec<&str> = Vec::new();
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        if !line.contains(": ") {
            // No header and no empty line: the body starts at once (some
            // tools write it so).
            body_lines.push(line);
            break;
        }
    }
    let end = format!("-----END {label}-----");
    let mut checksum = None;
    let mut ended = false;
    for line in lines.by_ref() {
        if line == end {
            ended = true;
            break;
        }
        if let Some(c) = line.strip_prefix('=') {
            checksum = Some(c.to_string());
            continue;
        }
        if checksum.is_some() {
            bail!("the armor has lines after its checksum line");
        }
        body_lines.push(line);
    }
    if !ended {
        bail!("the armor has no `{end}` line (truncated?)");
    }
    if lines.any(|l| !l.is_empty()) {
        bail!("something follows the armor's END line");
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let body = engine
        .decode(body_lines.concat())
        .context("the armor's base64 is damaged")?;
    if let Some(c) = checksum {
        let sum = engine
            .decode(&c)
            .ok()
            .filter(|s| s.len() == 3)
            .context("the armor's checksum line is damaged")?;
        let want = u32::from_be_bytes([0, sum[0], sum[1], sum[2]]);
        if crc24(&body) != want {
            bail!(
                "the armor's CRC-24 checksum does not match its content: the file was damaged \
                 (GnuPG refuses it too: \"CRC error\")"
            );
        }
    }
    Ok(Some(body))
}

/// The CRC-24 of RFC 4880 §6.1.
fn crc24(data: &[u8]) -> u32 {
    const INIT: u32 = 0xB7_04CE;
    const POLY: u32 = 0x186_4CFB;
    let mut crc = INIT;
    for &b in data {
        crc ^= u32::from(b) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x100_0000 != 0 {
                crc ^= POLY;
            }
        }
    }
    crc & 0xFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;
    use sequoia_openpgp::cert::CertBuilder;
    use sequoia_openpgp::serialize::SerializeInto;

    fn armored() -> (Cert, String) {
        let (cert, _) = CertBuilder::general_purpose(Some("NFP France <nfp@fr.example>"))
            .generate()
            .unwrap();
        let text = String::from_utf8(cert.armored().to_vec().unwrap()).unwrap();
        (cert, text)
    }

    #[test]
    fn crc24_of_rfc_4880() {
        // The checksum of nothing is the initial value.
        assert_eq!(crc24(b""), 0xB704CE);
    }

    #[test]
    fn a_whole_certificate_reads_armored_and_binary() {
        let (cert, text) = armored();
        assert_eq!(certificate(text.as_bytes()).unwrap(), cert);
        assert_eq!(certificate(&cert.to_vec().unwrap()).unwrap(), cert);
    }

    #[test]
    fn one_damaged_base64_line_is_refused() {
        let (_, text) = armored();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        // A character of a body line (past the header block) changed.
        let i = lines.iter().position(|l| l.is_empty()).unwrap() + 4;
        let mut chars: Vec<char> = lines[i].chars().collect();
        chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
        lines[i] = chars.into_iter().collect();
        let damaged = lines.join("\n");
        let e = format!("{:#}", certificate(damaged.as_bytes()).unwrap_err());
        assert!(
            e.contains("CRC-24") || e.contains("do not verify") || e.contains("does not parse"),
            "{e}"
        );
        // Sequoia alone reads it.
        assert!(Cert::from_bytes(damaged.as_bytes()).is_ok());
    }

    #[test]
    fn trailing_data_and_two_certificates_are_refused() {
        let (_, text) = armored();
        let e = certificate(format!("{text}\ngarbage\n").as_bytes()).unwrap_err();
        assert!(format!("{e:#}").contains("follows"), "{e:#}");
        let (other, _) = armored();
        let mut two = armored().0.to_vec().unwrap();
        two.extend(other.to_vec().unwrap());
        let e = certificate(&two).unwrap_err();
        assert!(format!("{e:#}").contains("more than one"), "{e:#}");
    }
}
