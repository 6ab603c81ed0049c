//! Readers against fixtures written in each official format.

use mixco_data::{Error, Source};
use mixco_testkit as kit;
use std::fs;

#[test]
fn cifar10_loads_both_splits() {
    let root = tempfile::tempdir().unwrap();
    kit::write_cifar10(&root.path().join("cifar-10-batches-bin"), 30, 20);
    let s = Source::Cifar10.load(root.path()).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (150, 20));
    assert_eq!(s.train.classes[9], "truck");
    assert_eq!(s.test.labels[..3], [0, 1, 2]);
    assert_eq!(s.test.image(5), &kit::pattern(5, 3072)[..]);
    assert_eq!(s.train.class_counts(), vec![15; 10]);
}

#[test]
fn cifar10_truncated_and_oversized_files_are_named() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cifar-10-batches-bin");
    kit::write_cifar10(&dir, 3, 3);
    let batch = dir.join("data_batch_2.bin");
    let mut bytes = fs::read(&batch).unwrap();
    bytes.truncate(bytes.len() - 100);
    fs::write(&batch, &bytes).unwrap();
    let err = Source::Cifar10.load(root.path()).unwrap_err().to_string();
    assert!(err.contains("data_batch_2.bin: size 9119 bytes is not a whole number of 3073-byte records"), "{err}");

    kit::write_cifar10(&dir, 3, 3);
    fs::write(dir.join("test_batch.bin"), vec![0u8; 3073 * 10_001]).unwrap();
    let err = Source::Cifar10.load(root.path()).unwrap_err().to_string();
    assert!(err.contains("test_batch.bin: oversized"), "{err}");
}

#[test]
fn cifar10_bad_label_and_missing_folder() {
    let root = tempfile::tempdir().unwrap();
    let err = Source::Cifar10.load(root.path()).unwrap_err();
    assert!(matches!(err, Error::Missing { .. }));
    assert!(err.to_string().contains("not found (dataset cifar10, data root"), "{err}");

    let dir = root.path().join("cifar-10-batches-bin");
    kit::write_cifar10(&dir, 2, 2);
    let mut bytes = fs::read(dir.join("data_batch_1.bin")).unwrap();
    bytes[3073] = 42;
    fs::write(dir.join("data_batch_1.bin"), bytes).unwrap();
    let err = Source::Cifar10.load(root.path()).unwrap_err().to_string();
    assert!(err.ends_with("data_batch_1.bin: record 1: label 42 out of range 0..10"), "{err}");
    // A folder where a batch file should be: said so, not "not found".
    fs::remove_file(dir.join("data_batch_1.bin")).unwrap();
    fs::create_dir(dir.join("data_batch_1.bin")).unwrap();
    let err = Source::Cifar10.load(root.path()).unwrap_err().to_string();
    assert!(err.ends_with("data_batch_1.bin: is a directory, not a CIFAR batch file"), "{err}");
}

#[test]
fn cifar100_fine_and_coarse() {
    let root = tempfile::tempdir().unwrap();
    kit::write_cifar100(&root.path().join("cifar-100-binary"), 250, 120);
    let fine = Source::Cifar100 { coarse: false }.load(root.path()).unwrap();
    let coarse = Source::Cifar100 { coarse: true }.load(root.path()).unwrap();
    assert_eq!((fine.train.len(), fine.test.len()), (250, 120));
    assert_eq!(fine.train.labels[123], 23);
    assert_eq!(coarse.train.labels[123], 3);
    assert_eq!((fine.train.num_classes(), coarse.train.num_classes()), (100, 20));
    assert_eq!(fine.train.classes[7], "fine7");
    assert_eq!(fine.train.pixels, coarse.train.pixels);
}

#[test]
fn tiny_imagenet_with_grayscale_jpeg() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("tiny-imagenet-200");
    kit::write_tiny_imagenet(&dir, 3, 4, 6);
    let s = Source::TinyImageNet.load(root.path()).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (12, 6));
    assert_eq!((s.train.height, s.train.width), (64, 64));
    assert_eq!(s.train.classes[1], "thing 1");
    assert_eq!(s.test.labels, vec![0, 1, 2, 0, 1, 2]);
    assert_eq!(s.train.class_counts(), vec![4, 4, 4]);
    // The grayscale JPEG became three equal planes.
    let img = s.train.image(0);
    let plane = 64 * 64;
    assert_eq!(img[..plane], img[plane..2 * plane]);
    assert_eq!(img[..plane], img[2 * plane..]);
    // A colour one did not.
    let img = s.train.image(1);
    assert_ne!(img[..plane], img[2 * plane..]);
}

