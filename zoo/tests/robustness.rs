//! Mutated and truncated variants of real checkpoints (the fixtures that
//! scripts/make_import_fixtures.py saved with PyTorch) through the pickle
//! reader, the torch.save zip reader and the whole importer: each must end
//! in `Ok` or a named error, never a panic, an abort or a hang.
//! `MIXCO_FUZZ=N cargo test -p mixco-zoo --test robustness` (or `make fuzz`)
//! tries N variants of each instead.

use mixco_testkit::mutate::{budget, check_no_panic};
use std::io::Read;
use std::path::Path;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

/// The `ARCHIVE/data.pkl` entry of a torch.save file.
fn data_pkl(zip_bytes: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).unwrap();
    let name = zip.file_names().find(|n| n.ends_with("/data.pkl")).unwrap().to_string();
    let mut out = Vec::new();
    zip.by_name(&name).unwrap().read_to_end(&mut out).unwrap();
    out
}

#[test]
fn pickles_of_real_checkpoints() {
    for (name, seed) in [("moco_r10w4.pth.tar", 1), ("torchvision_r10w4_half.pth", 2)] {
        let pkl = data_pkl(&fixture(name));
        assert!(mixco_zoo::pickle::load(&pkl).is_ok());
        check_no_panic(name, &pkl, budget(3000), seed, mixco_zoo::pickle::load);
    }
}

/// Every entry of a zip, in order.
fn entries(zip_bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut out = Vec::new();
            f.read_to_end(&mut out).unwrap();
            (f.name().to_string(), out)
        })
        .collect()
}

/// A stored zip of `entries` with `pkl` as the `data.pkl` entry.
fn repack(entries: &[(String, Vec<u8>)], pkl: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        w.start_file(name.as_str(), opts).unwrap();
        w.write_all(if name.ends_with("/data.pkl") { pkl } else { data }).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Mutated pickles inside an intact zip, so that what they describe (tensor
/// shapes, strides, offsets, storage sizes) reaches the tensor reader and
/// the importer: a shape whose product overflows, or zero strides over a
/// one-element storage, once panicked or asked for 2^60 elements.
#[test]
fn mutated_pickles_inside_valid_archives_through_the_importer() {
    let opts = mixco_zoo::import::ImportOptions::default();
    let name = "torchvision_r10w4_half.pth";
    let files = entries(&fixture(name));
    let pkl = data_pkl(&fixture(name));
    assert!(mixco_zoo::import::import_bytes(Path::new(name), &repack(&files, &pkl), &opts).is_ok());
    check_no_panic(name, &pkl, budget(1500), 5, |p| mixco_zoo::import::import_bytes(Path::new(name), &repack(&files, p), &opts).map(|_| ()));
}

#[test]
fn torch_save_files_through_the_importer() {
    let opts = mixco_zoo::import::ImportOptions::default();
    for (name, seed) in [("torchvision_r10w4_half.pth", 3), ("malicious.pth.tar", 4)] {
        let bytes = fixture(name);
        check_no_panic(name, &bytes, budget(400), seed, |b| mixco_zoo::import::import_bytes(Path::new(name), b, &opts).map(|_| ()));
    }
}

/// The legacy format (pickles in a row, then storages as an element count
/// and raw bytes): its counts and the pickles' storage sizes and views are
/// untrusted, so mutants reach the storage reader and the tensor views.
/// Files that hold opaque objects too (argparse.Namespace, HistoryBuffer,
/// a whole pickled module) exercise the placeholders.
#[test]
fn legacy_format_files_through_the_importer() {
    let opts = mixco_zoo::import::ImportOptions::default();
    for (name, seed) in [("layouts/torchvision.legacy.pth", 7), ("layouts/solo_learn.legacy.pth", 8), ("layouts/mmselfsup.legacy.pth", 9), ("whole_module.legacy.pth", 10)] {
        let bytes = fixture(name);
        check_no_panic(name, &bytes, budget(300), seed, |b| mixco_zoo::import::import_bytes(Path::new(name), b, &opts).map(|_| ()));
    }
}

/// Lightning checkpoints in the zip format, whose pickles hold OmegaConf
/// configs and scheduler state as opaque objects: mutated pickles through
/// the pickle reader.
#[test]
fn pickles_with_opaque_objects() {
    let pkl = data_pkl(&fixture("layouts/solo_learn.zip.pth"));
    assert!(mixco_zoo::pickle::load(&pkl).is_ok());
    check_no_panic("solo_learn.zip.pth", &pkl, budget(1500), 11, mixco_zoo::pickle::load);
}

/// The embedded manifest, mutated, through the manifest parser (a user's
/// `--manifest` file or a downloaded one is just as untrusted).
#[test]
fn manifests() {
    let valid = include_bytes!("../manifest.toml");
    check_no_panic("manifest.toml", valid, budget(3000), 6, |b| mixco_zoo::Manifest::parse("mutated", &String::from_utf8_lossy(b)));
}
