//! Mutated and truncated variants of valid CIFAR batches, Tiny ImageNet
//! JPEGs and Tiny ImageNet's text files through the readers: each must end
//! in `Ok` or a named error, never a panic, an abort or a hang
//! (`MIXCO_FUZZ=N` sets the variants per file; `make fuzz`).

use mixco_data::cifar::{parse_into, Layout};
use mixco_data::ImageSet;
use mixco_testkit as kit;
use mixco_testkit::mutate::{budget, check_no_panic};
use std::path::Path;
use std::sync::Arc;

#[test]
fn cifar_batches() {
    let dir = tempfile::tempdir().unwrap();
    kit::write_cifar10(dir.path(), 3, 2);
    let valid = std::fs::read(dir.path().join("data_batch_1.bin")).unwrap();
    let classes = Arc::new((0..100).map(|c| c.to_string()).collect::<Vec<_>>());
    for (layout, seed) in [(Layout { label_bytes: 1, label_index: 0, num_classes: 10 }, 1), (Layout { label_bytes: 2, label_index: 1, num_classes: 100 }, 2)] {
        check_no_panic("cifar batch", &valid, budget(2000), seed, |b| {
            let mut set = ImageSet::empty(32, 32, classes.clone());
            parse_into(b, Path::new("data_batch_1.bin"), layout, &mut set)
        });
    }
}

#[test]
fn tiny_imagenet_jpegs() {
    for (valid, seed) in [(kit::jpeg_rgb(64, 3), 3), (kit::jpeg_gray(64, 4), 4)] {
        let mut out = vec![0u8; 3 * 64 * 64];
        check_no_panic("jpeg", &valid, budget(1500), seed, |b| mixco_data::decode::decode_rgb_planar(Path::new("x.JPEG"), b, 64, &mut out));
    }
}

/// wnids.txt, words.txt and val_annotations.txt of a small official-layout
/// folder, each mutated in turn, through the whole loader.
#[test]
fn tiny_imagenet_text_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tiny-imagenet-200");
    kit::write_tiny_imagenet(&root, 2, 2, 2);
    for (file, seed) in [("wnids.txt", 5), ("words.txt", 6), ("val/val_annotations.txt", 7)] {
        let path = root.join(file);
        let valid = std::fs::read(&path).unwrap();
        check_no_panic(file, &valid, budget(300), seed, |b| {
            std::fs::write(&path, b).unwrap();
            mixco_data::tiny_imagenet::load(&root).map(|_| ())
        });
        std::fs::write(&path, &valid).unwrap();
    }
}