#[test]
fn tiny_imagenet_bad_inputs_are_named() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("tiny-imagenet-200");
    kit::write_tiny_imagenet(&dir, 2, 2, 2);
    fs::write(dir.join("train/n00001001/images/n00001001_1.JPEG"), b"\xff\xd8\xff\xe0 not really").unwrap();
    let err = Source::TinyImageNet.load(root.path()).unwrap_err().to_string();
    assert!(err.contains("n00001001_1.JPEG: cannot decode image"), "{err}");

    kit::write_tiny_imagenet(&dir, 2, 2, 2);
    fs::remove_file(dir.join("val/val_annotations.txt")).unwrap();
    let err = Source::TinyImageNet.load(root.path()).unwrap_err().to_string();
    assert!(err.contains("val_annotations.txt: validation annotations not found"), "{err}");

    kit::write_tiny_imagenet(&dir, 2, 2, 2);
    fs::remove_file(dir.join("wnids.txt")).unwrap();
    let err = Source::TinyImageNet.load(root.path()).unwrap_err().to_string();
    assert!(err.contains("wnids.txt: class list not found"), "{err}");
    // A directory where the file should be, and a file where a folder should be.
    fs::create_dir(dir.join("wnids.txt")).unwrap();
    let err = Source::TinyImageNet.load(root.path()).unwrap_err().to_string();
    assert!(err.ends_with("wnids.txt: is a directory, not the class list"), "{err}");
    fs::remove_dir(dir.join("wnids.txt")).unwrap();
    kit::write_tiny_imagenet(&dir, 2, 2, 2);
    fs::remove_dir_all(dir.join("train/n00001001/images")).unwrap();
    fs::write(dir.join("train/n00001001/images"), b"").unwrap();
    let err = Source::TinyImageNet.load(root.path()).unwrap_err().to_string();
    assert!(err.ends_with("images: is a file, not the training images folder"), "{err}");
    fs::remove_file(dir.join("train/n00001001/images")).unwrap();

    kit::write_tiny_imagenet(&dir, 2, 2, 2);
    fs::write(dir.join("val/val_annotations.txt"), "val_0.JPEG\tn99999999\t0\t0\t1\t1\n").unwrap();
    let err = Source::TinyImageNet.load(root.path()).unwrap_err().to_string();
    assert!(err.contains("val_annotations.txt: line 1: class n99999999 is not in wnids.txt"), "{err}");
}

#[test]
fn image_folder_resizes_and_holds_out() {
    let root = tempfile::tempdir().unwrap();
    for (c, name) in ["cats", "dogs"].iter().enumerate() {
        let d = root.path().join(name);
        fs::create_dir_all(&d).unwrap();
        for i in 0..10 {
            let bytes = if i % 2 == 0 { kit::png_rgb(40 + i, 24, c as u8) } else { kit::jpeg_rgb(20, i as u8) };
            let ext = if i % 2 == 0 { "png" } else { "jpg" };
            fs::write(d.join(format!("img{i}.{ext}")), bytes).unwrap();
        }
        fs::write(d.join("notes.txt"), "ignored").unwrap();
    }
    let s = Source::Folder { path: root.path().into(), size: 16 }.load(root.path()).unwrap();
    assert_eq!(s.train.classes.as_slice(), ["cats", "dogs"]);
    assert_eq!((s.train.len(), s.test.len()), (18, 2));
    assert_eq!((s.train.height, s.train.image(0).len()), (16, 3 * 16 * 16));

    fs::write(root.path().join("dogs/broken.png"), b"\x89PNG\r\n\x1a\n garbage").unwrap();
    let err = Source::Folder { path: root.path().into(), size: 16 }.load(root.path()).unwrap_err().to_string();
    assert!(err.contains("broken.png: cannot decode image"), "{err}");
}

/// Issue 29, group 3's next member: a synthetic set of 10^10 images aborted
/// allocating 30 TB; it is refused by its stated limit.
#[test]
fn synthetic_sizes_are_bounded() {
    let cfg = mixco_data::synthetic::SyntheticConfig { train: 10_000_000_000, test: 10, ..Default::default() };
    let e = Source::Synthetic(cfg).load(std::path::Path::new(".")).unwrap_err().to_string();
    assert!(e.contains("synthetic: 10000000000 training and 10 test images; at most 1000000"), "{e}");
}

#[test]
fn source_names_parse() {
    assert_eq!(Source::parse("CIFAR-10").unwrap(), Source::Cifar10);
    assert_eq!(Source::parse("tiny-imagenet").unwrap(), Source::TinyImageNet);
    assert!(matches!(Source::parse("folder:/x").unwrap(), Source::Folder { .. }));
    assert!(Source::parse("mnist").unwrap_err().to_string().contains("unknown dataset `mnist`"));
}

/// Issue 29, group 14: class folders whose names are different bytes but
/// the same text when decoded lossily (two non-UTF-8 names) were merged with
/// explicit splits: every test image of one class was labelled as the other.
/// Each is its own class, named by its escaped bytes.
#[test]
fn class_folders_are_told_apart_by_their_bytes() {
    use std::os::unix::ffi::OsStrExt;
    let root = tempfile::tempdir().unwrap();
    let names = [std::ffi::OsStr::from_bytes(b"caf\xe9"), std::ffi::OsStr::from_bytes(b"caf\xe8")];
    for split in ["train", "val"] {
        for (c, name) in names.iter().enumerate() {
            let d = root.path().join(split).join(name);
            fs::create_dir_all(&d).unwrap();
            for i in 0..3 {
                // Class 0 dark, class 1 bright: the label can be read off the pixels.
                let v = if c == 0 { 10 } else { 240 };
                let img = image::RgbImage::from_pixel(8, 8, image::Rgb([v, v, v]));
                img.save(d.join(format!("{i}.png"))).unwrap();
            }
        }
    }
    let s = Source::Folder { path: root.path().into(), size: 8 }.load(root.path()).unwrap();
    assert_eq!(s.train.classes.as_slice(), ["caf\\xe8", "caf\\xe9"]);
    for set in [&s.train, &s.test] {
        for i in 0..set.len() {
            // Sorted by bytes: caf\xe8 (bright) is label 0, caf\xe9 (dark) label 1.
            let dark = set.image(i)[0] < 128;
            assert_eq!(set.labels[i], dark as u32, "image {i} labelled as the other class");
        }
    }
    // A test class without a training folder names its own split (`val/`, not `test/`).
    fs::create_dir_all(root.path().join("val/zebra")).unwrap();
    image::RgbImage::new(8, 8).save(root.path().join("val/zebra/0.png")).unwrap();
    let err = Source::Folder { path: root.path().into(), size: 8 }.load(root.path()).unwrap_err().to_string();
    assert!(err.contains("val/zebra: class has no training folder"), "{err}");
}
