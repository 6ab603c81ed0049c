pub mod bench;
pub mod data;
pub mod doctor;
#[cfg(feature = "train")]
pub mod train;
