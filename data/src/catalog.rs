//! The datasets `mixco data fetch` knows: official URLs, archive checksums and,
//! where published, the SHA-256 of the extracted files.

use std::fmt;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnownDataset {
    Cifar10,
    Cifar100,
    TinyImageNet,
}

/// Where an archive comes from and how to check it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetSpec {
    pub url: String,
    pub md5: String,
    pub size: Option<u64>,
}

impl KnownDataset {
    pub const ALL: [KnownDataset; 3] =
        [KnownDataset::Cifar10, KnownDataset::Cifar100, KnownDataset::TinyImageNet];

    pub fn parse(name: &str) -> Option<KnownDataset> {
        match name.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "cifar10" => Some(KnownDataset::Cifar10),
            "cifar100" | "cifar100coarse" => Some(KnownDataset::Cifar100),
            "tinyimagenet" | "tinyimagenet200" => Some(KnownDataset::TinyImageNet),
            _ => None,
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            KnownDataset::Cifar10 => "cifar10",
            KnownDataset::Cifar100 => "cifar100",
            KnownDataset::TinyImageNet => "tinyimagenet",
        }
    }

    /// The folder the official archive unpacks to, under the data root.
    pub fn dir_name(self) -> &'static str {
        match self {
            KnownDataset::Cifar10 => "cifar-10-batches-bin",
            KnownDataset::Cifar100 => "cifar-100-binary",
            KnownDataset::TinyImageNet => "tiny-imagenet-200",
        }
    }

    /// The official archive.
    pub fn spec(self) -> DatasetSpec {
        let (url, md5, size) = match self {
            KnownDataset::Cifar10 => (
                "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                "c32a1d4ab5d03f1284b67883e8d87530",
                Some(170_052_171),
            ),
            KnownDataset::Cifar100 => (
                "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
                "03b5dce01913d631647c71ecec9e9cb8",
                None,
            ),
            KnownDataset::TinyImageNet => (
                "http://cs231n.stanford.edu/tiny-imagenet-200.zip",
                "90528d7ca1a48142e341f4ef8d21d0de",
                Some(248_100_043),
            ),
        };
        DatasetSpec { url: url.into(), md5: md5.into(), size }
    }

    /// Files (relative to the dataset folder) whose presence marks a complete
    /// extraction.
    pub fn required_files(self) -> &'static [&'static str] {
        match self {
            KnownDataset::Cifar10 => &[
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
                "test_batch.bin",
            ],
            KnownDataset::Cifar100 => &["train.bin", "test.bin"],
            KnownDataset::TinyImageNet => &["wnids.txt", "val/val_annotations.txt"],
        }
    }

    /// The record counts of the official fixed-record files: (file, records,
    /// bytes per record). Tiny ImageNet has none (one JPEG per image).
    pub fn official_records(self) -> &'static [(&'static str, usize, usize)] {
        match self {
            KnownDataset::Cifar10 => &[
                ("data_batch_1.bin", 10_000, 3073),
                ("data_batch_2.bin", 10_000, 3073),
                ("data_batch_3.bin", 10_000, 3073),
                ("data_batch_4.bin", 10_000, 3073),
                ("data_batch_5.bin", 10_000, 3073),
                ("test_batch.bin", 10_000, 3073),
            ],
            KnownDataset::Cifar100 => &[("train.bin", 50_000, 3074), ("test.bin", 10_000, 3074)],
            KnownDataset::TinyImageNet => &[],
        }
    }

    /// The files in `dir` holding fewer records than the official ones, as
    /// "FILE: N of the official M records" (a file cut at a record boundary
    /// reads as a valid, smaller set; the readers check the rest).
    pub fn cut_files(self, dir: &Path) -> Vec<String> {
        self.official_records()
            .iter()
            .filter_map(|&(file, official, record)| {
                let n = std::fs::metadata(dir.join(file)).ok()?.len() as usize / record;
                (n < official).then(|| format!("{file}: {n} of the official {official} records"))
            })
            .collect()
    }

    /// SHA-256 of the official extracted files, where known.
    pub fn known_file_sha256(self) -> &'static [(&'static str, &'static str)] {
        match self {
            KnownDataset::Cifar10 => &[
                ("batches.meta.txt", "558e74b5e208382e186da55784b4bac2cd52e558448e1b5800990fdb28ed8033"),
                ("data_batch_1.bin", "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5"),
                ("data_batch_2.bin", "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed"),
                ("data_batch_3.bin", "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67"),
                ("data_batch_4.bin", "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48"),
                ("data_batch_5.bin", "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add"),
                ("test_batch.bin", "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b"),
            ],
            KnownDataset::Cifar100 | KnownDataset::TinyImageNet => &[],
        }
    }
}

impl fmt::Display for KnownDataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
