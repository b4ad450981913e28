//! A sudoers reader that reads the way sudo 1.9 does, in files of one concern: [`lexer`] (tokens,
//! escapes, quotes, comments, continuation lines), [`grammar`] (aliases, scoped `Defaults`, user
//! specifications with tags), [`include`] (which files, in which order) and [`eval`] (what sudo
//! decides for one user). The reader is pure — paths and bytes in, a verdict out; reading the host
//! happens once, in [`include::gather`].

mod eval;
mod grammar;
mod include;
mod lexer;
mod names;

pub use eval::{judge, Verdict};
pub use grammar::Entry;
pub use include::{gather, load, main_file, FileSet, Located, Overlaid, Sudoers};

pub use crate::host::accounts::Identity;

/// Whether two sudoers texts hold the same statements, token for token (comments, spacing and
/// line breaks aside).
pub fn same_statements(a: &[u8], b: &[u8]) -> bool {
    let bodies = |bytes| {
        lexer::statements(bytes)
            .into_iter()
            .map(|s| s.body)
            .collect::<Vec<_>>()
    };
    bodies(a) == bodies(b)
}

/// The text with its include lines blanked (line numbers kept), for `visudo -c -f -` to check
/// one file's syntax without following includes on the machine it runs on.
pub fn without_includes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let trimmed = line.trim_ascii_start();
        let include = ["#include", "@include"].iter().any(|k| {
            trimmed.starts_with(k.as_bytes())
                && matches!(
                    trimmed[k.len()..]
                        .strip_prefix(b"dir")
                        .unwrap_or(&trimmed[k.len()..])
                        .first(),
                    Some(b' ' | b'\t')
                )
        });
        if include {
            out.extend(line.iter().filter(|&&b| b == b'\n'));
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}

#[cfg(test)]
mod tests;
