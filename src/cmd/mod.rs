pub mod bench;
pub mod data;
pub mod doctor;
pub mod eval;
pub mod export;
#[cfg(feature = "train")]
pub mod train;
pub mod zoo;
