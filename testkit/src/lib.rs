//! Fixtures for mixco's tests: tiny datasets written in the official on-disk
//! formats, archives of them, and an HTTP server on 127.0.0.1 with scripted
//! misbehaviour (cut transfers, error codes, stalls).

pub mod http;
pub mod mutate;

use std::fs;
use std::io::Write;
use std::path::Path;

/// Pixel bytes of record `i` of a fixture: a deterministic pattern.
pub fn pattern(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|k| ((k * 7 + i * 31) % 251) as u8).collect()
}

/// Writes a CIFAR-10 folder with `per_batch` records in each of the five
/// training batches and `test` records in the test batch; label = index % 10.
pub fn write_cifar10(dir: &Path, per_batch: usize, test: usize) {
    fs::create_dir_all(dir).unwrap();
    let record = |i: usize| [vec![(i % 10) as u8], pattern(i, 3072)].concat();
    for b in 1..=5 {
        let bytes: Vec<u8> = (0..per_batch).flat_map(|i| record(i + b * 1000)).collect();
        fs::write(dir.join(format!("data_batch_{b}.bin")), bytes).unwrap();
    }
    let bytes: Vec<u8> = (0..test).flat_map(record).collect();
    fs::write(dir.join("test_batch.bin"), bytes).unwrap();
    let names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
    fs::write(dir.join("batches.meta.txt"), names).unwrap();
}

/// Writes a CIFAR-100 folder; fine label = index % 100, coarse = index % 20.
pub fn write_cifar100(dir: &Path, train: usize, test: usize) {
    fs::create_dir_all(dir).unwrap();
    let record = |i: usize| [vec![(i % 20) as u8, (i % 100) as u8], pattern(i, 3072)].concat();
    fs::write(dir.join("train.bin"), (0..train).flat_map(record).collect::<Vec<u8>>()).unwrap();
    fs::write(dir.join("test.bin"), (0..test).flat_map(record).collect::<Vec<u8>>()).unwrap();
    let fine: String = (0..100).map(|i| format!("fine{i}\n")).collect();
    let coarse: String = (0..20).map(|i| format!("coarse{i}\n")).collect();
    fs::write(dir.join("fine_label_names.txt"), fine).unwrap();
    fs::write(dir.join("coarse_label_names.txt"), coarse).unwrap();
}

pub fn jpeg_rgb(size: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(size, size, |x, y| {
        image::Rgb([(x * 4) as u8 ^ seed, (y * 4) as u8, seed.wrapping_mul(3)])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95).encode_image(&img).unwrap();
    out
}

pub fn jpeg_gray(size: u32, seed: u8) -> Vec<u8> {
    let img = image::GrayImage::from_fn(size, size, |x, y| image::Luma([((x + y) * 2) as u8 ^ seed]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95).encode_image(&img).unwrap();
    out
}

pub fn png_rgb(width: u32, height: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8 ^ seed, y as u8, seed]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Writes a Tiny ImageNet tree with `classes` wnids, `train` images per class
/// and `val` validation images (round-robin over classes). The first training
/// image of the first class is grayscale, as 48 of the real ones are.
pub fn write_tiny_imagenet(dir: &Path, classes: usize, train: usize, val: usize) {
    let wnids: Vec<String> = (0..classes).map(|c| format!("n{:08}", 1000 + c)).collect();
    fs::create_dir_all(dir.join("val/images")).unwrap();
    fs::write(dir.join("wnids.txt"), wnids.join("\n") + "\n").unwrap();
    let words: String = wnids.iter().enumerate().map(|(c, w)| format!("{w}\tthing {c}, other name\n")).collect();
    fs::write(dir.join("words.txt"), words).unwrap();
    for (c, w) in wnids.iter().enumerate() {
        let images = dir.join("train").join(w).join("images");
        fs::create_dir_all(&images).unwrap();
        let mut boxes = fs::File::create(dir.join("train").join(w).join(format!("{w}_boxes.txt"))).unwrap();
        for i in 0..train {
            let name = format!("{w}_{i}.JPEG");
            let bytes = if c == 0 && i == 0 { jpeg_gray(64, 9) } else { jpeg_rgb(64, (c * 10 + i) as u8) };
            fs::write(images.join(&name), bytes).unwrap();
            writeln!(boxes, "{name}\t0\t0\t63\t63").unwrap();
        }
    }
    let mut ann = String::new();
    for i in 0..val {
        let name = format!("val_{i}.JPEG");
        fs::write(dir.join("val/images").join(&name), jpeg_rgb(64, i as u8)).unwrap();
        ann += &format!("{name}\t{}\t0\t0\t63\t63\n", wnids[i % classes]);
    }
    fs::write(dir.join("val/val_annotations.txt"), ann).unwrap();
}

/// A `.tar.gz` of `dir` whose entries start with `dir`'s own name.
pub fn tar_gz(dir: &Path) -> Vec<u8> {
    let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(enc);
    b.append_dir_all(dir.file_name().unwrap(), dir).unwrap();
    b.into_inner().unwrap().finish().unwrap()
}

/// A `.zip` of `dir` whose entries start with `dir`'s own name.
pub fn zip_dir(dir: &Path) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let base = dir.parent().unwrap();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                w.add_directory(rel, opts).unwrap();
                stack.push(p);
            } else {
                w.start_file(rel, opts).unwrap();
                w.write_all(&fs::read(&p).unwrap()).unwrap();
            }
        }
    }
    w.finish().unwrap().into_inner()
}

/// A tar archive with one regular file whose header names `name` verbatim
/// (`../x`, `/etc/x`: what `tar::Builder` itself refuses to write).
pub fn tar_with_raw_name(name: &str, body: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, body).unwrap();
    b.into_inner().unwrap()
}

/// A tar archive holding a symbolic link `name` -> `target`.
pub fn tar_with_symlink(name: &str, target: &str) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    let mut b = tar::Builder::new(Vec::new());
    b.append_link(&mut h, name, target).unwrap();
    b.into_inner().unwrap()
}
