//! A minimal FastCGI client, just what the PHP-FPM anchor needs: one `RESPONDER` request at a
//! time over a kept connection (`FCGI_KEEP_CONN`), params and a body out, `STDOUT` back until
//! `END_REQUEST`.
//!
//! Written here rather than taken from a crate because the anchor must use the same connection
//! model and the same async runtime as the runwarm client it is compared with (one tokio
//! `UnixStream` per client, requests in sequence, the whole request in one write): a client
//! library brings its own buffering and connection handling, which would then be part of the
//! difference being measured. The subset is small (three record types out, three back) and is
//! checked against a real PHP-FPM on every run of the benchmark.

use std::path::Path;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::UnixStream;

const VERSION: u8 = 1;
const BEGIN_REQUEST: u8 = 1;
const END_REQUEST: u8 = 3;
const PARAMS: u8 = 4;
const STDIN: u8 = 5;
const STDOUT: u8 = 6;
const STDERR: u8 = 7;
const RESPONDER: u16 = 1;
const KEEP_CONN: u8 = 1;
/// Requests go one at a time on a connection, so one id is enough (0 is reserved).
const REQUEST_ID: u16 = 1;
/// Largest content of one record.
const MAX_CONTENT: usize = 65_535;

/// Why a FastCGI exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum FastCgiError {
    #[error("connecting to {path}")]
    Connect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to PHP-FPM")]
    Io(#[from] std::io::Error),
    #[error("PHP-FPM broke the protocol: {0}")]
    Protocol(String),
}

/// The CGI answer of one request.
#[derive(Debug)]
pub struct Answer {
    /// From the `Status:` header; 200 without one.
    pub status: u16,
    pub body: Vec<u8>,
    /// What the script wrote to `STDERR` records.
    pub stderr: Vec<u8>,
}

/// One kept connection to PHP-FPM.
pub struct Connection {
    stream: BufReader<UnixStream>,
    out: Vec<u8>,
}

impl Connection {
    pub async fn connect(socket: &Path) -> Result<Connection, FastCgiError> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|source| FastCgiError::Connect {
                path: socket.display().to_string(),
                source,
            })?;
        Ok(Connection {
            stream: BufReader::with_capacity(16 * 1024, stream),
            out: Vec::with_capacity(1024),
        })
    }

    /// Sends one request (in a single write) and reads its answer; the connection stays open.
    pub async fn request(
        &mut self,
        params: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Answer, FastCgiError> {
        self.out.clear();
        let mut begin = [0u8; 8];
        begin[..2].copy_from_slice(&RESPONDER.to_be_bytes());
        begin[2] = KEEP_CONN;
        push_record(&mut self.out, BEGIN_REQUEST, &begin);
        let mut encoded = Vec::with_capacity(512);
        for (name, value) in params {
            push_length(&mut encoded, name.len());
            push_length(&mut encoded, value.len());
            encoded.extend_from_slice(name.as_bytes());
            encoded.extend_from_slice(value.as_bytes());
        }
        for chunk in encoded.chunks(MAX_CONTENT) {
            push_record(&mut self.out, PARAMS, chunk);
        }
        push_record(&mut self.out, PARAMS, &[]);
        for chunk in body.chunks(MAX_CONTENT) {
            push_record(&mut self.out, STDIN, chunk);
        }
        push_record(&mut self.out, STDIN, &[]);
        self.stream.get_mut().write_all(&self.out).await?;
        self.read_answer().await
    }

    async fn read_answer(&mut self) -> Result<Answer, FastCgiError> {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        loop {
            let mut header = [0u8; 8];
            self.stream.read_exact(&mut header).await?;
            if header[0] != VERSION {
                return Err(FastCgiError::Protocol(format!("version {}", header[0])));
            }
            let kind = header[1];
            let id = u16::from_be_bytes([header[2], header[3]]);
            let length = usize::from(u16::from_be_bytes([header[4], header[5]]));
            let padding = usize::from(header[6]);
            let mut content = vec![0u8; length + padding];
            self.stream.read_exact(&mut content).await?;
            content.truncate(length);
            if id != REQUEST_ID {
                return Err(FastCgiError::Protocol(format!("a record of request {id}")));
            }
            match kind {
                STDOUT => stdout.extend_from_slice(&content),
                STDERR => stderr.extend_from_slice(&content),
                END_REQUEST => break,
                other => {
                    return Err(FastCgiError::Protocol(format!("record type {other}")));
                }
            }
        }
        let (status, body) = split_cgi(&stdout)?;
        Ok(Answer {
            status,
            body: body.to_vec(),
            stderr,
        })
    }
}

/// Appends one record with its header and padding to a multiple of 8 bytes.
fn push_record(out: &mut Vec<u8>, kind: u8, content: &[u8]) {
    let length = u16::try_from(content.len()).unwrap_or(u16::MAX);
    let padding = (8 - content.len() % 8) % 8;
    out.push(VERSION);
    out.push(kind);
    out.extend_from_slice(&REQUEST_ID.to_be_bytes());
    out.extend_from_slice(&length.to_be_bytes());
    out.push(padding as u8);
    out.push(0);
    out.extend_from_slice(&content[..usize::from(length)]);
    out.extend(std::iter::repeat_n(0, padding));
}

/// A name-value pair length: one byte below 128, else four with the high bit set.
fn push_length(out: &mut Vec<u8>, length: usize) {
    match u8::try_from(length) {
        Ok(short) if short < 0x80 => out.push(short),
        _ => {
            let long = u32::try_from(length).unwrap_or(u32::MAX >> 1) | 0x8000_0000;
            out.extend_from_slice(&long.to_be_bytes());
        }
    }
}

/// Splits a CGI response into its status and body.
fn split_cgi(stdout: &[u8]) -> Result<(u16, &[u8]), FastCgiError> {
    let end = stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| FastCgiError::Protocol("no end of the CGI headers".to_owned()))?;
    let head = String::from_utf8_lossy(&stdout[..end]);
    let status = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("status")
                .then(|| value.trim().split(' ').next()?.parse().ok())?
        })
        .unwrap_or(200);
    Ok((status, &stdout[end + 4..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_padded_to_eight_bytes() {
        let mut out = Vec::new();
        push_record(&mut out, STDIN, b"abc");
        assert_eq!(out.len(), 8 + 8);
        assert_eq!(&out[..8], &[1, STDIN, 0, 1, 0, 3, 5, 0]);
        out.clear();
        push_record(&mut out, PARAMS, &[]);
        assert_eq!(out, [1, PARAMS, 0, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn long_lengths_take_four_bytes() {
        let mut out = Vec::new();
        push_length(&mut out, 127);
        push_length(&mut out, 128);
        assert_eq!(out, [127, 0x80, 0, 0, 128]);
    }

    #[test]
    fn cgi_status_and_body_are_split() {
        let (status, body) = split_cgi(b"Status: 404 Not Found\r\nX: y\r\n\r\nnope").unwrap();
        assert_eq!((status, body), (404, &b"nope"[..]));
        let (status, body) = split_cgi(b"Content-type: application/json\r\n\r\n{}").unwrap();
        assert_eq!((status, body), (200, &b"{}"[..]));
        assert!(split_cgi(b"garbage").is_err());
    }
}
