//! Safe extraction of `.tar`, `.tar.gz`, `.tar.xz` and `.zip` archives: every
//! entry must stay inside the destination (no absolute paths, no `..`), and
//! links and special files are refused, so a hostile archive cannot write
//! outside the data root.

use crate::{Error, Result};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek};
use std::path::{Component, Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Tar,
    TarGz,
    TarXz,
    Zip,
}

/// Detects the format from the first bytes (not the file name).
pub fn detect(path: &Path) -> Result<Format> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = [0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]).map_err(|e| Error::io(path, e))? {
            0 => break,
            k => n += k,
        }
    }
    let head = &head[..n];
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Format::TarGz)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Ok(Format::TarXz)
    } else if head.starts_with(b"PK\x03\x04") {
        Ok(Format::Zip)
    } else if n == 512 && (&head[257..262] == b"ustar" || tar_checksum_ok(head)) {
        Ok(Format::Tar)
    } else {
        Err(Error::format(path, "not a recognised archive (expected .tar, .tar.gz, .tar.xz or .zip)"))
    }
}

/// Old (v7) tar headers carry no magic; their header checksum identifies them.
fn tar_checksum_ok(h: &[u8]) -> bool {
    let field = String::from_utf8_lossy(&h[148..156]);
    let Ok(want) = u32::from_str_radix(field.trim_matches(|c: char| c == '\0' || c == ' '), 8) else {
        return false;
    };
    let sum: u32 = h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { b as u32 }).sum();
    sum == want
}

/// The relative path an entry may be written to, or an error naming it.
fn safe_relative(archive: &Path, name: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(Error::format(
                    archive,
                    format!("entry `{}` would be written outside the destination; refusing the archive", name.display()),
                ))
            }
        }
    }
    Ok(out)
}

fn write_entry(archive: &Path, dest: &Path, rel: &Path, mut reader: impl Read) -> Result<()> {
    let target = dest.join(rel);
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let mut out = File::create(&target).map_err(|e| Error::io(&target, e))?;
    io::copy(&mut reader, &mut out)
        .map_err(|e| Error::format(archive, format!("reading entry `{}`: {e}", rel.display())))?;
    Ok(())
}

/// Extracts `archive` into the existing folder `dest`; returns the number of
/// files written.
pub fn extract(archive: &Path, dest: &Path) -> Result<usize> {
    let format = detect(archive)?;
    let file = File::open(archive).map_err(|e| Error::io(archive, e))?;
    let reader = BufReader::with_capacity(1 << 20, file);
    match format {
        Format::Tar => extract_tar(archive, reader, dest),
        Format::TarGz => extract_tar(archive, flate2::read::GzDecoder::new(reader), dest),
        Format::TarXz => extract_tar(archive, xz2::read::XzDecoder::new(reader), dest),
        Format::Zip => extract_zip(archive, reader, dest),
    }
}

fn extract_tar(archive: &Path, reader: impl Read, dest: &Path) -> Result<usize> {
    use tar::EntryType;
    let bad = |e: io::Error| Error::format(archive, format!("corrupt archive: {e}"));
    let mut tar = tar::Archive::new(reader);
    let mut files = 0;
    for entry in tar.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.into_owned();
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                let rel = safe_relative(archive, &name)?;
                write_entry(archive, dest, &rel, entry)?;
                files += 1;
            }
            EntryType::Directory => {
                let dir = dest.join(safe_relative(archive, &name)?);
                fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            }
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink => {}
            EntryType::Symlink | EntryType::Link => {
                return Err(Error::format(
                    archive,
                    format!("entry `{}` is a link; links are refused", name.display()),
                ))
            }
            other => {
                return Err(Error::format(
                    archive,
                    format!("entry `{}` is a special file ({other:?}); refused", name.display()),
                ))
            }
        }
    }
    Ok(files)
}

fn extract_zip(archive: &Path, reader: impl Read + Seek, dest: &Path) -> Result<usize> {
    let bad = |e: zip::result::ZipError| Error::format(archive, format!("corrupt zip archive: {e}"));
    let mut zip = zip::ZipArchive::new(reader).map_err(bad)?;
    let mut files = 0;
    for i in 0..zip.len() {
        let entry = zip.by_index(i).map_err(bad)?;
        let name = PathBuf::from(entry.name());
        if entry.is_symlink() {
            return Err(Error::format(archive, format!("entry `{}` is a link; links are refused", name.display())));
        }
        let rel = safe_relative(archive, &name)?;
        if entry.is_dir() {
            let dir = dest.join(&rel);
            fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        } else {
            write_entry(archive, dest, &rel, entry)?;
            files += 1;
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_escaping_paths() {
        for bad in ["../x", "/etc/passwd", "a/../../b"] {
            assert!(safe_relative(Path::new("a.tar"), Path::new(bad)).is_err(), "{bad}");
        }
        assert_eq!(safe_relative(Path::new("a.tar"), Path::new("./d/e")).unwrap(), PathBuf::from("d/e"));
    }
}
