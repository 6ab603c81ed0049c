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

#[test]
fn torch_save_files_through_the_importer() {
    let opts = mixco_zoo::import::ImportOptions::default();
    for (name, seed) in [("torchvision_r10w4_half.pth", 3), ("malicious.pth.tar", 4)] {
        let bytes = fixture(name);
        check_no_panic(name, &bytes, budget(400), seed, |b| mixco_zoo::import::import_bytes(Path::new(name), b, &opts).map(|_| ()));
    }
}
