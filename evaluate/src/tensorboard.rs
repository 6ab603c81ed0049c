//! TensorBoard event files (`events.out.tfevents.*`), written without
//! TensorFlow: TFRecord framing (length, masked CRC-32C of the length, the
//! record, masked CRC-32C of the record) around `Event` protobufs (the few
//! fields scalars, text and session starts need, as tensorboard's
//! `event.proto`, `summary.proto` and `tensor.proto` number them).
//! Read back by TensorBoard's own `event_accumulator` in the tests.

use prost::Message;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Clone, PartialEq, prost::Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(oneof = "What", tags = "3, 5, 7")]
    what: Option<What>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum What {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
    /// Field 7 (6 is the deprecated `log_message`).
    #[prost(message, tag = "7")]
    SessionLog(SessionLog),
}

#[derive(Clone, PartialEq, prost::Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<Value>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Value {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(float, optional, tag = "2")]
    simple_value: Option<f32>,
    #[prost(message, optional, tag = "8")]
    tensor: Option<TensorProto>,
    #[prost(message, optional, tag = "9")]
    metadata: Option<SummaryMetadata>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    plugin_data: Option<PluginData>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PluginData {
    #[prost(string, tag = "1")]
    plugin_name: String,
}

/// tensorflow.TensorProto: a string scalar (the text plugin's form).
#[derive(Clone, PartialEq, prost::Message)]
struct TensorProto {
    #[prost(int32, tag = "1")]
    dtype: i32,
    #[prost(message, optional, tag = "2")]
    tensor_shape: Option<TensorShape>,
    #[prost(bytes = "vec", repeated, tag = "8")]
    string_val: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TensorShape {}

#[derive(Clone, PartialEq, prost::Message)]
struct SessionLog {
    #[prost(int32, tag = "1")]
    status: i32,
}

const DT_STRING: i32 = 7;
const SESSION_START: i32 = 1;

/// CRC-32C (Castagnoli), as TFRecord uses it.
fn crc32c(data: &[u8]) -> u32 {
    const fn table() -> [u32; 256] {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 == 1 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    }
    const TABLE: [u32; 256] = table();
    !data.iter().fold(!0u32, |c, &b| TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8))
}

fn masked(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// An event file being written (appended to, record by record).
pub struct EventFile {
    out: BufWriter<File>,
    path: PathBuf,
}

impl EventFile {
    /// A new `DIR/events.out.tfevents.SECONDS.HOST.PID.N` (TensorBoard reads
    /// every such file of a folder, in name order, as one run).
    pub fn create(dir: &Path) -> Result<EventFile, mixco_data::Error> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        std::fs::create_dir_all(dir).map_err(|e| mixco_data::Error::io(dir, e))?;
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "host".into());
        let name = format!("events.out.tfevents.{secs:010}.{host}.{}.{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let path = dir.join(name);
        let file = File::create(&path).map_err(|e| mixco_data::Error::io(&path, e))?;
        let mut f = EventFile { out: BufWriter::new(file), path };
        f.write(0, What::FileVersion("brain.Event:2".into()))?;
        Ok(f)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, step: usize, what: What) -> Result<(), mixco_data::Error> {
        let wall_time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let data = Event { wall_time, step: step as i64, what: Some(what) }.encode_to_vec();
        let len = (data.len() as u64).to_le_bytes();
        let record = [&len[..], &masked(crc32c(&len)).to_le_bytes(), &data, &masked(crc32c(&data)).to_le_bytes()].concat();
        self.out.write_all(&record).map_err(|e| mixco_data::Error::io(&self.path, e))
    }

    /// Scalars at `step` (one event).
    pub fn scalars(&mut self, step: usize, values: &[(&str, f64)]) -> Result<(), mixco_data::Error> {
        let value = values.iter().map(|(tag, v)| Value { tag: tag.to_string(), simple_value: Some(*v as f32), ..Default::default() }).collect();
        self.write(step, What::Summary(Summary { value }))
    }

    /// Text (shown by TensorBoard's text plugin; Markdown).
    pub fn text(&mut self, step: usize, tag: &str, text: &str) -> Result<(), mixco_data::Error> {
        let value = Value {
            tag: tag.to_string(),
            tensor: Some(TensorProto { dtype: DT_STRING, tensor_shape: Some(TensorShape {}), string_val: vec![text.as_bytes().to_vec()] }),
            metadata: Some(SummaryMetadata { plugin_data: Some(PluginData { plugin_name: "text".into() }) }),
            ..Default::default()
        };
        self.write(step, What::Summary(Summary { value: vec![value] }))
    }

    /// A restart at `step`: TensorBoard drops the run's earlier events of
    /// this step and later (logged past the checkpoint a run resumed from).
    pub fn restart(&mut self, step: usize) -> Result<(), mixco_data::Error> {
        self.write(step, What::SessionLog(SessionLog { status: SESSION_START }))
    }

    pub fn flush(&mut self) -> Result<(), mixco_data::Error> {
        self.out.flush().map_err(|e| mixco_data::Error::io(&self.path, e))
    }
}

/// Each report's numbers as scalars in `DIR/MODEL/` (a run per model, a tag
/// per dataset and probe, at step 0): a transfer matrix beside training curves.
pub fn write_reports(dir: &Path, reports: &[crate::report::Report]) -> Result<Vec<PathBuf>, mixco_data::Error> {
    let mut files: Vec<(String, EventFile)> = Vec::new();
    for r in reports {
        for m in &r.results {
            let at = match files.iter().position(|(name, _)| *name == m.model) {
                Some(i) => i,
                None => {
                    files.push((m.model.clone(), EventFile::create(&dir.join(mixco_data::fsutil::safe_file_name(&m.model)))?));
                    files.len() - 1
                }
            };
            let data = r.dataset.replace([':', '/'], "_");
            let mut values = vec![(format!("{data}/linear_top1"), 100.0 * m.linear.top1)];
            values.extend(m.knn_top1.iter().map(|(k, v)| (format!("{data}/knn{k}_top1"), 100.0 * v)));
            let values: Vec<(&str, f64)> = values.iter().map(|(t, v)| (t.as_str(), *v)).collect();
            files[at].1.scalars(0, &values)?;
        }
    }
    let mut paths = Vec::new();
    for (_, mut f) in files {
        f.flush()?;
        paths.push(f.path().to_path_buf());
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_and_its_mask_match_the_standard() {
        // RFC 3720's test vector: 32 bytes of zeros.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(masked(0), 0xa282_ead8);
    }
}
